"""What training-free searches choose in the shipped benchmarks: mean trained result and percentile
of the chosen architecture over 20 seeds, budget 100 metric evaluations, for a uniformly random
choice, random search and regularized evolution with the space's best metric.

    python benchmarks/search_quality.py [--store PATH] [--seeds 20] [--budget 100] [--jobs 2]

Every benchmark architecture is scored once first (through the store, so a second run is fast).
Goal: on NAS-Bench-NLP PTB, the hidden_cov searches choose architectures whose mean test
loss is below the benchmark's 10th percentile.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from trainfree.benchmarks import load_benchmark
from trainfree.search import search_eval
from trainfree.spaces import get_space
from trainfree.store import Store

RUNS = (("nasbench-nlp-ptb", ["hidden_cov"]), ("nasbench-bert", ["head_confidence", "params"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("search-quality.sqlite"))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with Store(args.store) as store:
        for name, metrics in RUNS:
            bench = load_benchmark(name)
            settings = get_space(bench.space).default_settings().with_(device="cpu")
            settings = settings.with_(corpus=bench.corpus) if bench.corpus else settings
            start = time.perf_counter()
            rows, summary = search_eval(bench, metrics, ["random", "evolution"], list(range(args.seeds)),
                                        args.budget, settings, store, jobs=args.jobs)
            print(f"\n{name}: {summary['distinct_architectures']} distinct architectures, target {bench.target} "
                  f"({'lower' if bench.lower_is_better else 'higher'} is better), best {summary['best']:.4f}, "
                  f"10th percentile {summary['p10']:.4f}; budget {args.budget}, {args.seeds} seeds; "
                  f"{time.perf_counter() - start:.0f} s with scoring")
            print("| strategy | metric | runs | mean target | sd | percentile (0 = best): mean | median | "
                  "share at or beyond the 10th percentile | mean regret |")
            print("|---|---|---|---|---|---|---|---|---|")
            for r in rows:
                print(f"| {r['strategy']} | {r['metric']} | {r['searches']} | {r['target_mean']:.4f} | "
                      f"{r['target_sd']:.4f} | {r['percentile_mean']:.1f} | {r['percentile_median']:.1f} | "
                      f"{r['share_beyond_p10']:.2f} | {r['regret_mean']:.4f} |")


if __name__ == "__main__":
    main()
