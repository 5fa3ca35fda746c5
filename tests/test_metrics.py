"""Hidden covariance and the metric registry."""
import math

import numpy as np
import pytest
import torch

from trainfree.config import ScoreSettings
from trainfree.errors import UnknownName
from trainfree.linalg import EIG_K, hidden_covariance
from trainfree.metrics import METRICS, get_metric
from trainfree.probe import Probe
from trainfree.spaces import get_space
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
from tests.conftest import LSTM, RNN

TINY = ScoreSettings(size="tiny", device="cpu")


def _probe(recipe, settings=TINY):
    return Probe(parse_recipe(recipe), get_space("nasbench-nlp"), settings)


def test_golden_values_tiny_model_seed_0():
    # Recorded from this implementation (tiny preset, PTB test window, seed 0); a change here means the
    # metric, the model's seeded init or the input window changed.
    p = _probe(LSTM)
    assert get_metric("hidden_cov")(p) == pytest.approx(-754.8227866071717, rel=1e-6)
    assert get_metric("hidden_cov_l2")(p) == pytest.approx(-11749.641720950238, rel=1e-6)
    assert get_metric("params")(p) == 181264
    assert get_metric("hidden_cov")(_probe(RNN)) == pytest.approx(-69.38772320919311, rel=1e-6)


def test_hidden_covariance_against_numpy_reference():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(12, 5, 9)) @ rng.normal(size=(9, 9))  # (T, B, H), correlated units
    samples = states.reshape(-1, 9)
    corr = np.corrcoef(samples, rowvar=False)  # unit x unit
    lam = np.linalg.eig(corr)[0].real  # the paper's general eig
    expected = -np.sum(np.log(lam + EIG_K) + 1 / (lam + EIG_K))
    assert hidden_covariance(torch.tensor(states, dtype=torch.float32)) == pytest.approx(expected, rel=1e-5)


def test_eig_score_equals_the_eigenvalue_sum_and_is_nan_below_minus_k():
    from trainfree.linalg import correlation_rows, eig_score

    rng = np.random.default_rng(3)
    for n, d in ((40, 10), (8, 30), (500, 120)):  # full rank, rank deficient, larger
        corr = correlation_rows(torch.tensor(rng.normal(size=(n, d)) @ rng.normal(size=(d, d))))
        lam = np.linalg.eigvalsh(corr.numpy())
        expected = -np.sum(np.log(lam + EIG_K) + 1 / (lam + EIG_K))
        assert eig_score(corr) == pytest.approx(expected, rel=1e-9)
    assert math.isnan(eig_score(torch.diag(torch.tensor([1.0, -0.5], dtype=torch.float64))))


def test_rank_deficiency_costs_about_one_over_k_per_direction():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(400, 6))
    full = hidden_covariance(torch.tensor(base))
    redundant = hidden_covariance(torch.tensor(np.concatenate([base, base[:, :1] * 2.0], axis=1)))
    assert full - redundant == pytest.approx(1 / EIG_K, rel=0.01)


def test_constant_unit_gives_nan_not_a_sentinel():
    states = torch.randn(10, 4, 5)
    states[..., 2] = 0.3
    assert math.isnan(hidden_covariance(states))


def test_exploded_state_gives_nan_quietly():
    import warnings

    states = torch.randn(10, 4, 5)
    states[3, 1, 2] = math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the command line's stderr
        assert math.isnan(hidden_covariance(states))


def test_incoming_states_start_at_zero_and_lag_outputs():
    p = _probe(LSTM)
    inc = p.hidden_states(1)
    out = p.get(("layer_output", 1))
    assert torch.all(inc[0] == 0)
    assert torch.equal(inc[1:], out[:-1])
    assert tuple(inc.shape) == (70, 50, 24)


def test_only_the_needed_layers_are_computed():
    p = _probe(LSTM)
    get_metric("hidden_cov")(p)
    assert p.has(("layer_output", 1)) and not p.has(("layer_output", 2))
    get_metric("hidden_cov_l3")(p)
    assert p.has(("layer_output", 3))


def test_same_seed_same_value_other_seed_other_value():
    a = get_metric("hidden_cov")(_probe(LSTM))
    b = get_metric("hidden_cov")(_probe(LSTM))
    c = get_metric("hidden_cov")(_probe(LSTM, ScoreSettings(size="tiny", device="cpu", seed=1)))
    assert a == b and a != c


def test_registry_metadata_and_unknown_names():
    for m in METRICS:
        assert m.higher_is_better in (True, False) and m.version and m.description and m.spaces
    assert get_metric("hidden_cov").published_column == "Layer 1 Hidden Covariance"
    with pytest.raises(UnknownName, match="choose from: .*hidden_cov"):
        get_metric("hiden_cov")


def test_paper_size_matches_published_value(ptb):
    # The first shipped PTB architecture at the paper's full protocol, against the published CSV column.
    from trainfree.benchmarks.published import load_published

    rec = ptb.records[2]
    p = Probe(rec.arch, get_space("nasbench-nlp"), ScoreSettings(device="cpu"))
    published = load_published()[rec.name]["Layer 1 Hidden Covariance"]
    assert get_metric("hidden_cov")(p) == pytest.approx(published, rel=1e-4)


DEAD_BRANCH = {  # h_new_1 never reaches h_new_0: its weights are not in the output's graph
    "a": {"op": "linear", "input": ["x", "h_prev_0"]},
    "h_new_0": {"op": "activation_tanh", "input": ["a"]},
    "b": {"op": "linear", "input": ["h_prev_1", "h_prev_0"]},
    "h_new_1": {"op": "activation_sigm", "input": ["b"]},
}


@pytest.mark.parametrize("name", ["synaptic_saliency", "synaptic_saliency_csv", "hidden_synaptic_saliency",
                                  "jacob_cov", "grad_norm", "snip", "grasp", "fisher", "zico", "synflow"])
def test_gradient_metrics_handle_weights_outside_the_graph(name):
    settings = ScoreSettings(size="tiny", batch_size=10, seq_len=20, device="cpu")
    assert math.isfinite(get_metric(name)(_probe(DEAD_BRANCH, settings)))
