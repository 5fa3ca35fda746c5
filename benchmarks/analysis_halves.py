"""How often `analyze` finds "4 layers and hidden 256" on random halves of the shipped NAS-Bench-BERT.

Half h (h = 0 .. N-1) is 180 (--size) of the 361 architectures drawn without replacement by
numpy.random.default_rng(seed + h), and its rule's permutations use the same seed. Prints the count
(goal: at least 90 of 100) and every other rule found. With --legacy, also the rule `analyze` used
before (greedy descent, Welch t-test at 0.01, each kept set at least 25% of all architectures) on the
same halves, for comparison.

    python benchmarks/analysis_halves.py [--halves 100] [--seed 0] [--alpha 0.01] [--size 180] [--legacy]
"""
from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter

import numpy as np
from scipy import stats

from trainfree.benchmarks import Benchmark, load_benchmark
from trainfree.evaluation.analysis import (benchmark_factors, candidates, condition_masks, induce_rule, rule_text,
                                           simplify)

TARGET = "num_layers == 4 and hidden_size == 256"


def legacy_rule(facts: list[dict], y: np.ndarray, min_keep: float = 0.25, alpha: float = 0.01,
                max_conditions: int = 3) -> tuple:
    """The rule before the permutation test: a split may keep no less than ``min_keep`` of all."""
    conds = candidates(facts)
    masks = condition_masks(facts, conds)
    keep = np.ones(len(y), dtype=bool)
    chosen = []
    while len(chosen) < max_conditions:
        best, best_gain = None, 0.0
        for c, m in zip(conds, masks):
            kept, dropped = keep & m, keep & ~m
            nk, nd = int(kept.sum()), int(dropped.sum())
            if nk < max(2, min_keep * len(y)) or nd < 2:
                continue
            diff = y[kept].mean() - y[dropped].mean()
            gain = nk * nd / (nk + nd) * diff ** 2
            if diff > 0 and gain > best_gain:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if stats.ttest_ind(y[kept], y[dropped], equal_var=False).pvalue < alpha:
                        best, best_gain = (c, m), gain
        if best is None:
            break
        chosen.append(best[0])
        keep &= best[1]
    return simplify(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--halves", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--permutations", type=int, default=999)
    parser.add_argument("--size", type=int, default=None, help="architectures per draw (default half: 180)")
    parser.add_argument("--legacy", action="store_true", help="also count the old min_keep = 0.25 rule")
    args = parser.parse_args()

    bench = load_benchmark("nasbench-bert")
    facts = benchmark_factors(bench)
    size = args.size or len(bench) // 2
    found, legacy = Counter(), Counter()
    start = time.perf_counter()
    for h in range(args.halves):
        rows = np.sort(np.random.default_rng(args.seed + h).choice(len(bench), size, replace=False))
        half = Benchmark(f"{bench.name} half {h}", bench.space, [bench.records[i] for i in rows], bench.target,
                         bench.lower_is_better)
        sub = [facts[i] for i in rows]
        rule = induce_rule(half, sub, alpha=args.alpha, permutations=args.permutations, seed=args.seed + h)
        found[rule_text(rule.simplified)] += 1
        if args.legacy:
            legacy[rule_text(legacy_rule(sub, np.array([r.target for r in half.records])))] += 1
    seconds = time.perf_counter() - start
    print(f"{args.halves} random draws ({size} of {len(bench)} architectures) of nasbench-bert, alpha {args.alpha}, "
          f"{args.permutations} permutations, seed {args.seed} ({seconds:.1f} s)")
    print(f"rule '{TARGET}': {found[TARGET]} of {args.halves}")
    for text, n in found.most_common():
        if text != TARGET:
            print(f"  other: {text}: {n}")
    if args.legacy:
        print(f"old rule (min_keep 0.25, Welch t at 0.01) '{TARGET}': {legacy[TARGET]} of {args.halves}")
        for text, n in legacy.most_common():
            if text != TARGET:
                print(f"  other: {text}: {n}")


if __name__ == "__main__":
    main()
