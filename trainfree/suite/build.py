"""Computing the suite through a store, and writing it as one file.

``run_suite`` scores each benchmark's :func:`~trainfree.suite.plan.plan` through a store (resumable: a
killed run, or one in another session with the same store, goes on where it stopped), never reading
the shipped suite; ``collect`` reads the values back, computes each benchmark's leaderboard figures, and
``write_suite`` writes the file (gzip JSON, :data:`FORMAT`, documented in docs/suite.md).
"""
from __future__ import annotations

import gzip
import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

from trainfree.errors import TrainfreeError
from trainfree.records import Score, Status
from trainfree.suite.plan import BASELINE, SUBSET_SEED, WITHIN, plan

FORMAT, VERSION = "trainfree-suite", 1
#: one letter per status in the file; "-" marks an architecture the metric was not run on (a subset)
CODES = {Status.OK: "o", Status.NONFINITE: "n", Status.FAILED: "f"}
#: bootstrap draws of the leaderboard's intervals
RESAMPLES = 1000


def benchmark_names(names: Sequence[str] | None = None) -> list[str]:
    from trainfree.benchmarks import shipped_names

    every = shipped_names()
    if names is None:
        return every
    unknown = [n for n in names if n not in every]
    if unknown:
        raise TrainfreeError(f"not a shipped benchmark: {', '.join(unknown)} (choose from {', '.join(every)})")
    return list(names)


def _groups(bench, tasks):
    """Tasks grouped by the architectures they run on: (arch ids, metrics) per group."""
    out: dict[tuple, list[str]] = {}
    for t in tasks:
        out.setdefault(t.arch_ids, []).append(t.metric)
    return out.items()


def run_suite(store, names: Sequence[str] | None = None, metrics: Sequence[str] | None = None, jobs: int = 1,
              executor: str | None = None, threads: int | None = None, seed: int = SUBSET_SEED,
              on_benchmark: Callable[[str, int, int, float], None] | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> None:
    """Score every task of every benchmark (default: all shipped) into ``store``; metrics that do not
    apply to a benchmark's space are skipped there. ``on_benchmark(name, computed, reused, seconds)``
    follows each benchmark."""
    from trainfree.runner import score_architectures

    for name, bench, space, chosen, settings in _benchmarks(names, metrics):
        start, computed, reused = time.monotonic(), 0, 0
        for ids, group in _groups(bench, plan(bench, chosen, seed)):
            wanted = set(ids)
            items, seen = [], set()
            for r in bench.records:
                arch_id = space.arch_id(r.arch)
                if arch_id in wanted and arch_id not in seen:
                    seen.add(arch_id)
                    items.append((r.name, r.arch))
            run = score_architectures(space, items, group, settings, jobs=jobs, executor=executor, store=store,
                                      benchmark=bench.name, threads=threads, on_progress=on_progress,
                                      sink=lambda row: None, shipped=False)
            computed, reused = computed + run.computed, reused + run.reused
        if on_benchmark:
            on_benchmark(name, computed, reused, time.monotonic() - start)


def _benchmarks(names, metrics):
    """(name, benchmark, space, the metrics that apply there or None for all, default settings) of each
    benchmark to run; one where none of ``metrics`` applies is skipped."""
    from trainfree.benchmarks import load_benchmark
    from trainfree.spaces import get_space

    for name in benchmark_names(names):
        bench = load_benchmark(name)
        space = get_space(bench.space)
        chosen = None if metrics is None else [m for m in metrics if _applies(m, space)]
        if chosen != []:
            yield name, bench, space, chosen, _settings(space, bench)


def _settings(space, bench):
    """The space's defaults on the corpus the benchmark was trained on (as ``api.default_settings``)."""
    base = space.default_settings()
    return base.with_(corpus=bench.corpus) if bench.corpus else base


def _applies(metric: str, space) -> bool:
    from trainfree.metrics import get_metric

    return get_metric(metric).applies_to(space)


def collect(store, names: Sequence[str] | None = None, metrics: Sequence[str] | None = None,
            seed: int = SUBSET_SEED, stats: bool = True, partial: bool = False) -> dict:
    """The suite file's content from ``store``: every task's values, and with ``stats`` the leaderboard
    figures. A key the store lacks is an error naming how many are missing (run :func:`run_suite` first);
    with ``partial``, a task the store holds only in part is written with what it holds, its coverage
    ``partial`` and ``planned`` the architectures it was to run on (one it holds nothing of is left out)."""
    from trainfree import __version__
    from trainfree.metrics import get_metric

    out = {"format": FORMAT, "version": VERSION, "trainfree": __version__, "subset_seed": seed,
           "resamples": RESAMPLES, "benchmarks": {}}
    for name, bench, space, chosen, settings in _benchmarks(names, metrics):
        fingerprint = space.fingerprint(settings)
        ids = list(dict.fromkeys(space.arch_id(r.arch) for r in bench.records))
        entry = {"space": space.name, "target": bench.target, "lower_is_better": bench.lower_is_better,
                 "fingerprint": fingerprint, "settings": space.identity(settings), "arch_ids": ids, "metrics": {}}
        for task in plan(bench, chosen, seed):
            m = get_metric(task.metric)
            got = store.get({m.name: m.key_version}, fingerprint, task.arch_ids)
            missing = [a for a in task.arch_ids if (a, m.name) not in got]
            if missing and not partial:
                raise TrainfreeError(f"the store lacks {len(missing)} of {len(task.arch_ids)} {m.name} scores on "
                                     f"{name}: run `trainfree suite --store STORE` first (or write what it "
                                     f"holds with --partial)")
            if len(missing) == len(task.arch_ids):
                continue
            versions = _trainfree_versions(store, m, fingerprint, task.arch_ids)
            entry["metrics"][m.name] = _metric_entry(m, task, ids, got, versions, partial=bool(missing))
        if stats:
            entry["stats"] = benchmark_stats(bench, entry)
        out["benchmarks"][name] = entry
    return out


def _trainfree_versions(store, metric, fingerprint: str, arch_ids) -> list[str]:
    cur = store.conn.execute("SELECT DISTINCT trainfree_version FROM scores WHERE metric = ? AND metric_version = ? "
                             "AND fingerprint = ?", (metric.name, metric.key_version, fingerprint))
    return sorted(v for (v,) in cur)


def _metric_entry(metric, task, ids, got, versions, partial: bool = False) -> dict:
    values, codes, seconds, errors = [], [], [], {}
    for i, a in enumerate(ids):
        if (a, metric.name) not in got:
            values.append(None)
            codes.append("-")
            seconds.append(None)
            continue
        value, status, error, secs = got[(a, metric.name)]
        values.append(value)
        codes.append(CODES[status])
        seconds.append(round(secs, 4))
        if status is Status.FAILED:
            errors[str(i)] = error
    held = sum(1 for c in codes if c != "-")
    return {"version": metric.version, "key_version": metric.key_version, "higher_is_better": metric.higher_is_better,
            "coverage": "partial" if partial else task.coverage, "planned": len(task.arch_ids), "computed": held,
            "trainfree": versions,
            "cpu_seconds": round(sum(s for s in seconds if s is not None), 2),
            "values": values, "status": "".join(codes), "seconds": seconds, "errors": errors}


def scores_of(bench, entry: dict, metrics: Sequence[str] | None = None) -> list[Score]:
    """Score rows, one per benchmark record and metric, from a benchmark's entry of the suite file."""
    from trainfree.spaces import get_space

    space = get_space(entry["space"])
    index = {a: i for i, a in enumerate(entry["arch_ids"])}
    status = {v: k for k, v in CODES.items()}
    rows = []
    for name, m in entry["metrics"].items():
        if metrics is not None and name not in metrics:
            continue
        for r in bench.records:
            i = index.get(space.arch_id(r.arch))
            if i is None or m["status"][i] == "-":
                continue
            value = m["values"][i]
            rows.append(Score(entry["arch_ids"][i], name, math.nan if value is None else float(value),
                              status[m["status"][i]], m["errors"].get(str(i), ""), m["seconds"][i] or 0.0, r.name,
                              m["key_version"], entry["fingerprint"]))
    return rows


def benchmark_stats(bench, entry: dict, metrics: Sequence[str] | None = None) -> list[dict]:
    """The leaderboard figures of a benchmark's metrics (see :func:`trainfree.suite.leaderboard.stats_row`)."""
    from trainfree.evaluation.benchmark_correlation import correlate

    scores = scores_of(bench, entry)
    baseline = BASELINE.get(entry["space"])
    if baseline not in entry["metrics"]:
        baseline = None
    within = WITHIN.get(entry["space"])
    rows = correlate(bench, scores, ci_resamples=RESAMPLES, seed=0, baseline=baseline, resamples=RESAMPLES,
                     within=list(within) if within else None, ci_statistics=("kendall_tau",))
    keep = set(metrics) if metrics is not None else None
    return [stats_row(r, baseline, within, entry["metrics"][r.metric]) for r in rows
            if keep is None or r.metric in keep]


def stats_row(r, baseline, within, metric_entry) -> dict:
    d = r.as_dict()
    row = {"metric": r.metric, "n": d.get("n"), "coverage": metric_entry["coverage"],
           "kendall_tau": d.get("kendall_tau"), "kendall_tau_low": d.get("kendall_tau_low"),
           "kendall_tau_high": d.get("kendall_tau_high"), "baseline": baseline,
           "tau_minus_baseline": d.get("tau_minus_baseline"), "tau_minus_baseline_low": d.get("tau_minus_baseline_low"),
           "tau_minus_baseline_high": d.get("tau_minus_baseline_high"), "within": ",".join(within or ()),
           "cpu_seconds_per_arch": metric_entry["cpu_seconds"] / max(1, metric_entry["computed"])}
    for key in ("within_tau", "within_low", "within_high", "within_minus_baseline", "within_minus_baseline_low",
                "within_minus_baseline_high"):
        row[key] = d.get(key)
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def write_suite(path: Path, data: dict) -> int:
    """Write the suite (gzip JSON, written whole or not at all); returns its size in bytes."""
    from trainfree.files import atomic_write_binary

    blob = gzip.compress(json.dumps(data, separators=(",", ":"), allow_nan=True).encode(), mtime=0)
    atomic_write_binary(Path(path), lambda fh: fh.write(blob))
    return len(blob)


def coverage_markdown(data: dict) -> str:
    """The suite's coverage: metrics as rows, benchmarks (with their architectures) as columns; a cell holds
    the architectures the metric holds values for, ``s`` after a seeded subset's count, ``p`` after a partial
    run's, ``–`` where the metric applies but was not run, ``n/a`` where it does not apply; the last row each
    benchmark's CPU-hours of scoring, and the total."""
    from trainfree.metrics import get_metric
    from trainfree.spaces import get_space

    benchmarks = data["benchmarks"]
    spaces = {name: get_space(b["space"]) for name, b in benchmarks.items()}
    metrics = list(dict.fromkeys(m for b in benchmarks.values() for m in b["metrics"]))
    lines = ["| metric | " + " | ".join(f"{n} ({len(b['arch_ids'])})" for n, b in benchmarks.items()) + " |",
             "|---|" + "---|" * len(benchmarks)]
    for m in metrics:
        cells = []
        for name, b in benchmarks.items():
            entry = b["metrics"].get(m)
            if entry is None:
                cells.append("–" if get_metric(m).applies_to(spaces[name]) else "n/a")
                continue
            cells.append(f"{entry['computed']}" + {"subset": " s", "partial": " p"}.get(entry["coverage"], ""))
        lines.append(f"| `{m}` | " + " | ".join(cells) + " |")
    hours = [sum(e["cpu_seconds"] for e in b["metrics"].values()) / 3600 for b in benchmarks.values()]
    lines.append(f"| CPU-h (total {sum(hours):.2f}) | " + " | ".join(f"{h:.2f}" for h in hours) + " |")
    return "\n".join(lines) + "\n"
