"""Per-group Kendall tau of every metric in a scores CSV (what `correlate --within` averages).

    python benchmarks/per_group_tau.py --benchmark nasbench-bert --scores bert.csv --within num_layers,hidden_size
"""
from __future__ import annotations

import argparse
from pathlib import Path

from trainfree import api
from trainfree.scores import read_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--scores", required=True)
    parser.add_argument("--within", required=True)
    args = parser.parse_args()
    results = api.correlate(args.benchmark, read_scores(Path(args.scores)), within=args.within.split(","))
    for r in results:
        groups = "  ".join(f"{'x'.join(map(str, g.group))} (n={g.n}): {g.kendall_tau:+.3f}" for g in r.within.per_group)
        print(f"{r.metric:22s} {groups}")


if __name__ == "__main__":
    main()
