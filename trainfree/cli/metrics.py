"""`trainfree metrics`: list the registered metrics."""
from __future__ import annotations


def add_parser(sub) -> None:
    from trainfree.spaces import space_names

    p = sub.add_parser("metrics", help="list the registered metrics")
    p.add_argument("--space", default=None, choices=space_names(), help="only the metrics that apply to this space")
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree.metrics import METRICS
    from trainfree.metrics.base import ALIASES

    shown = [m for m in METRICS if not args.space or m.applies_to(args.space)]
    width = max(len(m.name) for m in shown)
    for m in shown:
        direction = "higher" if m.higher_is_better else "lower"
        print(f"{m.name:{width}s} {direction:6s} v{m.version:3s} needs={','.join(sorted(m.needs)):24s} "
              f"spaces={','.join(m.spaces):14s} {m.description}")
    for old, new in ALIASES.items():
        if not args.space or METRICS.get(new).applies_to(args.space):
            print(f"{old:{width}s} alias of {new}")
    return 0
