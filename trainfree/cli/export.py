"""`trainfree export`: dump a results store as CSV or Parquet, or the zero-cost suite in NASLib's schema."""
from __future__ import annotations

from pathlib import Path

from trainfree.cli._common import name_list


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a results store as CSV or Parquet, or the zero-cost suite in "
                                      "NAS-Bench-Suite-Zero's schema")
    p.add_argument("--store", type=Path, default=None, help="the store (default: the default store)")
    p.add_argument("--format", choices=["csv", "parquet", "naslib"], default="csv",
                   help="csv (default), parquet (needs trainfree[parquet]): the store, one row per score; naslib: "
                        "the suite, one zc_BENCHMARK.json per benchmark in the --output folder (docs/suite.md)")
    p.add_argument("--suite", type=Path, default=None, help="with --format naslib: a suite file (default: the shipped one)")
    p.add_argument("--benchmarks", type=name_list, default=None,
                   help="with --format naslib: comma-separated benchmarks (default: every one in the suite)")
    p.add_argument("--output", type=Path, required=True,
                   help="the file to write (csv, parquet), or the folder (naslib)")
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree import api
    from trainfree.store import default_store_path

    from trainfree.cli._common import check_outputs

    if args.format == "naslib":
        from trainfree.errors import TrainfreeError
        from trainfree.suite.naslib import write_naslib
        from trainfree.store.shipped import read_suite

        data = read_suite(args.suite)
        if data is None:
            raise TrainfreeError("this install ships no suite file: pass one with --suite FILE")
        unknown = [b for b in args.benchmarks or () if b not in data["benchmarks"]]
        if unknown:
            raise TrainfreeError(f"not in the suite: {', '.join(unknown)}")
        paths = write_naslib(data, args.output, args.benchmarks)
        print(f"wrote {len(paths)} files in NAS-Bench-Suite-Zero's schema to {args.output}/")
        return 0
    check_outputs(args, args.output)
    path = args.store or default_store_path()
    n = api.export(path, args.output, args.format)
    print(f"exported {n} rows from {path} to {args.output}")
    return 0
