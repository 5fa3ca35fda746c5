"""`trainfree combine` and the `combo:PATH` metric: grouped folds, nested cross-validation that never
fits on held-out rows (a spy and a leakage probe), the saved file's round trip, combo values against the
model applied by hand, refusals (in-sample tau, wrong space or settings, missing inputs) and the CLI."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from trainfree import api
from trainfree.errors import MissingExtra, TrainfreeError
from trainfree.evaluation import combine as cb
from trainfree.metrics.combo_model import RankTransform, load_model, predict_params
from trainfree.metrics import get_metric
from trainfree.probe import Probe
from trainfree.spaces import get_space


def _synthetic(n_groups=120, runs=2, seed=0):
    """Groups of repeated runs (same inputs, nearly the same target), two noise inputs and one useful one."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=n_groups)
    noise = rng.normal(size=(n_groups, 2))
    groups = np.repeat(np.arange(n_groups), runs)
    x = np.column_stack([quality + rng.normal(size=n_groups) * 0.8, noise])[groups]
    y = quality[groups] + rng.normal(size=len(groups)) * 0.05
    return x, y, groups


# -- folds and cross-validation ------------------------------------------------------------------
def test_grouped_folds_keep_groups_whole_balance_and_are_seeded():
    groups = np.repeat(np.arange(50), np.arange(50) % 4 + 1)
    folds = cb.grouped_folds(groups, 5, 3)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1  # a group never straddles two folds
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 4  # balanced in rows (largest group: 4 rows)
    assert np.array_equal(folds, cb.grouped_folds(groups, 5, 3))
    assert not np.array_equal(folds, cb.grouped_folds(groups, 5, 4))
    with pytest.raises(TrainfreeError, match="at least 5 distinct architectures"):
        cb.grouped_folds([1, 1, 2, 2], 5, 0)


def test_nested_cv_never_fits_on_held_out_rows(monkeypatch):
    x, y, groups = _synthetic()
    row_id = np.arange(len(y), dtype=float)
    x = np.column_stack([x, row_id])  # a unique input per row tells the spy which rows a fit saw
    seen = []
    real = cb.fit_rows

    def spy(learner, xs, ys, hp, seed, raw_target=False):
        seen.append(set(xs[:, -1].astype(int)))
        return real(learner, xs, ys, hp, seed, raw_target)

    monkeypatch.setattr(cb, "fit_rows", spy)
    cb.nested_cv("linear", x, y, groups, folds=4, inner_folds=3, seed=5)
    outer = cb.grouped_folds(groups, 4, [5, 0])
    per_fold = len(cb.ALPHAS) * 3 + 1  # the inner fits, then the refit on the outer training fold
    assert len(seen) == 4 * per_fold
    for f in range(4):
        held_out = set(np.flatnonzero(outer == f))
        for rows in seen[f * per_fold:(f + 1) * per_fold]:
            assert not rows & held_out
        assert seen[(f + 1) * per_fold - 1] == set(range(len(y))) - held_out


def test_a_feature_equal_to_the_target_on_test_rows_only_does_not_help():
    x, y, groups = _synthetic()
    outer = cb.grouped_folds(groups, 5, [0, 0])
    test0 = outer == 0
    leak = np.where(test0, y, 0.0)  # the target itself on fold 0's test rows, a constant elsewhere
    without = cb.nested_cv("linear", x, y, groups, folds=5, inner_folds=3, seed=0)
    probe = cb.nested_cv("linear", np.column_stack([x, leak]), y, groups, folds=5, inner_folds=3, seed=0)
    # fitted without fold 0's rows, the model cannot tell the leak from a constant: fold 0 scores as without it
    assert math.isclose(probe.fold_taus[0], without.fold_taus[0], abs_tol=1e-12)
    control = cb.nested_cv("linear", np.column_stack([x, y]), y, groups, folds=5, inner_folds=3, seed=0)
    assert control.fold_taus[0] > 0.9 > without.fold_taus[0] + 0.2  # the probe would see a leak: it is learnt


def test_cross_validation_is_seeded_and_finds_a_useful_input():
    x, y, groups = _synthetic()
    a = cb.nested_cv("linear", x, y, groups, folds=5, inner_folds=3, seed=2, repeats=2)
    b = cb.nested_cv("linear", x, y, groups, folds=5, inner_folds=3, seed=2, repeats=2)
    assert a == b and len(a.fold_taus) == 10
    assert a.mean_tau > 0.4 and math.isclose(a.sd_tau, np.std(a.fold_taus, ddof=1))
    assert a.groups == 120 and a.n == 240


def test_rank_transform_is_the_mid_rank_share_and_keeps_nan():
    t = RankTransform.fit([3.0, 1.0, 2.0, 2.0, math.inf])
    assert np.allclose(t([2.0, 0.0, math.inf, 10.0]), [(1 + 3) / 10, 0.0, (4 + 5) / 10, 0.8])
    assert math.isnan(t([math.nan])[0])
    big = RankTransform.fit(np.arange(5000.0))
    assert len(big.knots) == 1001 and big.knots[0] == 0 and big.knots[-1] == 4999
    with pytest.raises(ValueError):
        RankTransform.fit([1.0, math.nan])


def test_ridge_matches_least_squares_and_the_penalty_shrinks():
    x, y, _ = _synthetic()
    ranks = np.column_stack([RankTransform.fit(c)(c) for c in x.T])
    free = cb._ridge(ranks, y, 0.0)
    ref = np.linalg.lstsq(np.column_stack([np.ones(len(y)), ranks]), y, rcond=None)[0]
    assert np.allclose([free["intercept"], *free["coef"]], ref)
    assert np.linalg.norm(cb._ridge(ranks, y, 1.0)["coef"]) < np.linalg.norm(free["coef"])


def test_boosted_export_predicts_as_scikit_learn():
    pytest.importorskip("sklearn")
    from sklearn.ensemble import HistGradientBoostingRegressor

    x, y, _ = _synthetic()
    hp = dict(cb.BOOSTED_GRID[-1])
    params = cb._boosted(x, y, hp, 0)
    est = HistGradientBoostingRegressor(early_stopping=False, random_state=0, **hp).fit(x, y)
    assert np.allclose(predict_params("boosted", params, x), est.predict(x))
    assert len(params["trees"]) == hp["max_iter"]


def test_the_boosted_learner_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    with pytest.raises(MissingExtra, match=r"trainfree\[combine\]"):
        cb.grid("boosted")


# -- on a benchmark: the model file and the combo: metric ----------------------------------------
@pytest.fixture(scope="module")
def tiny(ptb, tmp_path_factory):
    """A linear combination of params and hidden_cov fitted on 48 PTB runs (tiny settings), and 12 other
    cells it never saw."""
    space = get_space(ptb.space)
    settings = api.default_settings(ptb).with_(size="tiny", batch_size=4, seq_len=8)
    fit = ptb.head(48)
    fitted = {space.arch_id(r.arch) for r in fit.records}
    other = ptb.only([r.name for r in ptb.records[48:400] if space.arch_id(r.arch) not in fitted][:12])
    folder = tmp_path_factory.mktemp("combine")
    store = folder / "s.sqlite"
    run = api.score(fit, ["params", "hidden_cov"], settings, store=store)
    entries = list(run.rows)
    result = api.combine(fit, entries, folds=3, inner_folds=2, seed=0, settings=settings, source="test")
    path = folder / "model.json"
    result.model.save(path)
    return {"fit": fit, "other": other, "settings": settings, "store": store, "entries": entries, "result": result,
            "path": path, "space": space}


def test_the_saved_file_round_trips(tiny):
    model = tiny["result"].model
    back = load_model(tiny["path"])
    assert back.as_json() == model.as_json()
    raw = json.loads(tiny["path"].read_text())
    assert raw["format"] == "trainfree-combo" and raw["format_version"] == 1
    assert raw["space"] == "nasbench-nlp" and raw["benchmark"] == "nasbench-nlp-ptb" and raw["target"] == "test_loss"
    assert [f["metric"] for f in raw["features"]] == ["hidden_cov", "params"]
    assert all(f["version"] == get_metric(f["metric"]).version for f in raw["features"])
    assert raw["fingerprint"] == tiny["space"].fingerprint(tiny["settings"])
    assert raw["cv"]["pooled_tau"] == tiny["result"].cv.pooled_tau and len(raw["cv"]["fold_taus"]) == 3
    assert raw["trainfree_version"] and raw["settings"]["size"] == "tiny"
    x = np.random.default_rng(0).normal(size=(5, 2)) * 1e3
    assert np.array_equal(back.predict(x), model.predict(x))


def test_combo_values_equal_the_model_applied_by_hand(tiny):
    name = f"combo:{tiny['path']}"
    run = api.score(tiny["other"], [name, "params"], tiny["settings"], store=tiny["store"])
    parts = api.score(tiny["other"], ["hidden_cov", "params"], tiny["settings"], store=tiny["store"])
    assert parts.computed == 0  # the combo run scored and stored its components
    values = {(r.name, r.metric): r.value for r in parts.rows}
    raw = json.loads(tiny["path"].read_text())
    coef, intercept = raw["params"]["coef"], raw["params"]["intercept"]
    for r in (r for r in run.rows if r.metric == name):
        by_hand = intercept
        for f, c in zip(raw["features"], coef):
            knots, v = np.array(f["knots"]), values[(r.name, f["metric"])]
            by_hand += c * ((knots < v).sum() + (knots <= v).sum()) / (2 * len(knots))
        assert r.status == "ok" and math.isclose(r.value, by_hand, rel_tol=1e-12, abs_tol=1e-12)
        assert r.metric_version == get_metric(name).version
    # on one probe (a search asks this way) the metric computes its components itself
    record = tiny["other"].records[0]
    probe = Probe(record.arch, tiny["space"], tiny["settings"])
    first = next(r.value for r in run.rows if r.metric == name and r.name == record.name)
    assert math.isclose(get_metric(name)(probe), first, rel_tol=1e-9)


def test_correlate_refuses_an_in_sample_tau_but_not_held_out_architectures(tiny):
    name = f"combo:{tiny['path']}"
    fitted = api.score(tiny["fit"], [name], tiny["settings"], store=tiny["store"])
    with pytest.raises(TrainfreeError, match="in-sample, not a result.*cross-validated"):
        api.correlate(tiny["fit"], fitted.rows)
    held_out = api.score(tiny["other"], [name], tiny["settings"], store=tiny["store"])
    (row,) = api.correlate(tiny["other"], held_out.rows)
    assert row.correlation.n == 12


def test_combo_refuses_another_space_other_settings_and_a_changed_file(tiny, tmp_path):
    name = f"combo:{tiny['path']}"
    with pytest.raises(TrainfreeError, match="does not apply to space 'decoder'"):
        api.score("lts:random_GPT2_wt103", [name], limit=1)
    with pytest.raises(TrainfreeError, match="settings fingerprint"):
        api.score(tiny["other"], [name], tiny["settings"].with_(seq_len=9))
    with pytest.raises(TrainfreeError, match="no such combination model file"):
        get_metric(f"combo:{tmp_path / 'missing.json'}")
    raw = json.loads(tiny["path"].read_text())
    raw["features"][0]["version"] = "0"
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(raw))
    with pytest.raises(TrainfreeError, match="version 0.*refit"):
        get_metric(f"combo:{stale}")
    raw["format_version"] = 99
    stale.write_text(json.dumps(raw))
    with pytest.raises(TrainfreeError, match="format version 99"):
        get_metric(f"combo:{stale}")
    stale.write_text("{not json")
    with pytest.raises(TrainfreeError, match="not a combination model file"):
        get_metric(f"combo:{stale}")


def test_combine_refuses_missing_inputs_and_unknown_learners(tiny):
    with pytest.raises(TrainfreeError, match="no scores of 'synflow'.*hold hidden_cov, params"):
        api.combine(tiny["fit"], tiny["entries"], metrics=["params", "synflow"])
    with pytest.raises(TrainfreeError, match="unknown learner"):
        api.combine(tiny["fit"], tiny["entries"], learner="forest")
    with pytest.raises(TrainfreeError, match="too few for 5 folds"):
        api.combine(tiny["fit"].head(6), tiny["entries"])
    with pytest.raises(TrainfreeError, match="as scores, as published columns, or both"):
        api.combine(tiny["fit"])
    # published columns beside scores under another fingerprint (tiny settings): refused, not mixed
    with pytest.raises(TrainfreeError, match="fingerprint"):
        api.combine("nasbench-nlp-ptb", tiny["entries"], published="shipped")


def test_the_published_columns_are_inputs_and_unreproduced_ones_do_not_apply(ptb, tmp_path):
    bench = ptb.head(60)
    entries = cb.published_entries(bench)
    assert {e.metric for e in entries} >= {"hidden_cov", "jacob_cov_large_noise", "published:Jacobian Covariance"}
    assert {e.fingerprint for e in entries} == {get_space(ptb.space).fingerprint(api.default_settings(ptb))}
    sign = get_metric("jacob_cov_large_noise").published_sign
    pub = next(e for e in entries if e.metric == "jacob_cov_large_noise" and e.name == bench.records[0].name)
    from trainfree.benchmarks.published import load_published

    assert pub.value == sign * load_published()[bench.records[0].name]["Large Noise Jacobian"]
    result = api.combine(bench, published="shipped", metrics=["hidden_cov", "published:Jacobian Covariance"],
                         folds=3, inner_folds=2)
    path = tmp_path / "pub.json"
    result.model.save(path)
    with pytest.raises(TrainfreeError, match="published column no trainfree metric computes"):
        get_metric(f"combo:{path}")
    with pytest.raises(TrainfreeError, match="no published metric columns are shipped for space 'decoder'"):
        api.combine("lts:random_GPT2_wt103", published="shipped")


@pytest.mark.slow
def test_cli_combine_then_correlate_refuses_in_sample(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "trainfree", *a], capture_output=True, text=True,  # noqa: E731
                                    timeout=300)
    scores, model, combo = tmp_path / "s.csv", tmp_path / "m.json", tmp_path / "c.csv"
    tiny = ["--size", "tiny", "--batch-size", "4", "--seq-len", "8"]
    done = run("score", "--benchmark", "nasbench-nlp-ptb", "--metrics", "params,hidden_cov", "--limit", "30", *tiny,
               "--jobs", "1", "--no-store", "--quiet", "--output", str(scores))
    assert done.returncode == 0, done.stderr
    done = run("combine", "--benchmark", "nasbench-nlp-ptb", "--scores", str(scores), "--folds", "3",
               "--inner-folds", "2", "--output", str(model))
    assert done.returncode == 0, done.stderr
    assert "held-out Kendall tau over outer folds" in done.stdout and "pooled out-of-fold" in done.stdout
    assert f"combo:{model}" in done.stdout and model.exists()
    done = run("score", "--benchmark", "nasbench-nlp-ptb", "--metrics", f"combo:{model}", "--limit", "30", *tiny,
               "--jobs", "1", "--no-store", "--quiet", "--output", str(combo))
    assert done.returncode == 0, done.stderr
    done = run("correlate", "--benchmark", "nasbench-nlp-ptb", "--scores", str(combo))
    assert done.returncode == 2 and "in-sample" in done.stderr and "Traceback" not in done.stderr
    done = run("combine", "--benchmark", "nasbench-nlp-ptb", "--scores", str(scores), "--metrics", "params,zico")
    assert done.returncode == 2 and "no scores of 'zico'" in done.stderr and "Traceback" not in done.stderr
    done = run("score", "--benchmark", "nasbench-nlp-ptb", "--metrics", f"combo:{model}", "--limit", "2",
               "--seq-len", "9", "--size", "tiny", "--batch-size", "4", "--no-store", "--quiet",
               "--output", str(tmp_path / "x.csv"))
    assert done.returncode == 2 and "settings fingerprint" in done.stderr


def test_a_boosted_model_round_trips_and_applies_as_combo(tiny, tmp_path):
    pytest.importorskip("sklearn")
    result = api.combine(tiny["fit"], tiny["entries"], learner="boosted", folds=3, inner_folds=2)
    path = tmp_path / "boosted.json"
    result.model.save(path)
    back = load_model(path)
    assert back.learner == "boosted" and back.sklearn_version and back.hyperparameters["max_iter"] == 200
    run = api.score(tiny["other"], [f"combo:{path}", "hidden_cov", "params"], tiny["settings"], store=tiny["store"])
    rows = {(r.name, r.metric): r.value for r in run.rows}
    names = [r.name for r in tiny["other"].records]
    by_hand = result.model.predict([[rows[(n, "hidden_cov")], rows[(n, "params")]] for n in names])
    assert np.allclose([rows[(n, f"combo:{path}")] for n in names], by_hand, rtol=0, atol=1e-12)


def test_each_input_alone_is_scored_on_the_same_folds(tiny):
    bench, scores = tiny["fit"], tiny["entries"]
    combo = cb.fit_combination(bench, scores, learner="linear", folds=5, seed=1)
    assert set(combo.alone) == set(combo.model.features)
    y = np.array([r.target for r in combo.records])
    y = -y if bench.lower_is_better else y
    folds = cb.grouped_folds([get_space(bench.space).arch_id(r.arch) for r in combo.records], 5, [1, 0])
    values = {(s.name, s.metric): s.value for s in scores}
    for name, taus in combo.alone.items():
        x = np.array([values[(r.name, name)] for r in combo.records])
        by_hand = [np.sign(stats.kendalltau(x[folds != f], y[folds != f])[0]) * stats.kendalltau(x[folds == f],
                   y[folds == f])[0] for f in range(5)]  # the sign from the training rows
        assert np.allclose(taus, by_hand)
    lines = combo.summary()
    assert any(line.startswith("each input alone on the same folds: ") for line in lines)
    assert any(line.startswith("combination minus the best input alone (") for line in lines)


def test_the_shipped_combinations_are_metrics_by_name():
    from trainfree.metrics.combo import BUILTIN, is_combo, model_path

    for name in BUILTIN:
        assert is_combo(name) and model_path(name).is_file()
        model = load_model(model_path(name))
        # fitted on the shipped PTB runs and carrying their nested cross-validated figures
        assert model.benchmark == "nasbench-nlp-ptb" and model.space == "nasbench-nlp" and model.cv["outer_folds"] == 5
        assert len(model.fitted_runs) == 6313 and get_metric(name).applies_to("nasbench-nlp")
    from trainfree.metrics.cell_graph import FEATURES

    assert load_model(model_path("rnn_forward_combo")).features == ["hidden_cov", *FEATURES]
    assert set(FEATURES) < set(load_model(model_path("rnn_paper_combo")).features)
    with pytest.raises(TrainfreeError, match="unknown metric"):
        get_metric("rnn_forward_combox")  # a shipped name is an exact name, not a prefix
    out = subprocess.run([sys.executable, "-m", "trainfree", "metrics", "--space", "nasbench-nlp"], capture_output=True,
                         text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("rnn_forward_combo "))
    assert "held-out Kendall tau 0.561 +- 0.032 over 5 outer folds" in line
    assert "CPU-s per architecture in the shipped suite" in line  # the suite ships hidden_cov and the features
    assert "rnn_forward_combo" not in subprocess.run([sys.executable, "-m", "trainfree", "metrics", "--space", "decoder"],
                                                     capture_output=True, text=True, check=True).stdout


def test_the_forward_combination_is_its_model_applied_to_its_inputs():
    from trainfree.benchmarks import load_benchmark
    from trainfree.metrics.combo import model_path

    bench = load_benchmark("nasbench-nlp-wikitext2")  # runs it was not fitted on: a tau on them is allowed
    with pytest.raises(TrainfreeError, match="fitted on inputs under settings fingerprint"):
        api.score(bench, ["rnn_forward_combo"], limit=2, shipped=False)  # its own corpus: other inputs
    ptb = api.default_settings(load_benchmark("nasbench-nlp-ptb"))  # the settings it was fitted under
    model = load_model(model_path("rnn_forward_combo"))
    run = api.score(bench, ["rnn_forward_combo", *model.features], ptb, limit=3, shipped=False)
    by = {}
    for r in run.rows:
        by.setdefault(r.name, {})[r.metric] = r.value
    assert len(by) == 3
    for values in by.values():
        expected = model.predict([[values[f] for f in model.features]])[0]
        assert math.isclose(values["rnn_forward_combo"], expected, rel_tol=1e-12, abs_tol=1e-12)
    (row,) = api.correlate(bench, [r for r in run.rows if r.metric == "rnn_forward_combo"])
    assert row.correlation.n == 3
    with pytest.raises(TrainfreeError, match="in-sample, not a result"):
        ptb = api.score("nasbench-nlp-ptb", ["rnn_forward_combo"], limit=3, shipped=False)
        api.correlate("nasbench-nlp-ptb", ptb.rows)
