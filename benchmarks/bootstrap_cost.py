"""The within-group bootstrap's tau-b against scipy's, on the same resamples, in one run: a group of
``--n`` architectures (real PTB hidden covariance against test loss, or synthetic with ties), ``--resamples``
draws, each path timed ``--repeats`` times in alternating order.

    python benchmarks/bootstrap_cost.py [--n 1263] [--resamples 1000] [--repeats 3]

Prints each path's median seconds with its spread (min-max), the ratio, and the largest difference
between the two paths' taus (they compute the same statistic: expect rounding only).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1263, help="architectures in the group (PTB's params "
                        "quintiles hold 1,263 runs each)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from scipy import stats

    from trainfree.evaluation.within import resampled_taus_b

    rng = np.random.default_rng(0)
    v = rng.normal(size=args.n).round(2)  # ties, as real metric values and losses have
    t = v + rng.normal(size=args.n).round(2)
    picks = rng.integers(0, args.n, (args.resamples, args.n))

    def ours():
        return resampled_taus_b(v, t, picks)

    def scipy_loop():
        return np.array([stats.kendalltau(v[p], t[p]).statistic for p in picks])

    times = {"resampled_taus_b": [], "scipy.stats.kendalltau per resample": []}
    results = {}
    for r in range(args.repeats):
        order = [("resampled_taus_b", ours), ("scipy.stats.kendalltau per resample", scipy_loop)]
        for name, fn in order if r % 2 == 0 else reversed(order):
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    for name, ts in times.items():
        print(f"{name}: median {statistics.median(ts):.3f} s (min {min(ts):.3f}, max {max(ts):.3f}) "
              f"for {args.resamples} resamples of {args.n}")
    a, b = (statistics.median(ts) for ts in times.values())
    diff = np.nanmax(np.abs(results["resampled_taus_b"] - results["scipy.stats.kendalltau per resample"]))
    print(f"ratio scipy / resampled_taus_b: {b / a:.1f}x; largest |difference| of the taus: {diff:.2e}")


if __name__ == "__main__":
    main()
