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
    v, t = v[keep], t[keep]
    if not higher_is_better:
        v = -v
    if target_lower_is_better:
        t = -t
    n, dropped = int(keep.sum()), int((~keep).sum())
    if n < 3 or np.ptp(v) == 0 or np.ptp(t) == 0:
        return Correlation(n, dropped, math.nan, math.nan, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = stats.kendalltau(v, t).statistic  # tau-b by default
        rho = stats.spearmanr(v, t).statistic
        r = stats.pearsonr(v, t).statistic
    return Correlation(n, dropped, float(tau), float(rho), float(r))
