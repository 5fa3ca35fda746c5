"""Size-controlled (within-group) correlations: against scipy per group, a planted size-only metric,
seeded intervals, the paired difference to a baseline, factor errors, and the CLI."""
import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from trainfree.benchmarks import load_benchmark
from trainfree.errors import TrainfreeError
from trainfree.evaluation.benchmark_correlation import correlate
from trainfree.evaluation.within import MIN_GROUP, within_correlation
from trainfree.records import Score, Status
from trainfree.spaces import get_space


@pytest.fixture(scope="module")
def planted():
    """LTS GPT-2 WikiText-103 architectures (n_layer 2..16) with a planted target: perplexity falls with
    depth and with a hidden quality q. ``params`` tracks depth only (plus noise unrelated to q);
    ``decoder_params`` tracks q only."""
    real = load_benchmark("lts:random_GPT2_wt103")
    space = get_space(real.space)
    layers = np.array([space.factors(r.arch)["n_layer"] for r in real.records], dtype=float)
    rng = np.random.default_rng(7)
    q = rng.normal(size=len(layers))
    ppl = 100 - 4 * layers - q
    bench = dataclasses.replace(real, records=[dataclasses.replace(r, target=float(p))
                                               for r, p in zip(real.records, ppl)])
    size_only = layers * 1e6 + rng.normal(size=len(layers)) * 1e3
    quality = q + rng.normal(size=len(layers)) * 0.5
    scores = ([Score("", "params", float(v), Status.OK, name=r.name) for r, v in zip(real.records, size_only)]
              + [Score("", "decoder_params", float(v), Status.OK, name=r.name) for r, v in zip(real.records, quality)])
    return bench, layers, scores


def _by_hand(values, targets, groups):
    """Weighted mean of scipy's tau-b per group (weights = group sizes), targets lower-is-better."""
    taus, weights = [], []
    for g in sorted(set(groups)):
        idx = [i for i, x in enumerate(groups) if x == g]
        if len(idx) < MIN_GROUP:
            continue
        taus.append(stats.kendalltau(np.asarray(values)[idx], -np.asarray(targets)[idx]).statistic)
        weights.append(len(idx))
    return float(np.dot(taus, weights) / sum(weights))


def test_weighted_within_tau_matches_scipy_per_group(planted):
    bench, layers, scores = planted
    results = {r.metric: r for r in correlate(bench, scores, within=["n_layer"], resamples=50)}
    targets = [r.target for r in bench.records]
    for metric in ("params", "decoder_params"):
        values = [s.value for s in scores if s.metric == metric]
        w = results[metric].within
        assert w.kendall_tau == pytest.approx(_by_hand(values, targets, list(layers)))
        assert w.groups == 15 and w.skipped == 0 and w.n == len(bench.records)
        for g in w.per_group:
            idx = layers == g.group[0]
            assert g.n == idx.sum()
            assert g.kendall_tau == pytest.approx(stats.kendalltau(np.asarray(values)[idx],
                                                                   -np.asarray(targets)[idx]).statistic)


def test_a_size_only_metric_has_global_tau_high_and_within_tau_near_zero(planted):
    bench, _, scores = planted
    results = {r.metric: r for r in correlate(bench, scores, within="n_layer", resamples=200, seed=3)}
    size, quality = results["params"], results["decoder_params"]
    assert size.correlation.kendall_tau > 0.7
    assert abs(size.within.kendall_tau) < 0.15 and size.within.low < 0 < size.within.high
    assert quality.within.kendall_tau > 0.5 and quality.within.low > 0.3


def test_small_groups_are_skipped_and_counted():
    labels = [("a",)] * 5 + [("b",)] * 2 + [None] * 3
    v = [1, 2, 3, 4, 5, 9, 8, 1, 2, 3]
    t = [1, 2, 3, 5, 4, 1, 2, 3, 2, 1]
    w = within_correlation(v, t, labels, higher_is_better=True, target_lower_is_better=False, resamples=20)
    assert (w.groups, w.skipped, w.n) == (1, 1, 5)
    assert w.kendall_tau == pytest.approx(stats.kendalltau(v[:5], t[:5]).statistic)
    # a constant metric inside a group: tau undefined there, counted apart, NaN overall
    flat = within_correlation([1] * 5, t[:5], labels[:5], higher_is_better=True, target_lower_is_better=False,
                              resamples=20)
    assert flat.undefined == 1 and flat.groups == 0 and math.isnan(flat.kendall_tau)


def test_bootstrap_interval_is_seeded_and_paired_difference_uses_the_same_resamples(planted):
    bench, _, scores = planted
    run = lambda seed: {r.metric: r.within for r in correlate(bench, scores, within=["n_layer"], baseline="params",  # noqa: E731
                                                                resamples=100, seed=seed)}
    a, b, c = run(1), run(1), run(2)
    assert a == b and a["decoder_params"].low != c["decoder_params"].low
    q = a["decoder_params"]
    assert q.low <= q.kendall_tau <= q.high
    assert q.minus_baseline == pytest.approx(q.kendall_tau - a["params"].kendall_tau)
    assert q.minus_baseline_low > 0
    assert a["params"].minus_baseline == 0 and a["params"].minus_baseline_high == 0


def test_params_bins_and_unknown_factors(planted):
    bench, _, scores = planted
    w = {r.metric: r.within for r in correlate(bench, scores, within=["params:4"], resamples=20)}
    assert w["params"].groups == 4 and sum(g.n for g in w["params"].per_group) == len(bench.records)
    with pytest.raises(TrainfreeError, match=r"unknown factor 'n_layers'.*did you mean 'n_layer'"):
        correlate(bench, scores, within=["n_layers"])
    with pytest.raises(TrainfreeError, match="bin count"):
        correlate(bench, scores, within=["params:x"])
    with pytest.raises(TrainfreeError, match="only a size metric"):
        correlate(bench, scores, within=["latency:3"])


@pytest.mark.slow
def test_cli_within_on_a_shipped_benchmark(tmp_path):
    scores = tmp_path / "s.csv"
    run = lambda *a: subprocess.run([sys.executable, "-m", "trainfree", *a], capture_output=True, text=True,  # noqa: E731
                                    timeout=300)
    done = run("score", "--benchmark", "nasbench-nlp-ptb", "--metrics", "params,hidden_cov", "--limit", "12",
               "--size", "tiny", "--batch-size", "4", "--seq-len", "8", "--jobs", "1", "--no-store", "--quiet",
               "--output", str(scores))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "c.csv"
    done = run("correlate", "--benchmark", "nasbench-nlp-ptb", "--scores", str(scores), "--within", "num_nodes",
               "--baseline", "params", "--resamples", "20", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "inside groups of equal" in done.stdout and "within tau [95% CI]" in done.stdout and "- params [paired]" in done.stdout
    header = out.read_text().splitlines()[0].split(",")
    assert {"within_tau", "within_low", "within_high", "within_groups"} <= set(header)
    bad = run("correlate", "--benchmark", "nasbench-nlp-ptb", "--scores", str(scores), "--within", "num_node")
    assert bad.returncode != 0 and "did you mean 'num_nodes'" in bad.stderr and "Traceback" not in bad.stderr


def test_resampled_tau_b_matches_scipy_with_ties(monkeypatch):
    from trainfree.evaluation import within
    from trainfree.evaluation.within import resampled_taus_b

    rng = np.random.default_rng(0)
    v = rng.integers(0, 4, 9).astype(float)
    t = rng.integers(0, 5, 9).astype(float)
    picks = rng.integers(0, 9, (40, 9))
    picks[0] = 3  # a constant resample: NaN, as scipy gives
    expected = [stats.kendalltau(v[p], t[p]).statistic for p in picks]
    np.testing.assert_allclose(resampled_taus_b(v, t, picks), expected, equal_nan=True)
    monkeypatch.setattr(within, "_BATCH_CELLS", 3000)  # three batches of ten
    big = rng.normal(size=300).round(1)  # many ties
    target = big + rng.normal(size=300)
    picks = rng.integers(0, 300, (30, 300))
    expected = [stats.kendalltau(big[p], target[p]).statistic for p in picks]
    np.testing.assert_allclose(resampled_taus_b(big, target, picks), expected, rtol=1e-12)


def test_report_shows_the_within_table(planted):
    pytest.importorskip("matplotlib")
    from trainfree.report import render

    bench, _, scores = planted
    page = render(bench, scores, {}, resamples=20, within=["n_layer"])
    assert "<h2 id='within'>Within groups of equal n_layer</h2>" in page and "href='#within'" in page
    assert "within − params [paired 95% CI]" in page
    assert "within" not in render(bench, scores, {}, resamples=20).split("<h2 id='scatter'>")[0].lower()
