"""The within-group bootstrap's tau-b against scipy's, on the same resamples, in one run: a group of
``--n`` architectures (real PTB hidden covariance against test loss, or synthetic with ties), ``--resamples``
draws, each path timed ``--repeats`` times in alternating order.

    python benchmarks/bootstrap_cost.py [--n 1263] [--resamples 1000] [--repeats 3]

Prints each path's median seconds with its spread (min-max), the ratio, and the largest difference
between the two paths' taus (they compute the same statistic: expect rounding only); then the path the
library used before (an n x n sign array per resample, trainfree <= session 9) on the first
``--old-resamples`` resamples, per resample against ours.
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
    parser.add_argument("--old-resamples", type=int, default=20)
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
    few = picks[:args.old_resamples]
    start = time.perf_counter()
    old = _old_taus_b(v[few], t[few])
    per_old = (time.perf_counter() - start) / len(few)
    print(f"the previous path (n x n signs per resample): {per_old * 1e3:.1f} ms per resample against "
          f"{a / args.resamples * 1e3:.2f} ms: {per_old / (a / args.resamples):.0f}x; largest |difference|: "
          f"{np.nanmax(np.abs(old - results['resampled_taus_b'][:len(few)])):.2e}")


def _old_taus_b(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The within-group tau-b trainfree used through session 9: sign arrays of every pair, per resample."""
    out = np.empty(len(v))
    step = max(1, 4_000_000 // v.shape[1] ** 2)
    for lo in range(0, len(v), step):
        a, b = v[lo:lo + step], t[lo:lo + step]
        da = np.sign(a[:, :, None] - a[:, None, :])
        db = np.sign(b[:, :, None] - b[:, None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo:lo + step] = (da * db).sum(axis=(1, 2)) / np.sqrt(
                np.count_nonzero(da, axis=(1, 2)).astype(float) * np.count_nonzero(db, axis=(1, 2)))
    return out


if __name__ == "__main__":
    main()
