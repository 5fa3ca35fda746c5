"""`trainfree metrics`: list the registered metrics."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("metrics", help="list the registered metrics")
    p.add_argument("--space", default=None, help="only the metrics of this space (nasbench-nlp, nasbench-bert, decoder)")
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree.metrics import METRICS
    from trainfree.spaces import get_space

    if args.space:
        get_space(args.space)  # an unknown space name raises, listing the spaces
    shown = [m for m in METRICS if not args.space or args.space in m.spaces]
    width = max(len(m.name) for m in shown)
    for m in shown:
        direction = "higher" if m.higher_is_better else "lower"
        print(f"{m.name:{width}s} {direction:6s} v{m.version:3s} needs={','.join(sorted(m.needs)):24s} "
              f"spaces={','.join(m.spaces):14s} {m.description}")
    return 0
