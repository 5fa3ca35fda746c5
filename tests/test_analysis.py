"""Search-space analysis: every space's factors, the permutation-tested rule (planted effect found,
noise left alone), its bootstrap stability, and `trainfree analyze` on the command line."""
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from trainfree import api
from trainfree.benchmarks import Benchmark, Record, load_benchmark, shipped_names
from trainfree.errors import TrainfreeError
from trainfree.evaluation.analysis import (Condition, benchmark_factors, candidates, condition_masks, factor_table,
                                           induce_rule, rule_stability, simplify)
from trainfree.spaces import SPACES, get_space


def _space_names() -> list[str]:
    get_space("nasbench-nlp")  # fills the registry
    return SPACES.names()


def _bench(ys, space="toy", lower_is_better=False, archs=None) -> Benchmark:
    archs = archs if archs is not None else [None] * len(ys)
    return Benchmark("synthetic", space, [Record(f"a{i}", a, float(y)) for i, (a, y) in enumerate(zip(archs, ys))],
                     "y", lower_is_better)


def _planted(n=120, seed=0, effect=1.0):
    """Factors a (0, 1, 2), b (0, 1), c (continuous), s (a string); the target is better when a == 2."""
    rng = np.random.default_rng(seed)
    facts = [{"a": int(rng.integers(3)), "b": int(rng.integers(2)), "c": round(float(rng.normal()), 3),
              "s": str(rng.choice(["x", "y"]))} for _ in range(n)]
    y = np.array([effect * (f["a"] == 2) for f in facts]) + rng.normal(0, 0.3, n)
    return facts, y


@pytest.mark.slow
@pytest.mark.parametrize("space_name", _space_names())
def test_every_space_gives_factors_the_analysis_uses(space_name):
    space = get_space(space_name)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(80)]
    facts = [space.factors(a) for a in archs]
    assert facts[0] and all(set(f) == set(facts[0]) for f in facts)
    assert all(isinstance(k, str) for k in facts[0])
    # plant an effect on the first factor that varies: the rule must keep exactly its upper half
    varied = next(k for k in facts[0] if isinstance(facts[0][k], (int, float)) and len({f[k] for f in facts}) > 1)
    x = np.array([f[varied] for f in facts], dtype=float)
    cut = np.sort(x)[len(x) // 2]
    good = x >= cut
    y = good * 10.0 + rng.normal(0, 0.01, len(x))
    bench = _bench(y, space_name, archs=archs)
    assert benchmark_factors(bench) == facts
    result = api.analyze(bench, resamples=5, permutations=199)
    assert result.rule.conditions and result.rule.kept == good.sum()
    kept = np.logical_and.reduce([[c.holds(f) for f in facts] for c in result.rule.simplified])
    assert (kept == good).all()
    assert {r.factor for r in result.table} == set(facts[0])
    assert sum(r.n for r in result.table if r.factor == varied) == len(archs)


def test_factors_of_each_space_read_the_genotype():
    from trainfree.spaces.bert.genotype import parse_genotype
    from trainfree.spaces.decoder.genotype import parse_decoder
    from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
    from tests.conftest import LSTM

    layer = {"operation_type": "DSC", "operation_parameter": 9, "num_operation_heads": 4,
             "feed_forward_dimension": 1024, "num_feed_forward": 3}
    g = parse_genotype({"hidden_size": 128, "encoder_layers": [layer, dict(layer, operation_type="SA",
                                                                          operation_parameter="SDP")]})
    f = get_space("nasbench-bert").factors(g)
    assert (f["num_layers"], f["hidden_size"], f["total_heads"], f["total_ffn_layers"]) == (2, 128, 8, 6)
    assert (f["n_DSC"], f["n_SA"], f["n_LT"], f["n_kernel9"], f["n_SDP"], f["n_ffn_dim_1024"]) == (1, 1, 0, 1, 1, 2)
    f = get_space("nasbench-nlp").factors(parse_recipe(LSTM))
    assert (f["num_nodes"], f["hidden_tuple_size"], f["n_linear"], f["n_activation_sigm"]) == (13, 2, 4, 3)
    assert (f["n_elementwise_prod"], f["n_elementwise_sum"], f["n_blend"], f["linear_inputs"]) == (3, 1, 0, 8)
    d = parse_decoder({"family": "GPT2", "n_layer": 2, "d_model": 256, "n_head": [2, 8], "d_inner": [512, 1024],
                       "n_token": 1000, "div_val": 2, "cutoffs": [500]})
    f = get_space("decoder").factors(d)
    assert (f["family"], f["n_layer"], f["d_model"], f["d_embed"], f["div_val"], f["n_clusters"]) == \
        ("GPT2", 2, 256, 256, 2, 1)
    assert (f["d_inner_mean"], f["d_inner_max"], f["n_head_mean"], f["n_head_max"]) == (768, 1024, 5.0, 8)


@pytest.mark.parametrize("name", shipped_names())
def test_analyze_runs_on_every_shipped_benchmark(name):
    result = api.analyze(name, resamples=0, permutations=199)
    assert result.stability is None and result.rule.total == len(result.benchmark)
    assert result.rule.kept >= (5 if result.rule.conditions else result.rule.total)
    assert all(r.n > 0 for r in result.table)


def test_planted_effect_is_found_with_a_small_p():
    facts, y = _planted()
    rule = induce_rule(_bench(y), facts, seed=1)
    assert [str(c) for c in rule.simplified] == ["a == 2"]
    assert rule.p_values[0] == pytest.approx(1 / 1000)
    assert rule.kept == sum(f["a"] == 2 for f in facts)
    assert rule.rejected is not None and rule.rejected.p_value >= 0.01  # the next split is noise
    assert rule.topk_hits[10] == 1.0 and rule.kendall_tau > 0.5


def test_direction_follows_the_benchmark():
    facts, y = _planted()
    rule = induce_rule(_bench(-y, lower_is_better=True), facts, seed=1)
    assert [str(c) for c in rule.simplified] == ["a == 2"]
    assert rule.kept_min == pytest.approx(max(-y[i] for i, f in enumerate(facts) if f["a"] == 2))


def test_noise_keeps_no_split_at_alpha_while_uncorrected_tests_would():
    """40 pure-noise datasets at alpha 0.05: the max-T test keeps a split in about 5% of them (binomial:
    more than 6 has probability < 1%); the smallest uncorrected Welch p over the same candidates falls
    below 0.05 in most."""
    kept, naive = 0, 0
    for seed in range(40):
        facts, _ = _planted(n=80, seed=seed)
        y = np.random.default_rng(1000 + seed).normal(size=80)
        rule = induce_rule(_bench(y), facts, alpha=0.05, permutations=199, seed=seed)
        kept += bool(rule.conditions)
        masks = condition_masks(facts, candidates(facts))
        ps = [stats.ttest_ind(y[m], y[~m], equal_var=False).pvalue for m in masks if 5 <= m.sum() <= 75]
        naive += min(ps) < 0.05
    assert kept <= 6
    assert naive >= 20


def test_rule_is_seeded():
    facts, y = _planted(effect=0.25)
    a, b = (induce_rule(_bench(y), facts, seed=7) for _ in range(2))
    assert a == b


def test_stability_counts_conditions_across_resamples():
    facts, y = _planted()
    bench = _bench(y)
    rule = induce_rule(bench, facts, seed=0)
    st = rule_stability(bench, rule, facts, resamples=30, seed=3)
    assert st.resamples == 30 and st.conditions["a == 2"] >= 0.9
    assert st.same_rule == st.rules.get("a == 2", 0) / 30
    assert sum(st.rules.values()) == 30 and sum(st.lengths.values()) == pytest.approx(1.0)
    assert st.factors["a"] >= st.conditions["a == 2"]
    assert rule_stability(bench, rule, facts, resamples=30, seed=3) == st
    # a weak effect is chosen less often than a strong one
    weak_facts, weak_y = _planted(n=60, effect=0.2)
    weak = _bench(weak_y)
    weak_st = rule_stability(weak, induce_rule(weak, weak_facts), weak_facts, resamples=30, seed=3)
    assert weak_st.conditions.get("a == 2", 0) < st.conditions["a == 2"]


def test_nasbench_bert_rule_and_its_stability():
    result = api.analyze("nasbench-bert", resamples=20)
    assert [str(c) for c in result.rule.simplified] == ["num_layers == 4", "hidden_size == 256"]
    assert result.rule.kendall_tau > 0.75 and result.rule.topk_hits[10] == 1.0
    assert result.rule.kept_min > result.rule.population_median
    assert result.stability.conditions["num_layers == 4"] == 1.0
    assert result.stability.conditions["hidden_size == 256"] == 1.0
    layers = {r.level: r for r in result.table if r.factor == "num_layers"}
    assert layers[4].mean > layers[2].mean and layers[4].n + layers[2].n == 361
    text = "\n".join(result.summary())
    assert "stability over 20 bootstrap resamples" in text and "Caveat" in text


def test_simplify_narrows_steps_on_one_factor():
    steps = [Condition("d", ">=", 128), Condition("n", ">=", 4), Condition("d", ">=", 256), Condition("n", "<=", 4)]
    assert [str(c) for c in simplify(steps)] == ["d >= 256", "n == 4"]
    assert [str(c) for c in simplify([Condition("d", ">=", 128), Condition("d", "==", 512)])] == ["d == 512"]


def test_factor_table_bins_factors_with_many_values():
    facts, y = _planted(n=200)
    table = factor_table(_bench(y), facts)
    c = [r for r in table if r.factor == "c"]
    assert len(c) == 4 and sum(r.n for r in c) == 200 and c[-1].level.endswith("]")
    a = {r.level: r for r in table if r.factor == "a"}
    assert a[2].mean == pytest.approx(np.mean([v for v, f in zip(y, facts) if f["a"] == 2]))
    assert all(r.n == 1 or not math.isnan(r.sd) for r in table)


@pytest.mark.parametrize("kwargs,message", [
    ({"alpha": 1.5}, "alpha must be in"),
    ({"permutations": 50}, "at least 100"),
    ({"resamples": -1}, "resamples must be"),
])
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(TrainfreeError, match=message):
        api.analyze(load_benchmark("lts:pareto_GPT2_lm1b_corei7"), **kwargs)


def test_analyze_cli_on_an_lts_benchmark(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trainfree", "analyze", "--benchmark", "lts:random_GPT2_wt103",
                           "--resamples", "20", "--output-dir", str(tmp_path), "--name", "lts"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "rule: keep d_model >= 256" in out and "max-T permutation p" in out
    assert "stability over 20 bootstrap resamples (seed 0)" in out and "conditions chosen: d_model >= 256" in out
    assert "d_model       64: " in out and "(n=37)" in out  # the compact table: level, mean ± sd, n
    md = (tmp_path / "lts.md").read_text()
    assert "## Stability over 20 bootstrap resamples" in md and "| d_model | 512 | 38 |" in md
    assert (tmp_path / "lts.csv").read_text().startswith("factor,level,n,mean,sd")


def test_analyze_cli_rejects_bad_alpha(tmp_path, capsys):
    from trainfree.cli import main

    assert main(["analyze", "--benchmark", "nasbench-bert", "--alpha", "0", "--output-dir", str(tmp_path)]) == 2
    assert "alpha must be in (0, 1)" in capsys.readouterr().err
