"""The verbs the command line and notebooks call: score, correlate, reproduce, analyze, search,
search_eval, report, export, combine (and the settings and provenance they share)."""
from __future__ import annotations

import json
import platform
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Sequence

from trainfree import __version__
from trainfree.benchmarks import Benchmark, load_benchmark
from trainfree.config import ScoreSettings
from trainfree.errors import MissingExtra, TrainfreeError
from trainfree.evaluation.analysis import Analysis, analyze_benchmark, check_rule_settings
from trainfree.evaluation import benchmark_correlation
from trainfree.evaluation.benchmark_correlation import MetricCorrelation, check_scores
from trainfree.metrics import get_metric
from trainfree.records import Score, Status
from trainfree.runner import ScoreRun, score_architectures


__all__ = ["MetricCorrelation", "Reproduction", "analyze", "check_scores", "combine", "correlate", "correlate_by_fingerprint",
           "default_settings", "export", "provenance", "reproduce", "report", "score", "score_list", "search", "search_eval",
           "make_benchmark", "stored_scores", "train", "export_config", "search_metric"]

def provenance(settings: ScoreSettings, metrics: Sequence[str], benchmark: Benchmark | None = None,
               space: str | None = None) -> dict:
    """What produced a set of numbers: versions, settings and their fingerprint (the space's, from
    ``space`` or the benchmark's: it adds the device type and model version where they matter)."""
    import torch

    from trainfree.spaces import get_space

    space = space or (benchmark.space if benchmark is not None else None)
    fingerprint = settings.fingerprint() if space is None else get_space(space).fingerprint(settings)
    return {
        "trainfree_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "settings": settings.as_dict(),
        "fingerprint": fingerprint,
        "metrics": {m: get_metric(m).version for m in metrics},
        "benchmark": None if benchmark is None else {"name": benchmark.name, "source": benchmark.source,
                                                      "records": len(benchmark)},
    }


def default_settings(bench: Benchmark) -> ScoreSettings:
    """The benchmark's space's default settings on the corpus the benchmark was trained on, when known."""
    from trainfree.spaces import get_space

    base = get_space(bench.space).default_settings()
    return base.with_(corpus=bench.corpus) if bench.corpus else base


# -- what people pass ------------------------------------------------------------------------------
def _benchmark(value, target: str | None = None) -> Benchmark:
    """A Benchmark from a shipped name, a path or a Benchmark."""
    if isinstance(value, Benchmark):
        return value
    if isinstance(value, (str, Path)):
        return load_benchmark(value, target=target)
    raise TrainfreeError(f"expected a benchmark (a shipped name, a path or a Benchmark), got {type(value).__name__}")


def _metrics(value) -> list[str] | None:
    """Metric names from one name (``"params"``, or ``"params,hidden_cov"``) or a list of names."""
    if value is None:
        return None
    if isinstance(value, str):
        return [m.strip() for m in value.split(",") if m.strip()]
    names = list(value)
    bad = [m for m in names if not isinstance(m, str)]
    if bad:
        raise TrainfreeError(f"metrics: expected metric names, got {type(bad[0]).__name__}")
    return names


def _scores(value) -> list[Score]:
    """Score rows from a scores CSV path, or the rows themselves."""
    if isinstance(value, (str, Path)):
        from trainfree.scores import read_scores

        return read_scores(Path(value))
    return list(value)


def _settings(space, settings) -> ScoreSettings:
    """Settings for ``space``: its defaults (None), a dict of fields to change on them, or a ScoreSettings.
    A ScoreSettings left at the NAS-Bench-NLP protocol (``ScoreSettings()``) for a space whose own inputs
    differ is refused: it would score, say, a transformer on 50 x 70 PTB words instead of its own batch."""
    base = space.default_settings()
    if settings is None:
        return base
    if isinstance(settings, dict):
        try:
            return base.with_(**settings)
        except TypeError:
            from trainfree.registry import did_you_mean

            unknown = sorted(set(settings) - set(base.as_dict()))
            raise TrainfreeError(f"settings: unknown field {unknown[0]!r}{did_you_mean(unknown[0], base.as_dict())}; "
                                 f"fields: {', '.join(base.as_dict())}") from None
    if not isinstance(settings, ScoreSettings):
        raise TrainfreeError(f"settings: expected a ScoreSettings or a dict of fields, got {type(settings).__name__}")
    generic = ScoreSettings()
    own = [f for f in ("size", "corpus", "batch_size", "seq_len") if getattr(base, f) != getattr(generic, f)]
    if own and all(getattr(settings, f) == getattr(generic, f) for f in own):
        wanted = ", ".join(f"{f}={getattr(base, f)!r}" for f in own)
        raise TrainfreeError(f"settings: these are the NAS-Bench-NLP protocol's {', '.join(own)}, not space "
                             f"{space.name!r}'s own ({wanted}); pass a dict of the fields to change (settings="
                             f"{{'seed': 1}}) or {space.name!r}'s default_settings().with_(...)")
    return settings


def score(what=None, metrics: str | Sequence[str] | None = None, settings=None, limit: int | None = None,
          jobs: int = 1, executor: str | None = None, store=None, address: str | None = None,
          on_progress: Callable[[int, int], None] | None = None, threads: int | None = None,
          archs=None, label: str | None = None, sink: Callable | None = None, *, benchmark=None,
          space=None, target: str | None = None, shipped: bool = True) -> ScoreRun:
    """Score ``what`` with ``metrics`` (one name, ``"a,b"``, or a list; default: the space's default set):
    a benchmark (a shipped name, a path or a Benchmark: its first ``limit`` architectures), or with
    ``archs``, a space (a name or a space object such as a :class:`~trainfree.spaces.factory.FactorySpace`)
    and a list of one's own: architecture objects, dicts, JSON strings, ``{"name", "arch"}`` objects or
    ``(name, arch)`` pairs (see :mod:`trainfree.archs`), their names stored under ``label`` (default
    ``archs:<space>``). ``settings``: None (the space's defaults), a dict of fields to change on them, or a
    ScoreSettings (see :func:`_settings`).

    ``store`` (a :class:`trainfree.store.Store` or a path) makes the run resumable and skips stored keys;
    without one (the default here, unlike the command line's default store) nothing is kept. With
    ``shipped`` (the default), keys the shipped zero-cost suite holds under the same settings fingerprint
    and metric versions are taken from it instead of computed (``ScoreRun.shipped`` counts them).
    ``jobs`` worker processes run ``threads`` torch threads each (default one; in-process, with
    ``jobs=1``, the caller's own setting).
    Returns a :class:`ScoreRun` (``.rows``, ``.computed``, ``.reused``). With ``sink``, each row goes to
    ``sink(row)`` in order as soon as it is known, instead of into ``.rows`` (which stays empty): the memory
    then does not grow with the number of rows (``trainfree.scores.streamed_scores`` writes a CSV so).
    """
    from trainfree.spaces import get_space

    metrics = _metrics(metrics)
    if archs is not None:
        if benchmark is not None or (space is not None and what is not None):
            raise TrainfreeError("give the space of the archs once (first, or as space=), and no benchmark")
        space = space if space is not None else what
        if space is None:
            raise TrainfreeError("scoring a list of architectures needs their space: score(space, archs=[...])")
        return score_list(space, archs, metrics, settings, limit=limit, jobs=jobs, executor=executor, store=store,
                          address=address, on_progress=on_progress, threads=threads, label=label, sink=sink,
                          shipped=shipped)
    if space is not None:
        raise TrainfreeError("scoring a list of architectures needs both the space and archs=")
    if benchmark is not None and what is not None:
        raise TrainfreeError("give the benchmark once (first, or as benchmark=)")
    source = benchmark if benchmark is not None else what
    if source is None:
        raise TrainfreeError("give a benchmark, or a space and archs, to score")
    bench = _benchmark(source, target)
    space_obj = get_space(bench.space)
    if settings is None:
        settings = default_settings(bench)
    else:
        settings = _settings(space_obj, settings)
    bench = bench.head(limit)
    metrics = list(metrics or space_obj.default_metrics)
    _check_metrics(space_obj, metrics)
    items = [(r.name, r.arch) for r in bench.records]
    return score_architectures(space_obj, items, metrics, settings, jobs=jobs, executor=executor, store=_store(store),
                               benchmark=bench.name, address=address, threads=threads, on_progress=on_progress,
                               sink=sink, shipped=shipped)


def correlate(benchmark, scores, **options) -> list[MetricCorrelation]:
    """Per metric, the correlation of ``scores`` (a scores CSV path, or rows) with ``benchmark``'s trained
    results (a shipped name, a path or a Benchmark); see
    :func:`trainfree.evaluation.benchmark_correlation.correlate` for the options (ci_resamples, topk, seed,
    baseline, resamples, within)."""
    return benchmark_correlation.correlate(_benchmark(benchmark), _scores(scores), **options)


def correlate_by_fingerprint(benchmark, scores, **options) -> dict[str, list[MetricCorrelation]]:
    """:func:`correlate` per settings fingerprint of ``scores``."""
    return benchmark_correlation.correlate_by_fingerprint(_benchmark(benchmark), _scores(scores), **options)


def _check_metrics(space, metrics: Sequence[str]) -> None:
    """Each metric applies to the space (:func:`trainfree.metrics.base.check_applies`), before any work."""
    from trainfree.metrics.base import check_applies

    for m in metrics:
        check_applies(get_metric(m), space)


def score_list(space, archs, metrics: Sequence[str] | None = None, settings: ScoreSettings | None = None,
               limit: int | None = None, label: str | None = None, jobs: int = 1, executor: str | None = None,
               store=None, **options) -> ScoreRun:
    """:func:`score` over a list of architectures in ``space`` (a name or a space object, which is
    registered under its name for this session); see :func:`score`."""
    from trainfree.archs import from_list
    from trainfree.spaces import get_space, register_space

    if isinstance(space, str):
        space_obj = get_space(space)
    else:
        space_obj = space
        if get_space_or_none(space_obj.name) is not space_obj:  # a clash with another space's name raises
            space_obj.register() if hasattr(space_obj, "register") else register_space(space_obj)
    if (executor not in (None, "local") or jobs > 1) and getattr(space_obj, "in_process_only", False):
        raise TrainfreeError(f"space {space_obj.name!r} is defined in this Python session, so it scores "
                             f"in-process only: use jobs=1 (worker processes would not know it)")
    items = from_list(space_obj, archs)[:limit]
    settings = _settings(space_obj, settings)
    metrics = list(_metrics(metrics) or space_obj.default_metrics)
    _check_metrics(space_obj, metrics)
    return score_architectures(space_obj, items, metrics, settings, jobs=jobs, executor=executor,
                               store=_store(store), benchmark=label or f"archs:{space_obj.name}", **options)


def get_space_or_none(name: str):
    from trainfree.errors import UnknownName
    from trainfree.spaces import get_space

    try:
        return get_space(name)
    except UnknownName:
        return None


def _store(store):
    """A Store from a path or a Store (None stays None)."""
    if store is None or not isinstance(store, (str, Path)):
        return store
    from trainfree.store import Store

    return Store(store)


@dataclass(frozen=True)
class Reproduction:
    table: list  # ReproRow per metric
    benchmark: Benchmark
    settings: ScoreSettings
    provenance: dict

    def markdown(self, title: str, command: str) -> str:
        from trainfree.evaluation.reproduce import to_markdown

        b, meta = self.benchmark, self.provenance
        note = (f"Benchmark `{b.name}` ({len(b)} architectures, target `{b.target}`, "
                f"{'lower' if b.lower_is_better else 'higher'} is better); signed so that positive = the metric "
                f"ranks better-trained architectures higher. Settings fingerprint `{meta['fingerprint']}`, trainfree "
                f"{meta['trainfree_version']}, torch {meta['torch_version']}, corpus `{self.settings.corpus}`.\n\n"
                f"Command: `{command}`")
        return to_markdown(self.table, title, note)


def reproduce(part: str, benchmark: str | Benchmark | None = None, metrics: Sequence[str] | None = None,
              published: str | None = "shipped", settings: ScoreSettings | None = None, limit: int | None = None,
              **score_options) -> Reproduction:
    """The paper's table ``part`` (``rnn`` or ``bert``): trainfree's metrics on the benchmark beside the
    published columns (``published``: ``"shipped"``, a path, or None for none). ``score_options`` go to
    :func:`score` (jobs, executor, store, ...)."""
    from trainfree.benchmarks.published import load_published
    from trainfree.evaluation.reproduce import PARTS, default_metrics, reproduce_table

    if part not in PARTS:
        raise TrainfreeError(f"no reproduce part {part!r} (choose from {', '.join(PARTS)})")
    spec = PARTS[part]
    bench = benchmark if isinstance(benchmark, Benchmark) else load_benchmark(benchmark or spec["benchmark"])
    if bench.space != spec["space"]:
        raise TrainfreeError(f"reproduce {part} needs a {spec['space']} benchmark, got {bench.space}")
    pub = None
    if published is not None:
        pub = load_published(spec["published"] if published == "shipped" else published, key=spec["key"])
    metrics = list(metrics or default_metrics(bench.space))
    settings = settings or default_settings(bench)
    run = score(bench, metrics, settings, limit=limit, store=_store(score_options.pop("store", None)),
                **score_options)
    head = bench.head(limit)
    return Reproduction(reproduce_table(head, run.rows, pub), head, settings, provenance(settings, metrics, head))


def stored_scores(store, bench: Benchmark, settings: ScoreSettings) -> tuple[list[Score], dict]:
    """Score entries for the benchmark's records from a store: every metric scored under these settings'
    fingerprint at its current version. Returns (entries, provenance)."""
    from trainfree.metrics.base import metric_versions
    from trainfree.spaces import get_space

    space = get_space(bench.space)
    fingerprint = space.fingerprint(settings)
    store = _store(store)
    current = metric_versions()  # aliases too: scores stored under an old name are found
    versions = {m: v for m, v in store.metric_versions(fingerprint) if current.get(m) == v}
    if not versions:
        raise TrainfreeError(f"{store.path}: no scores under settings fingerprint {fingerprint} "
                             f"({json.dumps(space.identity(settings), sort_keys=True)}); pass the settings they were "
                             f"computed with")
    stored = store.get(versions, fingerprint, [space.arch_id(r.arch) for r in bench.records])
    entries = []
    for r in bench.records:
        arch_id = space.arch_id(r.arch)
        for metric in versions:
            if (arch_id, metric) in stored:
                value, status, error, seconds = stored[(arch_id, metric)]
                entries.append(Score(arch_id, metric, value, Status(status), error, seconds, r.name, versions[metric],
                                     fingerprint))
    return entries, provenance(settings, sorted(versions), bench)


def search_metric(space) -> tuple[str, str]:
    """The metric a search of ``space`` uses when none is named, and why: the best measured on the space's
    family of benchmarks (``trainfree.evaluation.evidence``), else the space's first default metric."""
    from trainfree.evaluation.evidence import default_objective

    found = default_objective(getattr(space, "family", None))
    if found is not None:
        metric, ev = found
        return metric, f"the best measured on {space.family} benchmarks: {ev.text()}"
    return space.default_metrics[0], f"the space's first default metric (no {space.name} benchmark measures it)"


def search(space=None, metric: str | None = None, strategy: str = "random", budget: int | None = None,
           search_seed: int = 0, settings=None, benchmark: str | Benchmark | None = None, store=None, **options):
    """A training-free search (see :func:`trainfree.search.run_search`) of ``space`` (a name or a space
    object; default: the benchmark's), or within ``benchmark``'s architectures. ``metric`` defaults to
    :func:`search_metric`'s choice; a metric that ranks the space's family of benchmarks backwards is
    searched with a warning. ``budget`` defaults to 100 distinct architectures (a grid: every point of it).
    ``search_seed`` seeds the strategy; the models' seed is ``settings``' (None: the space's defaults; a dict
    of fields to change; a ScoreSettings). ``options`` go to the strategy (population, sample_size, batch,
    max_params, ...) or to the search (objective, jobs, executor, threads, on_progress). Returns a
    SearchResult whose ``notes`` say how the metric was chosen and any warning."""
    from trainfree.evaluation.evidence import backwards
    from trainfree.runner import resolve_space
    from trainfree.search import run_search
    from trainfree.search.strategies import MAX_GRID

    bench = load_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    space = space or (bench.space if bench is not None else None)
    if space is None:
        raise TrainfreeError("give a space or a benchmark to search")
    space = resolve_space(space)
    metric = _metrics(metric)[0] if isinstance(metric, str) and "," not in metric else metric
    if metric is not None and not isinstance(metric, str):
        raise TrainfreeError(f"a search maximises one metric, got {metric!r}; a second one is objective=")
    settings = _settings(space, settings) if settings is not None else (
        default_settings(bench) if bench is not None else None)
    notes = []
    if metric is None:
        metric, why = search_metric(space)
        notes.append(f"metric {metric}: {why}")
    warning = backwards(getattr(space, "family", None), metric)
    if warning:
        import warnings

        warnings.warn(warning, stacklevel=2)
        notes.append(f"warning: {warning}")
    if budget is None:
        budget = (len({space.arch_id(r.arch) for r in bench.records}) if bench is not None else MAX_GRID) \
            if strategy == "grid" else 100
    result = run_search(space, metric, strategy, budget, search_seed, settings, benchmark=bench,
                        store=_store(store), **options)
    result.notes = notes
    return result


def search_eval(benchmark: str | Benchmark, metrics: Sequence[str] | None = None,
                strategies: Sequence[str] = ("random", "evolution"), seeds: int | Sequence[int] = 20,
                budget: int = 100, settings: ScoreSettings | None = None, store=None, **options):
    """Compare strategies and metrics by what their searches choose in a benchmark: (rows, summary).
    ``store`` is required in effect (the searches read the benchmark's scores back from it); with None a
    scratch store in a temporary folder is used and removed."""
    import tempfile

    from trainfree.search import search_eval as run_eval
    from trainfree.spaces import get_space
    from trainfree.store import Store

    from trainfree.search.strategies import STRATEGIES

    bench = load_benchmark(benchmark) if not isinstance(benchmark, Benchmark) else benchmark
    space = get_space(bench.space)
    metrics = list(metrics or [space.default_metrics[0]])
    for name in strategies:  # a misspelt name fails now, not after the benchmark is scored
        STRATEGIES.get(name)
    for name in metrics:
        get_metric(name)
    settings = settings or default_settings(bench)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if store is not None:
        return run_eval(bench, metrics, list(strategies), seeds, budget, settings, _store(store), **options)
    with tempfile.TemporaryDirectory(prefix="trainfree-") as scratch:
        with Store(Path(scratch) / "scores.sqlite") as scratch_store:
            return run_eval(bench, metrics, list(strategies), seeds, budget, settings, scratch_store, **options)


def report(benchmark: str | Benchmark, scores: Sequence[Score] = (), provenance: dict | None = None,
           searches: Sequence[dict] = (), limit: int | None = None, **options) -> str:
    """One self-contained HTML page (see :func:`trainfree.report.render`) for those of the first ``limit``
    benchmark records that were scored; searches are looked up in the whole benchmark."""
    from trainfree.report import render

    whole = _benchmark(benchmark)
    scores = _scores(scores) if scores is not None else []
    for i, search in enumerate(searches):
        space = search.get("space") if isinstance(search, dict) else None
        if space is not None and space != whole.space:
            raise TrainfreeError(f"searches[{i}]: a search of space {space!r}; benchmark {whole.name!r} holds "
                                 f"{whole.space!r} architectures, so its choices cannot be looked up there")
    bench = whole.head(limit)
    bench = bench.only({e.name for e in scores}) if scores else bench
    return render(bench, list(scores), dict(provenance or {}), list(searches), search_benchmark=whole, **options)


#: the columns of :func:`export`
EXPORT_COLUMNS = ["arch_id", "benchmark", "name", "space", "metric", "metric_version", "fingerprint", "value",
                  "status", "error", "seconds", "trainfree_version", "settings", "architecture"]


def export(store, path: str | Path, format: str = "csv") -> int:
    """Write every stored score to ``path`` as CSV or Parquet (atomically); returns the row count."""
    import csv

    from trainfree.files import atomic_write, atomic_write_binary
    from trainfree.store import Store

    source = Path(store) if isinstance(store, (str, Path)) else store.path
    if not Path(source).exists():
        raise TrainfreeError(f"{source}: no such store")
    with Store(source, readonly=True) as opened:
        rows = opened.export_rows()
    if format == "csv":
        def write(fh):
            out = csv.DictWriter(fh, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
            out.writeheader()
            out.writerows(rows)

        atomic_write(Path(path), write)
    elif format == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise MissingExtra("parquet export needs pyarrow: pip install 'trainfree[parquet]'") from None
        table = pa.Table.from_pylist([{c: r[c] for c in EXPORT_COLUMNS} for r in rows])
        atomic_write_binary(Path(path), lambda fh: pq.write_table(table, fh))
    else:
        raise TrainfreeError(f"unknown export format {format!r} (choose csv or parquet)")
    return len(rows)


def leaderboard(metrics: str | Sequence[str] | None = None, benchmarks: str | Sequence[str] | None = None,
                suite: str | Path | None = None, store=None, jobs: int = 1) -> list[dict]:
    """The zero-cost suite's leaderboard rows (``trainfree leaderboard``): each metric's Kendall tau on each
    benchmark with its interval, the within-group tau, and the difference to the benchmark's size baseline,
    from the shipped suite file (or ``suite``) without building a model. A metric the suite lacks is
    computed on every benchmark it applies to through ``store`` (a path or a Store)."""
    from trainfree.suite.leaderboard import leaderboard as board

    opened = _store(store)
    try:
        return board(suite, _metrics(benchmarks), _metrics(metrics), store=opened, jobs=jobs)
    finally:
        if opened is not None and opened is not store:
            opened.close()


def analyze(benchmark: str | Benchmark, target: str | None = None, alpha: float = 0.01, permutations: int = 999,
            max_conditions: int = 3, min_leaf: int = 5, resamples: int = 100, seed: int = 0) -> Analysis:
    """What a benchmark's design factors (``space.factors``) say about its target: the target by factor
    level, a shrinking rule found by a permutation-tested tree descent (each split must beat the max-T
    permutation null over all candidate splits at ``alpha``; at most ``max_conditions``, each side at
    least ``min_leaf`` architectures), and how often ``resamples`` seeded bootstrap refits choose each
    condition (0: skip). Returns an :class:`~trainfree.evaluation.analysis.Analysis` (``.table``,
    ``.rule``, ``.stability``, ``.summary()``, ``.markdown(command)``).
    """
    if resamples < 0:
        raise TrainfreeError(f"resamples must be 0 (no stability) or positive, got {resamples}")
    check_rule_settings(alpha, permutations, max_conditions, min_leaf)  # before loading anything
    bench = load_benchmark(benchmark, target=target) if not isinstance(benchmark, Benchmark) else benchmark
    return analyze_benchmark(bench, alpha=alpha, permutations=permutations, max_conditions=max_conditions,
                             min_leaf=min_leaf, resamples=resamples, seed=seed)


def combine(benchmark: str | Benchmark, scores: Sequence[Score] | None = None,
            metrics: Sequence[str] | None = None, learner: str = "linear", folds: int = 5, inner_folds: int = 3,
            repeats: int = 1, seed: int = 0, raw_target: bool = False, published: str | None = None,
            settings: ScoreSettings | None = None, source: str | None = None):
    """Fit a combination of metric values on a benchmark, judged by nested cross-validation grouped by
    architecture (see :mod:`trainfree.evaluation.combine`). Inputs: ``scores`` (entries of one settings
    fingerprint, e.g. :func:`stored_scores` or ``read_scores``), ``published`` (``"shipped"`` or a path:
    the paper's published metric columns for the benchmark's space), or both (the published columns beside
    scores of other metrics under the same fingerprint). ``metrics`` defaults to every one in
    the inputs; ``learner`` is ``linear`` or ``boosted`` (the ``combine`` extra). Returns a
    :class:`~trainfree.evaluation.combine.Combination`: ``.cv`` (the only figures reported for these
    data), ``.model`` (``.save(path)``; then ``combo:PATH`` is a metric), ``.summary()``."""
    from trainfree.evaluation.combine import fit_combination, published_entries

    bench = load_benchmark(benchmark) if not isinstance(benchmark, Benchmark) else benchmark
    if scores is None and published is None:
        raise TrainfreeError("give the inputs as scores, as published columns, or both")
    if published is not None:
        columns = "the shipped published columns" if published == "shipped" else str(published)
        source = f"{columns} and {source or 'scores'}" if scores is not None else (source or columns)
        scores = published_entries(bench, None if published == "shipped" else published) + list(scores or [])
    return fit_combination(bench, list(scores), metrics, learner, folds, inner_folds, seed, repeats, raw_target,
                           source=source or "scores", settings=settings.as_dict() if settings is not None else None)


def train(space: str | None = None, archs=None, benchmark: str | Benchmark | None = None, budget: float = 100,
          unit: str = "steps", record_at: Sequence[float] = (), seed: int = 0, protocol: str | None = None,
          limit: int | None = None, store=None, checkpoint_dir=None, jobs: int = 1, executor: str | None = None,
          address: str | None = None, threads: int | None = None, on_progress=None, on_step=None,
          on_result=None, keep_checkpoints: bool = False, **protocol_overrides):
    """Short-train architectures under the space's protocol (``trainfree.train.protocol``; ``protocol``
    names another, ``protocol_overrides`` such as size=, corpus=, lr= change fields) for ``budget``
    ``unit`` (steps, tokens or cpu-seconds), recording validation loss at every ``record_at`` point on
    the way: ``archs`` of ``space`` (objects, dicts, JSON strings, ``(name, arch)`` pairs) or the first
    ``limit`` records of ``benchmark``. Results go to ``store`` (a path or Store) keyed by architecture,
    protocol, seed and budget, so that nothing is trained twice; ``checkpoint_dir`` lets a killed run
    resume the architecture in flight, and with ``keep_checkpoints`` a later, longer budget continue a
    finished one. Returns a :class:`trainfree.train.run.TrainRun`."""
    from trainfree.archs import from_list
    from trainfree.spaces import get_space
    from trainfree.train import Budget, protocol_for
    from trainfree.train.run import train_many

    if (archs is None) == (benchmark is None):
        raise TrainfreeError("give archs (with space) or a benchmark to train")
    if benchmark is not None:
        bench = load_benchmark(benchmark) if not isinstance(benchmark, Benchmark) else benchmark
        if space is not None and space != bench.space:
            raise TrainfreeError(f"benchmark {bench.name!r} is of space {bench.space!r}, not {space!r}")
        space = bench.space
        items = [(r.name, r.arch) for r in bench.head(limit).records]
    else:
        if space is None:
            raise TrainfreeError("training a list of architectures needs space=")
        items = from_list(get_space(space), archs)[:limit]
    chosen = protocol_for(space, protocol, **protocol_overrides)
    return train_many(space, items, chosen, Budget.of(budget, unit, record_at), seed, store=_store(store),
                      jobs=jobs, executor=executor, address=address, threads=threads, checkpoint_dir=checkpoint_dir,
                      on_progress=on_progress, on_step=on_step, on_result=on_result,
                      keep_checkpoints=keep_checkpoints)


def make_benchmark(space: str, n: int, budget: float, unit: str = "steps", record_at: Sequence[float] = (),
                   sample_seed: int = 0, train_seed: int = 0, protocol: str | None = None, output=None, store=None,
                   command: str = "", **train_options) -> dict:
    """Sample ``n`` distinct architectures of ``space`` under ``sample_seed``, short-train each (:func:`train`;
    ``train_options``: jobs, executor, checkpoint_dir, protocol fields...) and return the benchmark in
    the ``trainfree-benchmark`` format (:mod:`trainfree.benchmarks.trained`), written to ``output`` when given.
    Trained architectures come back from the store, so a killed run resumes."""
    import numpy as np
    import torch

    from trainfree.benchmarks.trained import FORMAT, FORMAT_VERSION
    from trainfree.config import check_seed
    from trainfree.spaces import get_space

    check_seed(sample_seed)
    if n < 1:
        raise TrainfreeError(f"n must be positive, got {n}")
    sp = get_space(space)
    rng = np.random.default_rng(sample_seed)
    archs: dict[str, object] = {}
    for _ in range(50 * n):
        arch = sp.sample(rng)
        archs.setdefault(sp.arch_id(arch), arch)
        if len(archs) == n:
            break
    if len(archs) < n:
        raise TrainfreeError(f"space {space!r}: only {len(archs)} distinct architectures in {50 * n} draws")
    items = [(a, arch) for a, arch in archs.items()]
    run = train(space=space, archs=items, budget=budget, unit=unit, record_at=record_at, seed=train_seed,
                protocol=protocol, store=store, **train_options)
    records = []
    for r in run.results:
        final = r.final
        records.append({"name": r.name, "arch_id": r.arch_id, "arch": json.loads(sp.to_json(archs[r.arch_id])),
                        "status": final["status"], "val_loss": final["val_loss"],
                        "fidelities": {f"{p:g}": row["val_loss"] for p, row in sorted(r.points.items())},
                        "tokens": final["tokens"], "steps": final["steps"], "cpu_seconds": final["cpu_seconds"],
                        "eval_cpu_seconds": final["eval_cpu_seconds"], "error": final.get("error", "")})
    data = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "name": f"trained:{space}:n{n}:s{sample_seed}:{run.budget.label().replace(' ', '')}", "space": space,
            "target": "val_loss", "lower_is_better": True, "protocol": run.protocol.identity(),
            "protocol_fingerprint": run.protocol.fingerprint(), "protocol_source": run.protocol.source,
            "budget": {"unit": run.budget.unit, "points": list(run.budget.points)}, "train_seed": train_seed,
            "sample_seed": sample_seed, "versions": {"trainfree": __version__, "torch": torch.__version__,
                                              "python": platform.python_version()},
            "command": command, "trained": run.trained, "reused": run.reused, "records": records}
    if output is not None:
        from trainfree.files import atomic_write

        atomic_write(Path(output), lambda fh: json.dump(data, fh, indent=1, allow_nan=True))
    return data


def export_config(space, arch, output, settings: ScoreSettings | None = None) -> dict:
    """Write ``output/config.json`` for ``arch`` of a transformers config space (``hf-llama``, ``hf-gpt2``,
    ``gemstones``, a space file), which ``transformers.AutoConfig.from_pretrained(output)`` reads and
    ``AutoModelForCausalLM.from_config`` (a masked LM: ``AutoModelForMaskedLM``) builds with exactly the
    parameter count returned. ``arch`` is an architecture of the space, its JSON or a dict; ``settings`` give
    the tokenizer whose vocabulary the model gets (default: the space's). Returns {path, params, shape, model}."""
    from trainfree.archs import from_list
    from trainfree.runner import resolve_space

    space = resolve_space(space)
    if not hasattr(space, "export_config"):
        raise TrainfreeError(f"space {space.name!r} is not a transformers config space: export-config writes the "
                             f"config of hf-llama, hf-gpt2, gemstones or a space file's architectures")
    [(_, parsed)] = from_list(space, [arch])
    settings = settings or space.default_settings()
    space.check(settings)
    config = space.export_config(parsed, settings)
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise TrainfreeError(f"{out}: not a folder")
    if (out / "config.json").exists():
        raise TrainfreeError(f"{out / 'config.json'} exists; give another --output folder (nothing was written)")
    from trainfree.spaces.hf.model import meta_model

    params = meta_model(space.spec, config).hf.num_parameters()
    try:
        out.mkdir(parents=True, exist_ok=True)
        config.save_pretrained(str(out))
    except OSError as err:
        from trainfree.files import write_error

        raise write_error(out / "config.json", err, "config") from None
    return {"path": str(out / "config.json"), "params": params, "shape": space.describe(parsed),
            "model": space.spec.model}
