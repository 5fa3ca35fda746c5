"""Do features of the cell graph (GRAF-style: operation counts, path lengths, the depth of the cell)
add to hidden covariance on NAS-Bench-NLP PTB? Nested, grouped cross-validation as `trainfree combine`
(5 outer folds, 3 inner, grouped by cell, seed 0), on the shipped runs, with the published hidden
covariance columns of layers 1-3, or the 11 paper columns trainfree reproduces, as the metric inputs.

    python benchmarks/cell_features.py [--learner boosted] [--sets hc3+cell,cell]

Prints each input set's held-out Kendall tau (mean +- sd over the outer folds, pooled out-of-fold).
"""
from __future__ import annotations

import argparse
import math
import numpy as np

HC3 = ["hidden_cov", "hidden_cov_l2", "hidden_cov_l3"]
#: the 11 published columns trainfree reproduces (rnn_paper_combo's inputs)
PAPER = ["activation_distance", "hidden_cov", "hidden_cov_l2", "hidden_cov_l3", "hidden_synaptic_saliency",
         "jacob_cosine", "jacob_cosine_large_noise", "jacob_cosine_more_noise", "jacob_cov_large_noise",
         "jacob_cov_more_noise", "synaptic_saliency_csv"]


def cell_features(recipe) -> dict[str, float]:
    """The cell-graph metrics' values (trainfree.metrics.cell_graph), read off the recipe."""
    from trainfree.metrics.cell_graph import FEATURES

    graph = recipe.graph_features()
    return {name: float(graph[key]) for name, (key, _) in FEATURES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learner", default="boosted", choices=["linear", "boosted"])
    parser.add_argument("--sets", default="hc3+cell,cell,paper+cell",
                        help="comma-separated sets of hc1, hc3, paper, cell joined by +")
    args = parser.parse_args()
    from trainfree.benchmarks import load_benchmark
    from trainfree.evaluation.combine import nested_cv, published_entries
    from trainfree.spaces import get_space

    bench = load_benchmark("nasbench-nlp-ptb")
    space = get_space(bench.space)
    published: dict[str, dict[str, float]] = {}
    for e in published_entries(bench):
        if e.metric in PAPER:
            published.setdefault(e.name, {})[e.metric] = e.value
    rows, y, groups = [], [], []
    names = None
    for r in bench.records:
        pub = published.get(r.name, {})
        if len(pub) < len(PAPER) or not all(math.isfinite(v) for v in pub.values()) or not math.isfinite(r.target):
            continue
        feats = cell_features(r.arch)
        names = names or list(feats)
        rows.append({"hc1": [pub["hidden_cov"]], "hc3": [pub[m] for m in HC3], "paper": [pub[m] for m in PAPER],
                     "cell": [feats[k] for k in names]})
        y.append(-r.target)  # test loss: lower is better
        groups.append(space.arch_id(r.arch))
    y = np.asarray(y)
    print(f"{len(y)} PTB runs ({len(set(groups))} distinct cells; every run with all {len(PAPER)} published "
          f"columns finite); cell features: {', '.join(names)}")
    for chosen in args.sets.split(","):
        parts = chosen.split("+")
        x = np.asarray([sum((row[p] for p in parts), []) for row in rows])
        cv = nested_cv(args.learner, x, y, groups, folds=5, inner_folds=3, seed=0)
        print(f"{chosen:>9} ({x.shape[1]} inputs, {args.learner}): held-out tau {cv.mean_tau:.3f} +- {cv.sd_tau:.3f} "
              f"(folds {', '.join(f'{t:.3f}' for t in cv.fold_taus)}), pooled {cv.pooled_tau:.3f}", flush=True)


if __name__ == "__main__":
    main()
