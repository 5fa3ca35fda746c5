"""The newer metrics (W-PCA, SWAP, attention / FFN parameters, epsinas) and the recurrent trainability
signals, each checked on a tiny model against an independent computation."""
import copy
import math

import numpy as np
import pytest
import torch

from trainfree.metrics import Probe, get_metric
from trainfree.metrics.swap import distinct_patterns
from trainfree.spaces import get_space
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
from tests.conftest import LSTM, RNN


def _probe(space: str, arch=None):
    sp = get_space(space)
    return Probe(sp.example() if arch is None else arch, sp, sp.tiny_settings())


def _rnn(recipe=LSTM):
    return _probe("nasbench-nlp", parse_recipe(recipe))


def test_new_metrics_apply_where_their_artefacts_are():
    assert set(get_metric("w_pca").spaces) >= {"nasbench-bert", "decoder"}
    assert "nasbench-nlp" not in get_metric("w_pca").spaces
    assert set(get_metric("swap").spaces) >= {"nasbench-nlp", "nasbench-bert", "decoder"}
    for name in ("epsinas", "lyapunov", "state_grad_rate"):
        assert get_metric(name).spaces == ("nasbench-nlp",)


# --- SWAP ------------------------------------------------------------------------------------------
def test_distinct_patterns_against_a_python_set():
    rng = np.random.default_rng(0)
    blocks = [torch.tensor(rng.random((b, n)) < 0.5) for b, n in ((11, 300), (11, 5), (11, 2000))]
    blocks.append(blocks[0][:, :50].clone())  # repeats of patterns already seen
    expected = {tuple(col) for blk in blocks for col in blk.numpy().T}
    assert distinct_patterns(blocks) == len(expected)
    assert distinct_patterns(b[:3] for b in blocks) <= 8  # 3 samples: at most 2^3 patterns


def test_distinct_patterns_merges_in_chunks(monkeypatch):
    import trainfree.metrics.swap as swap

    rng = np.random.default_rng(1)
    blocks = [torch.tensor(rng.random((70, 40)) < 0.5) for _ in range(30)]  # > 64 samples: 9-byte words
    expected = len({tuple(col) for blk in blocks for col in blk.numpy().T})
    monkeypatch.setattr(swap, "MERGE_AT", 50)
    assert distinct_patterns(blocks) == expected


def test_swap_on_the_decoder_against_hooked_codes():
    p = _probe("decoder")
    model = copy.deepcopy(p.model)
    seen = set()

    def on_act(_m, _i, a):
        codes = (a > 0).reshape(a.shape[0], -1).numpy()
        seen.update(tuple(col) for col in codes.T)

    for layer in model.layers:
        layer.act.register_forward_hook(on_act)
    with torch.no_grad():
        model(p.inputs)
    assert get_metric("swap")(p) == len(seen)


def test_swap_on_a_recurrent_cell_codes_pre_activation_signs():
    p = _rnn()
    model = copy.deepcopy(p.model)
    ops = {n.name: n.op for n in model.recipe.nodes}
    seen = set()

    def hook(key, a):  # the proxy-loss path sees every activation; sigmoid's midpoint is 1/2
        mid = 0.5 if ops[key.split(":", 1)[1]] == "activation_sigm" else 0.0
        seen.update(tuple(col) for col in (a.detach() > mid).numpy().T)

    with torch.no_grad():
        model.proxy_loss(p.inputs, p.targets, activation_hook=hook)
    assert get_metric("swap")(p) == len(seen)


# --- W-PCA and the parameter split ---------------------------------------------------------------
@pytest.mark.parametrize("space", ["nasbench-bert", "decoder"])
def test_w_pca_against_sklearn(space):
    from sklearn.decomposition import PCA

    p = _probe(space)
    model = copy.deepcopy(p.model)
    outs = []
    for layer in model.layers:
        layer.ffn_in.register_forward_hook(lambda _m, _i, y: outs.append(y.detach().double().reshape(-1, y.shape[-1])))
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(p.settings.seed)  # BERT's dropout masks, as the metric draws them
        model(p.inputs)
    dims = [PCA(n_components=0.99, svd_solver="full").fit(y.numpy()).n_components_ for y in outs]
    n = sum(t.numel() for t in model.parameters())
    assert get_metric("ffn_pca_dim")(p) == pytest.approx(np.mean(dims))
    assert get_metric("w_pca")(p) == pytest.approx(n * np.mean(dims))
    assert 1 <= min(dims)


def test_pca_dim_of_known_spectra():
    from trainfree.metrics.wpca import pca_dim

    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    scores = rng.normal(size=(4000, 6)) * np.sqrt([50.0, 30, 19.5, 0.3, 0.15, 0.05])  # 99.5% in 3 directions
    assert pca_dim(torch.tensor(scores @ basis.T)) == 3
    assert pca_dim(torch.ones(10, 4)) == 0


def test_attention_and_ffn_parameters_of_a_transformer_xl_by_hand():
    p = _probe("decoder")  # the example is a Transformer-XL
    attn = ffn = 0
    for layer in p.model.layers:
        d, di = layer.attn_qkv.in_features, layer.ffn_in.out_features
        attn += 3 * d * d + d * d + d * d + 2 * d  # qkv, output, relative-position maps (no biases); r_w, r_r
        ffn += d * di + di + di * d + d
    assert get_metric("attn_params")(p) == attn
    assert get_metric("ffn_params")(p) == ffn


def test_attention_and_ffn_parameters_of_bert_by_name():
    p = _probe("nasbench-bert")
    named = dict(p.model.named_parameters())
    attn = sum(t.numel() for k, t in named.items() if ".op." in k or ".output." in k)
    ffn = sum(t.numel() for k, t in named.items() if ".ffn_" in k)
    assert get_metric("attn_params")(p) == attn > 0
    assert get_metric("ffn_params")(p) == ffn > 0
    assert attn + ffn < get_metric("nonembedding_params")(p)  # LayerNorms and the embedding projection are in neither


# --- epsinas ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["lstm", 0, 7])
def test_epsinas_against_a_direct_computation(which, ptb):
    p = _rnn() if which == "lstm" else _probe("nasbench-nlp", ptb.records[which].arch)  # linears of nodes too
    model = p.fresh_model().double()
    gen = torch.Generator().manual_seed(p.settings.seed)
    table = torch.rand(model.encoder.weight.shape, generator=gen, dtype=torch.float64)
    normed = []
    for w in (1e-5, 1e-4):
        with torch.no_grad():
            for name, t in model.named_parameters():
                if name.startswith("layers."):
                    t.fill_(w)
            y = model.layer_outputs(None, embedded=table[p.inputs])[-1][:, :, 0].flatten().numpy()
        n = (y - y.min()) / (y.max() - y.min())
        normed.append(np.where(n == 0, np.nan, n))
    a, b = normed
    both = ~np.isnan(a) & ~np.isnan(b)
    expected = np.abs(a[both] - b[both]).mean() / np.concatenate([a[~np.isnan(a)], b[~np.isnan(b)]]).mean()
    assert get_metric("epsinas")(p) == pytest.approx(expected, rel=1e-7)


def test_epsinas_of_a_constant_output_is_nan():
    from trainfree.metrics.epsinas import epsinas_score

    assert math.isnan(epsinas_score([np.ones(5), np.arange(5.0)]))


# --- recurrent trainability signals ----------------------------------------------------------------
def test_lyapunov_against_finite_differences():
    p = _rnn()
    model = copy.deepcopy(p.model).double()
    rates = []
    with torch.no_grad():
        x = model.encoder(p.inputs)
        for i, layer in enumerate(model.layers[:1], start=1):  # layer 1, as hidden_cov
            gen = torch.Generator().manual_seed(p.settings.seed + i)
            v = torch.randn(x.shape[1:], generator=gen, dtype=torch.float64)
            v = v / v.norm(dim=1, keepdim=True)
            eps = 1e-7
            pert = x.clone()
            pert[0] += eps * v
            clean = layer(x)
            d = (layer(pert) - clean).norm(dim=2)  # (T, B)
            rates.append(np.mean(np.log(d[-1].numpy() / d[0].numpy()) / (x.shape[0] - 1)))
            x = clean
    assert get_metric("lyapunov")(p) == pytest.approx(np.mean(rates), abs=1e-4)
    assert get_metric("lyapunov_edge")(p) == pytest.approx(-abs(np.mean(rates)), abs=1e-4)


# h_new_0 read again inside its own step (by the node that makes h_new_1): dR/dh_t counts that use too
SAME_STEP = {"g": {"op": "linear", "input": ["h_prev_1", "x"]}, "h_new_0": {"op": "activation_tanh", "input": ["g"]},
             "a": {"op": "linear", "input": ["h_new_0", "h_prev_0"]}, "h_new_1": {"op": "activation_tanh", "input": ["a"]}}


@pytest.mark.parametrize("recipe", [LSTM, RNN, "DELAYED", "EVERY_OP", SAME_STEP],
                         ids=["lstm", "rnn", "delayed", "every_op", "same_step"])
def test_state_grad_rate_against_float64_autograd(recipe):
    p = _rnn(globals()[recipe] if isinstance(recipe, str) else recipe)
    model = copy.deepcopy(p.model).double()
    states = []
    with torch.enable_grad():
        y = model.layer_outputs(p.inputs, upto=1, state_hook=lambda layer, t, h: states.append(h) if t > 0
                                else None)[-1][-1]
        c = torch.randn(y.shape, generator=torch.Generator().manual_seed(p.settings.seed), dtype=torch.float64)
        grads = torch.autograd.grad((y * c).sum(), states, materialize_grads=True)
    first, last = grads[0].norm(dim=1).numpy(), grads[-1].norm(dim=1).numpy()
    assert (first > 0).all() and (last > 0).all()
    expected = np.mean(np.log(first / last) / (p.inputs.shape[0] - 2))
    assert get_metric("state_grad_rate")(p) == pytest.approx(expected, rel=1e-6)  # float32 against float64
    if recipe is LSTM:
        assert expected < 0  # a tiny LSTM at initialisation: gradients shrink going back in time


def test_a_cell_without_recurrence_has_exponent_minus_infinity():
    ff = {"f": {"op": "linear", "input": ["x"]}, "h_new_0": {"op": "activation_tanh", "input": ["f"]}}
    assert get_metric("lyapunov")(_rnn(ff)) == -math.inf


def test_hidden_erank_against_numpy():
    p = _rnn(RNN)
    h = p.hidden_states(1).double().reshape(-1, p.hidden_states(1).shape[-1]).numpy()
    h = h[:, h.max(axis=0) > h.min(axis=0)]
    lam = np.clip(np.linalg.eigvalsh(np.corrcoef(h, rowvar=False)), 0, None)
    q = lam[lam > 1e-12] / lam.sum()
    assert get_metric("hidden_erank")(p) == pytest.approx(np.exp(-(q * np.log(q)).sum()), rel=1e-6)


# a cell whose output at step 0 ignores the input: x enters state 1, which reaches h only a step later
DELAYED = {"c": {"op": "linear", "input": ["x", "h_prev_1"]}, "h_new_1": {"op": "activation_tanh", "input": ["c"]},
           "g": {"op": "linear", "input": ["h_prev_1", "h_prev_0"]},
           "h_new_0": {"op": "activation_tanh", "input": ["g"]}}


def test_reached_rate_starts_where_the_perturbation_arrives():
    from trainfree.metrics.rnn_dynamics import reached_rate

    norms = np.array([[0.0, 1.0, 0.0, 0.0], [2.0, 1.0, 0.0, 0.0], [4.0, 0.5, 0.0, 3.0]])  # (T=3, B=4)
    rates = reached_rate(norms[:, :2]), reached_rate(norms[:, 2:3]), reached_rate(norms[:, 3:])
    assert rates[0] == pytest.approx((math.log(4.0 / 2.0) / 1 + math.log(0.5) / 2) / 2)  # seq 0 from step 1
    assert rates[1] == -math.inf  # never reached
    assert math.isnan(rates[2])  # reached at the last step only: no growth to measure


def test_lyapunov_of_a_delayed_cell_is_finite_and_matches_finite_differences():
    p = _rnn(DELAYED)
    model = copy.deepcopy(p.model).double()
    with torch.no_grad():
        x = model.encoder(p.inputs)
        layer = model.layers[0]
        v = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(p.settings.seed + 1), dtype=torch.float64)
        pert = x.clone()
        pert[0] += 1e-7 * v / v.norm(dim=1, keepdim=True)
        d = (layer(pert) - layer(x)).norm(dim=2).numpy()  # (T, B)
    assert d[0].max() == 0 and d[1].min() > 0  # step 0's output ignores x; step 1's does not
    expected = np.mean(np.log(d[-1] / d[1]) / (x.shape[0] - 2))
    assert get_metric("lyapunov")(p) == pytest.approx(expected, abs=1e-4)
    assert get_metric("lyapunov").version == "3"


# every op: linear with a bias-free term, blend, product, sum, each activation, a two-state tuple
EVERY_OP = {"a": {"op": "linear", "input": ["x", "h_prev_0"]}, "z": {"op": "activation_sigm", "input": ["a"]},
            "b": {"op": "linear", "input": ["h_prev_1", "x"]}, "r": {"op": "activation_leaky_relu", "input": ["b"]},
            "c": {"op": "linear", "input": ["h_prev_0"]}, "t": {"op": "activation_tanh", "input": ["c"]},
            "m": {"op": "blend", "input": ["z", "r", "t"]}, "p": {"op": "elementwise_prod", "input": ["m", "h_prev_1"]},
            "s": {"op": "elementwise_sum", "input": ["p", "t"]}, "h_new_0": {"op": "activation_tanh", "input": ["s"]},
            "h_new_1": {"op": "elementwise_sum", "input": ["m", "p"]}}


@pytest.mark.parametrize("recipe", [LSTM, RNN, DELAYED, EVERY_OP], ids=["lstm", "rnn", "delayed", "every_op"])
def test_hand_tangent_against_forward_mode_autodiff(recipe):
    """The hand-written tangent, renormalised each step, against torch.func.jvp of the float64 layer."""
    p = _rnn(recipe)
    layer64 = copy.deepcopy(p.model.layers[0]).double()
    with torch.no_grad():
        x = p.model.encoder(p.inputs).double()
        v = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        v = v / v.norm(dim=1, keepdim=True)
        step0 = torch.zeros_like(x)
        step0[0] = v
        _, tangent = torch.func.jvp(layer64, (x,), (step0,))
        with np.errstate(divide="ignore"):
            expected = np.log(tangent.norm(dim=2).numpy())  # (T, B)
        got64, _ = layer64.step0_tangent_log_norms(x, v)
        got32, share = p.model.layers[0].step0_tangent_log_norms(x.float(), v.float())
    assert np.array_equal(np.isneginf(got64), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert finite.sum() > expected.size // 2
    np.testing.assert_allclose(got64[finite], expected[finite], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got32[finite], expected[finite], rtol=0, atol=2e-4)


def test_a_contracting_cell_is_measured_in_float32_where_its_tangent_would_underflow():
    """Recurrent weights scaled down 1000x: the perturbation and the gradient shrink by e^-7 a step, below
    float32's range within the tiny batch's 20 steps, and the float32 values still match float64's."""
    p = _rnn(RNN)
    with torch.no_grad():
        for comp in p.model.layers[0].components.values():
            for w in list(comp.weights)[1:]:  # the h_prev terms
                w.mul_(1e-3)
    layer64 = copy.deepcopy(p.model.layers[0]).double()
    with torch.no_grad():
        x = p.model.encoder(p.inputs).double()
        v = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(p.settings.seed + 1), dtype=torch.float64)
        step0 = torch.zeros_like(x)
        step0[0] = v / v.norm(dim=1, keepdim=True)
        _, tangent = torch.func.jvp(layer64, (x,), (step0,))
        norms = tangent.norm(dim=2)
        assert float(norms[-1].max()) < 1e-45  # float32's smallest subnormal: plain float32 would read 0
        expected_lyapunov = float(np.mean((norms[-1].log() - norms[0].log()).numpy() / (x.shape[0] - 1)))
    states = []
    with torch.enable_grad():
        y = layer64(x, state_hook=lambda t, h: states.append(h) if t > 0 else None)[-1]
        c = torch.randn(y.shape, generator=torch.Generator().manual_seed(p.settings.seed), dtype=torch.float64)
        grads = torch.autograd.grad((y * c).sum(), states)
    expected_rate = np.mean(np.log(grads[0].norm(dim=1).numpy() / grads[-1].norm(dim=1).numpy()) / (x.shape[0] - 2))
    assert expected_lyapunov < -6 and expected_rate < -6
    assert get_metric("lyapunov")(p) == pytest.approx(expected_lyapunov, rel=1e-5)
    assert get_metric("state_grad_rate")(p) == pytest.approx(expected_rate, rel=1e-5)


# --- LPZero's fixed expressions -------------------------------------------------------------------
@pytest.mark.parametrize("space", ["decoder", "hf-gpt2", "nasbench-bert"])
def test_lpzero_gpt2_against_backward(space):
    pytest.importorskip("transformers") if space.startswith("hf") else None
    p = _probe(space)
    model = copy.deepcopy(p.model)
    with torch.random.fork_rng():
        torch.manual_seed(p.settings.seed)
        model.proxy_loss(p.inputs, p.targets).backward()
    terms = []
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):  # (out, in): LPZero's Conv1D dim 0 is this dim 1
            w, g = m.weight.detach().double(), m.weight.grad.double()
            terms.append(float((w ** 2).mean() + (torch.softmax(g, dim=1) ** 2).mean()))
        elif type(m).__name__ == "Conv1D":
            w, g = m.weight.detach().double(), m.weight.grad.double()
            terms.append(float((w ** 2).mean() + (torch.softmax(g, dim=0) ** 2).mean()))
    assert len(terms) > 2
    assert get_metric("lpzero_gpt2")(p) == pytest.approx(np.mean(terms), rel=1e-9)
    assert not get_metric("lpzero_gpt2").higher_is_better


def test_lpzero_bert_against_hooked_queries():
    p = _probe("nasbench-bert")
    model = copy.deepcopy(p.model)
    seen = []
    for layer in model.layers:
        first = layer.op.dense if hasattr(layer.op, "dense") else layer.op.query
        first.register_forward_hook(lambda _m, _i, z: seen.append(float(z.double().pow(2).mean())))
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(p.settings.seed)
        model(p.inputs)
    assert len(seen) == len(model.layers)
    assert get_metric("lpzero_bert")(p) == pytest.approx(np.mean(seen), rel=1e-9)
    # the genotype's act branch, logsoftmax of a 0-d norm, is exactly 0 whatever the norm
    assert float(torch.log_softmax(torch.tensor(123.4), dim=0)) == 0.0


# h_0 fed by itself through a weight scaled 1e-3 below, while state 1 keeps the tuple's norm up: h_0's
# part of the float32 tangent (DECOUPLED_FORWARD, where state 1 reaches h_0 through a weight scaled
# 1e-35) or gradient (DECOUPLED_BACKWARD) falls below float32's range even though the tuple is
# renormalised each step, and the cell is measured again in float64
DECOUPLED_FORWARD = {"a": {"op": "linear", "input": ["x", "h_prev_0", "h_prev_1"]},
                     "h_new_0": {"op": "activation_tanh", "input": ["a"]},
                     "b": {"op": "linear", "input": ["h_prev_1", "x"]}, "h_new_1": {"op": "activation_tanh", "input": ["b"]}}
DECOUPLED_BACKWARD = {"a": {"op": "linear", "input": ["h_prev_1", "h_prev_0", "x"]},
                      "h_new_0": {"op": "activation_tanh", "input": ["a"]},
                      "b": {"op": "linear", "input": ["h_prev_1", "x"]}, "h_new_1": {"op": "activation_tanh", "input": ["b"]}}


@pytest.mark.parametrize("recipe", ["forward", "backward"])
def test_a_state_whose_share_underflows_float32_is_measured_in_float64(recipe):
    from trainfree.metrics import rnn_dynamics as rd

    p = _rnn(DECOUPLED_FORWARD if recipe == "forward" else DECOUPLED_BACKWARD)
    layer = p.model.layers[0]
    with torch.no_grad():
        layer.components["a"].weights[1].mul_(1e-3)  # the h_prev_0 term
        if recipe == "forward":
            layer.components["a"].weights[2].mul_(1e-35)  # the h_prev_1 term
    layer64 = copy.deepcopy(layer).double()
    x, rows = rd._inputs(p, 1)
    if recipe == "forward":
        gen = torch.Generator().manual_seed(p.settings.seed + 1)
        v = torch.randn((rows.shape[1], x.shape[-1]), generator=gen, dtype=torch.float64)
        v = v / v.norm(dim=1, keepdim=True)
        with torch.no_grad():
            _, share = layer.step0_tangent_log_norms(x, v.float(), rows)
            full = x.double()[rows]
            step0 = torch.zeros_like(full)
            step0[0] = v
            _, tangent = torch.func.jvp(layer64, (full,), (step0,))
        assert share < rd.TINY_SHARE
        expected = rd.reached_rate(tangent.norm(dim=2).numpy())
        assert math.isfinite(expected)
        assert get_metric("lyapunov")(p) == pytest.approx(expected, rel=1e-9)
    else:
        _, shares = rd._state_grad_log_norms(layer, x, rows, p.settings.seed)
        assert float(shares[0].min()) < rd.TINY_SHARE
        states = []
        with torch.enable_grad():
            y = layer64(x.double()[rows], state_hook=lambda t, h: states.append(h) if t > 0 else None)[-1]
            c = torch.randn(y.shape, generator=torch.Generator().manual_seed(p.settings.seed), dtype=torch.float64)
            grads = torch.autograd.grad((y * c).sum(), states)
        first, last = grads[0].norm(dim=1).numpy(), grads[-1].norm(dim=1).numpy()
        assert (first > 0).all() and first.max() < 1e-45  # float32 would read 0 here
        expected = np.mean(np.log(first / last) / (rows.shape[0] - 2))
        assert get_metric("state_grad_rate")(p) == pytest.approx(expected, rel=1e-9)
