"""Rank and linear correlation of a metric with a trained target (scipy statistics).

Signs are oriented once, here, from metadata: a positive value always means the metric ranks
better-trained architectures higher. Correlations are never abs()'d.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from trainfree.records import orient


@dataclass(frozen=True)
class Correlation:
    n: int
    dropped: int
    kendall_tau: float
    spearman: float
    pearson: float

    def as_dict(self) -> dict:
        return {"n": self.n, "dropped": self.dropped, "kendall_tau": self.kendall_tau,
                "spearman": self.spearman, "pearson": self.pearson}


def correlate_values(values, targets, *, higher_is_better: bool, target_lower_is_better: bool) -> Correlation:
    """Kendall tau-b, Spearman and Pearson between metric values and targets, signed so that
    positive = the metric ranks better targets higher. Non-finite pairs are dropped and counted."""
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if v.shape != t.shape:
        raise ValueError(f"expected as many values as targets, got {v.shape} and {t.shape}")
    keep = np.isfinite(v) & np.isfinite(t)
    v, t = orient(v[keep], higher_is_better), orient(t[keep], not target_lower_is_better)
    n, dropped = int(keep.sum()), int((~keep).sum())
    if n < 3 or np.ptp(v) == 0 or np.ptp(t) == 0:
        return Correlation(n, dropped, math.nan, math.nan, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = stats.kendalltau(v, t).statistic  # tau-b by default
        rho = stats.spearmanr(v, t).statistic
        r = stats.pearsonr(v, t).statistic
    return Correlation(n, dropped, float(tau), float(rho), float(r))


def _oriented(values, targets, higher_is_better: bool, target_lower_is_better: bool):
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    keep = np.isfinite(v) & np.isfinite(t)
    v, t = v[keep], t[keep]
    return orient(v, higher_is_better), orient(t, not target_lower_is_better)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


#: the statistics bootstrap_ci can resample, and how one resample computes each
_STATISTICS = {"kendall_tau": lambda a, b: stats.kendalltau(a, b).statistic,
               "spearman": lambda a, b: stats.spearmanr(a, b).statistic,
               "pearson": lambda a, b: stats.pearsonr(a, b).statistic if np.ptp(a) and np.ptp(b) else math.nan}


def bootstrap_ci(values, targets, *, higher_is_better: bool, target_lower_is_better: bool, resamples: int = 1000,
                 level: float = 0.95, seed: int = 0,
                 statistics: tuple[str, ...] = ("kendall_tau", "spearman", "pearson")) -> dict[str, Interval]:
    """Percentile bootstrap intervals of ``statistics`` (tau-b, Spearman, Pearson), resampling
    architectures with replacement under ``seed`` (non-finite pairs dropped first); the draws do not
    depend on which statistics are asked for."""
    v, t = _oriented(values, targets, higher_is_better, target_lower_is_better)
    if len(v) < 3:
        return {key: Interval(math.nan, math.nan) for key in statistics}
    rng = np.random.default_rng(seed)
    draws = {key: [] for key in statistics}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(resamples):
            idx = rng.integers(0, len(v), len(v))
            a, b = v[idx], t[idx]
            for key in statistics:
                draws[key].append(_STATISTICS[key](a, b))
    return {key: _percentile_interval(xs, level) for key, xs in draws.items()}


def _percentile_interval(draws, level: float) -> Interval:
    """The central ``level`` share of the finite bootstrap draws."""
    xs = np.asarray(draws, dtype=np.float64)
    xs = xs[np.isfinite(xs)]
    if not len(xs):
        return Interval(math.nan, math.nan)
    tail = (1 - level) / 2 * 100
    return Interval(*map(float, np.percentile(xs, [tail, 100 - tail])))


@dataclass(frozen=True)
class Difference:
    """tau-b of a metric minus tau-b of a baseline on the architectures both scored, with a paired
    percentile-bootstrap interval (the same resampled architectures for both)."""

    n: int
    kendall_tau: float
    low: float
    high: float


def paired_difference(values, baseline, targets, *, higher_is_better: bool, baseline_higher_is_better: bool,
                      target_lower_is_better: bool, resamples: int = 1000, level: float = 0.95,
                      seed: int = 0) -> Difference:
    """Does a metric rank better than a baseline (e.g. the parameter count)? The two taus share their
    architectures, so their difference is resampled in pairs: an interval that excludes 0 is a
    difference this benchmark supports, where two overlapping per-metric intervals say little."""
    v = np.asarray(values, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if not (v.shape == b.shape == t.shape):
        raise ValueError(f"expected values, baseline and targets of one length, got {v.shape}, {b.shape}, {t.shape}")
    keep = np.isfinite(v) & np.isfinite(b) & np.isfinite(t)
    v = orient(v[keep], higher_is_better)
    b = orient(b[keep], baseline_higher_is_better)
    t = orient(t[keep], not target_lower_is_better)
    n = len(t)
    if n < 3:
        return Difference(n, math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        point = stats.kendalltau(v, t).statistic - stats.kendalltau(b, t).statistic
        draws = []
        for _ in range(resamples):
            idx = rng.integers(0, n, n)
            draws.append(stats.kendalltau(v[idx], t[idx]).statistic - stats.kendalltau(b[idx], t[idx]).statistic)
    interval = _percentile_interval(draws, level)
    return Difference(n, float(point), interval.low, interval.high)


def topk_precision(values, targets, k: int, *, higher_is_better: bool, target_lower_is_better: bool) -> float:
    """Share of the true top-k architectures (by target) that the metric also puts in its top-k."""
    v, t = _oriented(values, targets, higher_is_better, target_lower_is_better)
    if k < 1 or len(v) < k:
        return math.nan
    by_metric = set(np.argsort(-v, kind="stable")[:k])
    by_target = set(np.argsort(-t, kind="stable")[:k])
    return len(by_metric & by_target) / k
