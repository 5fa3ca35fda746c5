"""Write a seeded random sample of NAS-Bench-NLP PTB cells as a results CSV (every run of each chosen cell).

Cells are listed in the sampled order, so the first k cells of the file are themselves a seeded random
sample (``trainfree score --limit`` on a prefix keeps that property, counted in runs).

    python benchmarks/ptb_sample.py [--cells 400] [--seed 0] [--output benchmarks/results/ptb-sample400.csv]
"""
from __future__ import annotations

import argparse
import csv
import gzip
from importlib import resources

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results/ptb-sample400.csv")
    args = parser.parse_args()
    path = resources.files("trainfree.data") / "nasbench_nlp" / "ptb_results.csv.gz"
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    col = header.index("recipe")
    cells = sorted({r[col] for r in body})
    chosen = [cells[i] for i in np.random.default_rng(args.seed).choice(len(cells), args.cells, replace=False)]
    by_cell: dict[str, list] = {}
    for r in body:
        by_cell.setdefault(r[col], []).append(r)
    with open(args.output, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for c in chosen:
            w.writerows(by_cell[c])
    print(f"{args.output}: {args.cells} cells, {sum(len(by_cell[c]) for c in chosen)} runs (seed {args.seed})")


if __name__ == "__main__":
    main()
