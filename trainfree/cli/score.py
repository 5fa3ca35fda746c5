"""`trainfree score`: score a benchmark's architectures with training-free metrics."""
from __future__ import annotations

import sys
from pathlib import Path

from trainfree.errors import TrainfreeError

from trainfree.cli._common import check_outputs, execution, metric_list, positive, settings_args, settings_for, stored_run


def add_parser(sub) -> None:
    p = sub.add_parser("score", help="score a benchmark's architectures, or your own from a file, with "
                                     "training-free metrics")
    what = p.add_mutually_exclusive_group(required=True)
    from trainfree.benchmarks import shipped_names
    from trainfree.spaces import space_names

    what.add_argument("--benchmark", help=f"a shipped name ({', '.join(shipped_names())}) or a path to a benchmark "
                                          "file (docs/benchmarks.md lists the formats)")
    what.add_argument("--archs", type=Path, default=None,
                      help="a JSON-lines file of architectures of --space, one a line: the architecture itself or "
                           '{"name": ..., "arch": ...} (default name: the architecture id); blank and # lines '
                           "are skipped. A `trainfree search --output` JSON is also taken (its trials' architectures)")
    p.add_argument("--space", default=None, help=f"the space of the --archs architectures ({', '.join(space_names())}),"
                                                 " or a space file .toml/.json (docs/spaces.md)")
    p.add_argument("--metrics", type=metric_list, default=None,
                   help="comma-separated metric names (default: the space's default set, hidden_cov,params for "
                        "NAS-Bench-NLP; see `trainfree metrics`)")
    p.add_argument("--limit", type=positive, default=None, help="score only the first N records")
    p.add_argument("--output", type=Path, required=True, help="scores CSV to write (with a .meta.json beside it)")
    p.add_argument("--recompute", action="store_true",
                   help="compute even the scores the shipped suite holds (by default they are taken from it)")
    settings_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree import api
    from trainfree.scores import streamed_scores
    from trainfree.benchmarks import load_benchmark
    from trainfree.spaces import get_space

    check_outputs(args, args.output, Path(str(args.output) + ".meta.json"))
    if args.archs is not None:
        return run_archs(args)
    if args.space is not None:
        raise TrainfreeError("--space goes with --archs (a benchmark names its own space)")
    bench = load_benchmark(args.benchmark)
    settings = settings_for(args, bench.space, bench.corpus)
    metrics = args.metrics or list(get_space(bench.space).default_metrics)
    with stored_run(args) as (store, progress), streamed_scores(args.output) as writer:
        scored = api.score(bench, metrics, settings, limit=args.limit, store=store, on_progress=progress,
                           sink=writer, shipped=not args.recompute, **execution(args))
    return report(args, writer, api.provenance(settings, metrics, bench.head(args.limit)), scored)


def run_archs(args) -> int:
    """`score --space S --archs FILE`: the file's architectures, their names kept under `archs:FILE`."""
    from trainfree import api
    from trainfree.archs import read_archs
    from trainfree.scores import streamed_scores
    from trainfree.spaces import get_space

    if args.space is None:
        raise TrainfreeError("--archs needs --space (the space whose architectures the file holds)")
    space = get_space(args.space)
    items = read_archs(args.archs, space, limit=args.limit)
    settings = settings_for(args, space.name)
    metrics = args.metrics or list(space.default_metrics)
    label = f"archs:{args.archs}"
    with stored_run(args) as (store, progress), streamed_scores(args.output) as writer:
        scored = api.score(space=space.name, archs=items, metrics=metrics, settings=settings, store=store,
                           on_progress=progress, label=label, sink=writer, shipped=not args.recompute,
                           **execution(args))
    meta = api.provenance(settings, metrics, space=space.name)
    meta["benchmark"] = {"name": label, "source": str(args.archs), "records": len(items)}
    return report(args, writer, meta, scored)


def report(args, writer, meta, scored) -> int:
    """The summary of a CSV ``writer`` (trainfree.scores.ScoresWriter) that got every row as it came."""
    from trainfree.scores import write_meta

    write_meta(args.output, meta)
    counts = writer.counts
    status = ", ".join(f"{counts[k]} {label}" for k, label in (("ok", "ok"), ("nonfinite", "non-finite"),
                                                              ("failed", "failed")) if counts[k] or k == "ok")
    shipped = getattr(scored, "shipped", 0)
    shared = writer.rows - scored.computed - scored.reused - shipped
    twins = f", {shared} shared by identical architectures" if shared > 0 else ""
    suite = f", {shipped} from the shipped suite" if shipped else ""
    print(f"{writer.rows} scores for {writer.items} architectures ({status}): computed {scored.computed}, "
          f"reused {scored.reused} from the store{suite}{twins}; wrote {args.output}")
    if writer.rows and counts["failed"] == writer.rows:
        print(f"trainfree: error: all {writer.rows} scores failed (the first: {writer.first_error})", file=sys.stderr)
        return 1
    return 0
