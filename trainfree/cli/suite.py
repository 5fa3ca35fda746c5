"""`trainfree suite`: compute the zero-cost suite through a store (resumable), then write its file."""
from __future__ import annotations

import sys
from pathlib import Path

from trainfree.cli._common import Progress, duration, metric_list, name_list, positive


def add_parser(sub) -> None:
    p = sub.add_parser("suite", help="compute every metric on every shipped benchmark's architectures through a "
                                     "store (resumable), and write the suite file the leaderboard reads")
    p.add_argument("--store", type=Path, required=True,
                   help="the store the run goes through (a killed run resumes from it; the run may span sessions)")
    p.add_argument("--output", type=Path, default=None,
                   help="write the suite file here (gzip JSON; the shipped one is trainfree/data/suite/suite.json.gz)")
    p.add_argument("--benchmarks", type=name_list, default=None,
                   help="comma-separated shipped benchmarks (default: every one)")
    p.add_argument("--metrics", type=metric_list, default=None,
                   help="comma-separated metrics (default: every registered metric that applies to each benchmark)")
    p.add_argument("--no-run", action="store_true", help="write the file from what the store holds; compute nothing")
    p.add_argument("--partial", action="store_true",
                   help="with --output: write a metric the store holds only in part, marked 'partial' with its "
                        "count (default: refuse, naming what is missing)")
    p.add_argument("--jobs", type=positive, default=None, help="parallel jobs (default: the number of cores)")
    p.add_argument("--coverage", type=Path, default=None,
                   help="with --output: also write the coverage table (markdown: metrics x benchmarks) here")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree.executors import default_jobs
    from trainfree.store import Store
    from trainfree.files import atomic_write
    from trainfree.suite.build import collect, coverage_markdown, run_suite, write_suite

    with Store(args.store) as store:
        if not args.no_run:
            def said(name, computed, reused, seconds):
                print(f"{name}: computed {computed}, reused {reused} from the store in {duration(seconds)}", flush=True)

            run_suite(store, args.benchmarks, args.metrics, jobs=args.jobs or default_jobs(), on_benchmark=said,
                      on_progress=Progress(args))
        if args.output is None:
            return 0
        data = collect(store, args.benchmarks, args.metrics, partial=args.partial)
    size = write_suite(args.output, data)
    cells = sum(len(b["metrics"]) for b in data["benchmarks"].values())
    cpu = sum(m["cpu_seconds"] for b in data["benchmarks"].values() for m in b["metrics"].values())
    print(f"wrote {args.output}: {len(data['benchmarks'])} benchmarks, {cells} (benchmark, metric) cells, "
          f"{cpu / 3600:.2f} CPU-hours of scoring, {size / 2 ** 20:.2f} MiB", file=sys.stdout)
    if args.coverage is not None:
        table = coverage_markdown(data)
        atomic_write(args.coverage, lambda fh: fh.write(table))
        print(f"wrote {args.coverage}")
    return 0
