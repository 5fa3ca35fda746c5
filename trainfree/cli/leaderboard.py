"""`trainfree leaderboard`: every metric on every shipped benchmark, from the shipped suite."""
from __future__ import annotations

import sys
from pathlib import Path

from trainfree.cli._common import Progress, metric_list, name_list, positive


def add_parser(sub) -> None:
    p = sub.add_parser("leaderboard", help="every metric's Kendall tau, within-group tau and difference to the size "
                                           "baseline on every shipped benchmark, from the shipped suite (seconds); "
                                           "--metrics NEW computes a metric the suite lacks")
    p.add_argument("--benchmarks", type=name_list, default=None, help="comma-separated benchmarks (default: all)")
    p.add_argument("--metrics", type=metric_list, default=None,
                   help="comma-separated metrics (default: every one in the suite); one the suite lacks, such as a "
                        "plug-in's, is computed on every benchmark it applies to through --store")
    p.add_argument("--format", choices=["md", "csv", "html"], default="md", help="md (default), csv or html")
    p.add_argument("--output", type=Path, default=None, help="write here instead of printing")
    p.add_argument("--suite", type=Path, default=None, help="a suite file (default: the shipped one)")
    p.add_argument("--store", type=Path, default=None,
                   help="the store new metrics are computed through (default: $TRAINFREE_STORE or "
                        "~/.cache/trainfree/scores.sqlite)")
    p.add_argument("--jobs", type=positive, default=None, help="parallel jobs for new metrics (default: the cores)")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree.cli._common import write_csv
    from trainfree.executors import default_jobs
    from trainfree.files import atomic_write
    from trainfree.store import Store, default_store_path
    from trainfree.suite.leaderboard import COLUMNS, html_table, leaderboard, markdown
    from trainfree.store.shipped import read_suite

    data = read_suite(args.suite)
    needs_store = data is not None and any(
        m not in e["metrics"] for m in args.metrics or () for e in data["benchmarks"].values())
    store = Store(args.store or default_store_path()) if needs_store else None
    try:
        rows = leaderboard(args.suite, args.benchmarks, args.metrics, store=store, jobs=args.jobs or default_jobs(),
                           on_progress=Progress(args))
    finally:
        if store is not None:
            store.close()
    if args.format == "csv":
        if args.output is None:
            import csv

            out = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, extrasaction="ignore")
            out.writeheader()
            out.writerows(rows)
            return 0
        write_csv(args.output, rows, COLUMNS)
    else:
        text = markdown(rows) if args.format == "md" else html_table(rows, "trainfree leaderboard")
        if args.output is None:
            sys.stdout.write(text)
            return 0
        atomic_write(args.output, lambda fh: fh.write(text))
    print(f"wrote {len(rows)} rows to {args.output}")
    return 0
