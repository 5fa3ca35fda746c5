"""Correlation statistics against scipy, sign orientation and dropped counts."""
import math

import numpy as np
import pytest
from scipy import stats

from trainfree.evaluation.correlation import correlate_values


def test_matches_scipy_with_orientation():
    rng = np.random.default_rng(0)
    v = rng.normal(size=200)
    t = v * 0.5 + rng.normal(size=200)
    c = correlate_values(v, t, higher_is_better=True, target_lower_is_better=False)
    assert c.kendall_tau == pytest.approx(stats.kendalltau(v, t).statistic)
    assert c.spearman == pytest.approx(stats.spearmanr(v, t).statistic)
    assert c.pearson == pytest.approx(stats.pearsonr(v, t).statistic)
    # a loss target (lower is better) flips the sign; so does a lower-is-better metric
    lossy = correlate_values(v, -t, higher_is_better=True, target_lower_is_better=True)
    assert lossy.kendall_tau == pytest.approx(c.kendall_tau)
    flipped = correlate_values(-v, t, higher_is_better=False, target_lower_is_better=False)
    assert flipped.spearman == pytest.approx(c.spearman)


def test_tau_b_with_ties():
    v = [1, 1, 2, 3, 3, 3, 4]
    t = [1, 2, 2, 3, 4, 4, 5]
    c = correlate_values(v, t, higher_is_better=True, target_lower_is_better=False)
    assert c.kendall_tau == pytest.approx(stats.kendalltau(v, t, variant="b").statistic)


def test_non_finite_pairs_are_dropped_and_counted():
    c = correlate_values([1, 2, math.nan, 4, math.inf, 6], [1, 2, 3, 4, 5, 7],
                         higher_is_better=True, target_lower_is_better=False)
    assert (c.n, c.dropped) == (4, 2) and c.kendall_tau == pytest.approx(1.0)


def test_degenerate_inputs_give_nan():
    c = correlate_values([1, 1, 1], [1, 2, 3], higher_is_better=True, target_lower_is_better=False)
    assert math.isnan(c.kendall_tau) and c.n == 3


def test_bootstrap_interval_contains_the_estimate_and_is_seeded():
    from trainfree.evaluation.correlation import bootstrap_ci

    rng = np.random.default_rng(3)
    v = rng.normal(size=150)
    t = v + rng.normal(size=150)
    point = correlate_values(v, t, higher_is_better=True, target_lower_is_better=False)
    ci = bootstrap_ci(v, t, higher_is_better=True, target_lower_is_better=False, resamples=200, seed=1)
    assert ci["kendall_tau"].low < point.kendall_tau < ci["kendall_tau"].high
    assert ci["spearman"].low < point.spearman < ci["spearman"].high
    again = bootstrap_ci(v, t, higher_is_better=True, target_lower_is_better=False, resamples=200, seed=1)
    assert again == ci


def test_paired_difference_against_a_baseline():
    from trainfree.evaluation.correlation import paired_difference

    rng = np.random.default_rng(5)
    t = rng.normal(size=200)  # a loss: lower is better
    good = -t + 0.3 * rng.normal(size=200)  # higher is better, close to the loss order
    weak = t + 3.0 * rng.normal(size=200)  # lower is better, mostly noise
    d = paired_difference(good, weak, t, higher_is_better=True, baseline_higher_is_better=False,
                          target_lower_is_better=True, resamples=200, seed=0)
    expected = stats.kendalltau(good, -t).statistic - stats.kendalltau(-weak, -t).statistic
    assert d.n == 200 and d.kendall_tau == pytest.approx(expected)
    assert 0 < d.low <= d.kendall_tau <= d.high
    same = paired_difference(good, good, t, higher_is_better=True, baseline_higher_is_better=True,
                             target_lower_is_better=True, resamples=50)
    assert (same.kendall_tau, same.low, same.high) == (0.0, 0.0, 0.0)  # paired: no spread at all
    weak[:10] = np.nan  # pairs with a non-finite value on either side are dropped
    assert paired_difference(good, weak, t, higher_is_better=True, baseline_higher_is_better=False,
                             target_lower_is_better=True, resamples=20).n == 190


def test_topk_precision():
    from trainfree.evaluation.correlation import topk_precision

    targets = [5.0, 4.0, 3.0, 2.0, 1.0]  # a loss: the last ones are best
    assert topk_precision([1, 2, 3, 4, 5], targets, 2, higher_is_better=True, target_lower_is_better=True) == 1.0
    assert topk_precision([5, 4, 3, 2, 1], targets, 2, higher_is_better=True, target_lower_is_better=True) == 0.0
    assert topk_precision([1, 2, 3, 5, 4], targets, 1, higher_is_better=True, target_lower_is_better=True) == 0.0
    assert math.isnan(topk_precision([1, 2], [1, 2], 3, higher_is_better=True, target_lower_is_better=False))
