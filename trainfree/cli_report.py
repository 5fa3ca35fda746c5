"""`trainfree report`."""
from __future__ import annotations

import json
from pathlib import Path

from trainfree.errors import TrainfreeError


def scores_from_store(store_path: Path, bench, settings):
    """Score entries for the benchmark's records from a store: every metric scored under these settings'
    fingerprint at its current version. Returns (entries, provenance)."""
    from trainfree import api
    from trainfree.metrics import METRICS
    from trainfree.scores import ScoreEntry
    from trainfree.spaces import get_space
    from trainfree.store import Store

    if not Path(store_path).exists():
        raise TrainfreeError(f"{store_path}: no such store")
    space = get_space(bench.space)
    fingerprint = settings.fingerprint()
    with Store(store_path) as store:
        current = {m.name: m.version for m in METRICS}
        versions = {m: v for m, v in store.metric_versions(fingerprint) if current.get(m) == v}
        if not versions:
            raise TrainfreeError(f"{store_path}: no scores under settings fingerprint {fingerprint} "
                                 f"({json.dumps(settings.identity(), sort_keys=True)}); pass the settings they were "
                                 f"computed with")
        stored = store.get(versions, fingerprint)
    entries = []
    for r in bench.records:
        arch_id = space.arch_id(r.arch)
        for metric in versions:
            if (arch_id, metric) in stored:
                value, status, _, _ = stored[(arch_id, metric)]
                entries.append(ScoreEntry(r.name, metric, value, status, arch_id))
    return entries, api.provenance(settings, sorted(versions), bench)


def cmd_report(args) -> int:
    from trainfree.benchmarks import load_benchmark
    from trainfree.cli import _invocation
    from trainfree.report import render
    from trainfree.scores import atomic_write, read_scores

    if args.scores and args.store:
        raise TrainfreeError("give --scores or --store, not both")
    whole = load_benchmark(args.benchmark, target=args.target)
    bench = whole.head(args.limit)
    if args.scores:
        entries = read_scores(args.scores)
        meta_path = Path(str(args.scores) + ".meta.json")
        provenance = json.loads(meta_path.read_text()) if meta_path.exists() else {"scores": str(args.scores)}
    elif args.store:
        from trainfree.cli_search import _space_settings

        entries, provenance = scores_from_store(args.store, bench, _space_settings(args, bench.space, bench.corpus))
    else:
        entries, provenance = [], {}
    scored = {e.name for e in entries}
    if entries:
        from trainfree.benchmarks.base import Benchmark

        bench = Benchmark(bench.name, bench.space, [r for r in bench.records if r.name in scored], bench.target,
                          bench.lower_is_better, bench.skipped, bench.source, bench.corpus)
    searches = []
    for path in args.search or []:
        try:
            searches.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as err:
            raise TrainfreeError(f"{path}: not a search result JSON ({err})") from None
        if "trials" not in searches[-1] or "metric" not in searches[-1]:
            raise TrainfreeError(f"{path}: not a search result JSON (no 'trials'/'metric'; write one with "
                                 f"`trainfree search --output`)")
    if not entries and not searches:
        raise TrainfreeError("nothing to report: give --scores, --store or --search")
    provenance["command"] = _invocation("report", "report")
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
    page = render(bench, entries, provenance, searches, resamples=args.resamples, seed=args.bootstrap_seed,
                  title=args.title, search_benchmark=whole,
                  figures_dir=args.figures)
    atomic_write(args.output, lambda fh: fh.write(page))
    print(f"wrote {args.output} ({len(page) // 1024} KiB; {len({e.metric for e in entries})} metrics over "
          f"{len(bench.records)} architectures, {len(searches)} searches)")
    return 0


def add_parser(sub, settings_args, positive) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page: correlations with intervals, plots, searches")
    p.add_argument("--benchmark", required=True, help="the benchmark the scores (or searches) belong to")
    p.add_argument("--target", default=None, help="NAS-Bench-BERT: glue (default) or a GLUE task")
    p.add_argument("--scores", type=Path, default=None, help="a scores CSV written by `trainfree score`")
    p.add_argument("--store", type=Path, default=None,
                   help="read the scores from a store instead: every metric scored under the settings given "
                        "(default: the paper's protocol)")
    p.add_argument("--search", type=Path, action="append", help="a `trainfree search --output` JSON (repeatable)")
    p.add_argument("--limit", type=positive, default=None, help="only the first N benchmark records")
    p.add_argument("--output", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--title", default=None)
    p.add_argument("--figures", type=Path, default=None, help="also write every figure as a PNG into this folder")
    p.add_argument("--resamples", type=positive, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--bootstrap-seed", type=int, default=0)
    settings_args(p, seed_flag="--model-seed", execution=False)
    p.set_defaults(func=cmd_report)
