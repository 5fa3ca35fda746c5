"""`trainfree reproduce`: the paper's tables, trainfree beside the published columns."""
from __future__ import annotations

import json
from pathlib import Path

from trainfree.cli._common import (check_outputs, execution, invocation, metric_list, positive, print_table, settings_args,
                                   settings_for, stored_run, write_csv)


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the paper's tables")
    p.add_argument("part", choices=["rnn", "bert"], help="which table")
    p.add_argument("--benchmark", default=None, help="benchmark (default nasbench-nlp-ptb / nasbench-bert)")
    p.add_argument("--published", default="shipped",
                   help="published metrics CSV: 'shipped' (default), a path, or 'none' (e.g. for WikiText-2)")
    p.add_argument("--metrics", type=metric_list, default=None, help="metrics (default: all with a published column)")
    p.add_argument("--limit", type=positive, default=None, help="use only the first N records")
    p.add_argument("--output-dir", default="results", help="where to write NAME.csv, NAME.md (default results/)")
    p.add_argument("--name", default=None, help="output file stem (default results-PART)")
    p.add_argument("--recompute", action="store_true",
                   help="compute even the scores the shipped suite holds (by default they are taken from it)")
    settings_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.evaluation.reproduce import PARTS
    from trainfree.files import atomic_write

    check_outputs(args, dirs={"--output-dir": args.output_dir})
    part = PARTS[args.part]
    bench = load_benchmark(args.benchmark or part["benchmark"])
    settings = settings_for(args, bench.space, bench.corpus)
    with stored_run(args) as (store, progress):
        result = api.reproduce(args.part, bench, args.metrics, None if args.published == "none" else args.published,
                               settings, limit=args.limit, store=store, on_progress=progress, shipped=not args.recompute,
                               **execution(args))
    dicts = [r.as_dict() for r in result.table]
    print_table(dicts, ["metric", "ours_n", "ours_kendall_tau", "published_kendall_tau", "ours_spearman",
                        "agreement_spearman", "seconds_median"])
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or f"results-{args.part}"
    write_csv(out / f"{name}.csv", dicts, list(dicts[0]))
    title = f"{part['title']} metrics on {result.benchmark.name}"
    page = result.markdown(title, invocation("reproduce", "reproduce " + args.part))
    atomic_write(out / f"{name}.md", lambda fh: fh.write(page))
    atomic_write(out / f"{name}.meta.json", lambda fh: json.dump(result.provenance, fh, indent=2, sort_keys=True))
    print(f"wrote {out / (name + '.csv')} and {out / (name + '.md')}")
    return 0
