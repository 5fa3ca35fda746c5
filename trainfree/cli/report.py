"""`trainfree report`: one self-contained HTML page."""
from __future__ import annotations

import json
from pathlib import Path

from trainfree.cli._common import check_outputs, invocation, name_list, positive, seed, settings_args, settings_for
from trainfree.errors import TrainfreeError


def add_parser(sub) -> None:
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
    p.add_argument("--title", default=None, help="the page's title (default: the benchmark's name)")
    p.add_argument("--figures", type=Path, default=None, help="also write every figure as a PNG into this folder")
    p.add_argument("--resamples", type=positive, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--bootstrap-seed", type=seed, default=0, help="seed of the bootstrap intervals (default 0)")
    p.add_argument("--within", type=name_list, default=None, metavar="FACTOR[,FACTOR]",
                   help="add the within-group correlation table (as `trainfree correlate --within`)")
    settings_args(p, execution=False)
    p.set_defaults(func=run)


def _search_file(path: Path) -> dict:
    from trainfree.report.html import check_search

    try:
        search = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: nested too deeply
        raise TrainfreeError(f"{path}: not a search result JSON ({err})") from None
    if not isinstance(search, dict) or "trials" not in search or "metric" not in search:
        raise TrainfreeError(f"{path}: not a search result JSON (no 'trials'/'metric'; write one with "
                             f"`trainfree search --output`)")
    return check_search(search, str(path))


def _meta_file(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise TrainfreeError(f"{path}: not a scores .meta.json ({err}); remove it or rewrite it with `trainfree score`") from None
    if not isinstance(meta, dict):
        raise TrainfreeError(f"{path}: not a scores .meta.json (expected a JSON object)")
    return meta


def run(args) -> int:
    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.files import atomic_write
    from trainfree.scores import read_scores
    from trainfree.store import Store

    if args.scores and args.store:
        raise TrainfreeError("give --scores or --store, not both")
    check_outputs(args, args.output, dirs={"--figures": args.figures})
    whole = load_benchmark(args.benchmark, target=args.target)
    bench = whole.head(args.limit)
    if args.scores:
        entries = read_scores(args.scores)
        meta_path = Path(str(args.scores) + ".meta.json")
        provenance = _meta_file(meta_path) if meta_path.exists() else {"scores": str(args.scores)}
    elif args.store:
        if not args.store.exists():
            raise TrainfreeError(f"{args.store}: no such store")
        with Store(args.store, readonly=True) as store:
            entries, provenance = api.stored_scores(store, bench, settings_for(args, bench.space, bench.corpus))
    else:
        entries, provenance = [], {}
    searches = [_search_file(path) for path in args.search or []]
    if not entries and not searches:
        raise TrainfreeError("nothing to report: give --scores, --store or --search")
    provenance["command"] = invocation("report", "report")
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
    page = api.report(whole, entries, provenance, searches, limit=args.limit, resamples=args.resamples,
                      seed=args.bootstrap_seed, title=args.title, figures_dir=args.figures,
                      within=args.within)
    atomic_write(args.output, lambda fh: fh.write(page))
    shown = len(bench.only({e.name for e in entries})) if entries else len(bench)
    print(f"wrote {args.output} ({len(page) // 1024} KiB; {len({e.metric for e in entries})} metrics over "
          f"{shown} architectures, {len(searches)} searches)")
    return 0
