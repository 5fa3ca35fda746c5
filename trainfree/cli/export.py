"""`trainfree export`: dump a results store as CSV or Parquet."""
from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a results store as CSV or Parquet")
    p.add_argument("--store", type=Path, default=None, help="the store (default: the default store)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv",
                   help="csv (default), or parquet (needs trainfree[parquet])")
    p.add_argument("--output", type=Path, required=True, help="the file to write (one row per stored score)")
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree import api
    from trainfree.store import default_store_path

    from trainfree.cli._common import check_outputs

    check_outputs(args, args.output)
    path = args.store or default_store_path()
    n = api.export(path, args.output, args.format)
    print(f"exported {n} rows from {path} to {args.output}")
    return 0
