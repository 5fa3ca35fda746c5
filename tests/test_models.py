"""Recipe cells against torch's reference RNNs, and the seeded language model."""
import torch

from trainfree.spaces.nasbench_nlp.cell import RecipeRNN
from trainfree.spaces.nasbench_nlp import draws
from trainfree.spaces.nasbench_nlp.lm import RecipeLM, build_lm, get_size
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
from tests.conftest import LSTM, RNN


def _benchmark_recipe(wt2, recipe_id):
    return next(r.arch for r in wt2.records if r.extra["recipe_id"] == recipe_id)


def _load_lstm(cell: RecipeRNN, ref: torch.nn.LSTM) -> None:
    hid = ref.hidden_size
    gates = dict(zip("ifgo", range(4)))  # torch's row blocks: input, forget, cell (candidate), output
    recipe_gate = {"j": "i", "f": "f", "i": "g", "o": "o"}
    with torch.no_grad():
        for node, gate in recipe_gate.items():
            rows = slice(gates[gate] * hid, (gates[gate] + 1) * hid)
            comp = cell.components[node]
            comp.weights[0].copy_(ref.weight_ih_l0[rows])
            comp.weights[1].copy_(ref.weight_hh_l0[rows])
            comp.bias.copy_(ref.bias_ih_l0[rows] + ref.bias_hh_l0[rows])


def test_lstm_recipe_equals_torch_lstm():
    torch.manual_seed(1)
    ref = torch.nn.LSTM(5, 7)
    cell = RecipeRNN(parse_recipe(LSTM), 5, 7)
    _load_lstm(cell, ref)
    x = torch.randn(11, 3, 5)
    expected, _ = ref(x)
    torch.testing.assert_close(cell(x), expected, rtol=1e-5, atol=1e-6)


def test_benchmark_lstm_recipe_has_a_tanh_output_gate(wt2):
    # NAS-Bench-NLP's recipe 1000001 uses tanh for the output gate; with it swapped for a sigmoid it is the
    # textbook LSTM above, as shipped it is a different function. Both facts are checked.
    recipe = _benchmark_recipe(wt2, 1000001)
    as_dict = recipe.to_dict()
    assert as_dict["o_act"]["op"] == "activation_tanh"
    assert dict(as_dict, o_act={"op": "activation_sigm", "input": ["o"]}) == LSTM
    torch.manual_seed(1)
    ref = torch.nn.LSTM(5, 7)
    cell = RecipeRNN(recipe, 5, 7)
    _load_lstm(cell, ref)
    x = torch.randn(11, 3, 5)
    assert not torch.allclose(cell(x), ref(x)[0], atol=1e-3)


TORCH_GRU = {  # torch.nn.GRU: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    "r": {"op": "linear", "input": ["x", "h_prev_0"]},
    "r_act": {"op": "activation_sigm", "input": ["r"]},
    "z": {"op": "linear", "input": ["x", "h_prev_0"]},
    "z_act": {"op": "activation_sigm", "input": ["z"]},
    "xn": {"op": "linear", "input": ["x"]},
    "hn": {"op": "linear", "input": ["h_prev_0"]},
    "rhn": {"op": "elementwise_prod", "input": ["r_act", "hn"]},
    "n_pre": {"op": "elementwise_sum", "input": ["xn", "rhn"]},
    "n": {"op": "activation_tanh", "input": ["n_pre"]},
    "h_new_0": {"op": "blend", "input": ["z_act", "h_prev_0", "n"]},
}


def _gru_blocks(ref, hid):
    return {k: slice(i * hid, (i + 1) * hid) for i, k in enumerate("rzn")}


def test_gru_recipe_equals_torch_gru():
    torch.manual_seed(2)
    ref, hid = torch.nn.GRU(5, 7), 7
    blk = _gru_blocks(ref, hid)
    cell = RecipeRNN(parse_recipe(TORCH_GRU), 5, hid)
    with torch.no_grad():
        for node in "rz":
            comp = cell.components[node]
            comp.weights[0].copy_(ref.weight_ih_l0[blk[node]])
            comp.weights[1].copy_(ref.weight_hh_l0[blk[node]])
            comp.bias.copy_(ref.bias_ih_l0[blk[node]] + ref.bias_hh_l0[blk[node]])
        cell.components["xn"].weights[0].copy_(ref.weight_ih_l0[blk["n"]])
        cell.components["xn"].bias.copy_(ref.bias_ih_l0[blk["n"]])
        cell.components["hn"].weights[0].copy_(ref.weight_hh_l0[blk["n"]])
        cell.components["hn"].bias.copy_(ref.bias_hh_l0[blk["n"]])
    x = torch.randn(9, 4, 5)
    torch.testing.assert_close(cell(x), ref(x)[0], rtol=1e-5, atol=1e-6)


def test_benchmark_gru_recipe_is_the_reset_before_matmul_gru(wt2):
    # NAS-Bench-NLP's GRU (1000002) applies the reset gate before the recurrent matmul, as Cho et al. (2014)
    # wrote it: n = tanh(W_in x + b + W_hn (r * h)). torch.nn.GRU applies it after (test above). Check the
    # recipe against that formula computed by hand from an nn.GRU's weights, and that it differs from nn.GRU.
    recipe = _benchmark_recipe(wt2, 1000002)
    torch.manual_seed(2)
    ref, hid = torch.nn.GRU(5, 7), 7
    blk = _gru_blocks(ref, hid)
    cell = RecipeRNN(recipe, 5, hid)
    with torch.no_grad():
        for node, gate in (("r", "r"), ("z", "z"), ("h_tilde", "n")):
            comp = cell.components[node]
            comp.weights[0].copy_(ref.weight_ih_l0[blk[gate]])
            comp.weights[1].copy_(ref.weight_hh_l0[blk[gate]])
            comp.bias.copy_(ref.bias_ih_l0[blk[gate]] + ref.bias_hh_l0[blk[gate]])
        x = torch.randn(9, 4, 5)
        h, outs = torch.zeros(4, hid), []
        w_ih, w_hh, b = ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0 + ref.bias_hh_l0
        for t in range(9):
            r = torch.sigmoid(x[t] @ w_ih[blk["r"]].T + h @ w_hh[blk["r"]].T + b[blk["r"]])
            z = torch.sigmoid(x[t] @ w_ih[blk["z"]].T + h @ w_hh[blk["z"]].T + b[blk["z"]])
            n = torch.tanh(x[t] @ w_ih[blk["n"]].T + (r * h) @ w_hh[blk["n"]].T + b[blk["n"]])
            h = z * h + (1 - z) * n
            outs.append(h)
        torch.testing.assert_close(cell(x), torch.stack(outs), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(cell(x), ref(x)[0], atol=1e-3)


def test_paper_size_parameter_count_of_the_tanh_rnn():
    # The vanilla tanh RNN of NAS-Bench-NLP has 5,731,600 parameters (RNN_parameters.csv).
    model = build_lm(parse_recipe(RNN), 10000, "paper")
    assert sum(p.numel() for p in model.parameters()) == 5_731_600


def test_build_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_lm(parse_recipe(LSTM), 50, "tiny", seed=0)
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = build_lm(parse_recipe(LSTM), 50, "tiny", seed=0)
    c = build_lm(parse_recipe(LSTM), 50, "tiny", seed=1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.encoder.weight, c.encoder.weight)


def _torch_drawn(recipe, vocab, size, seed):
    """The reference: the model drawing its own weights from torch's generator, in the benchmark's order."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RecipeLM(recipe, vocab, get_size(size))


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def test_stream_build_equals_torch_draws_bit_for_bit(ptb):
    # Cells of several shapes (hidden tuple sizes, input fan-ins), two seeds, growing the stream.
    recipes, seen = [], set()
    for record in ptb.records:
        if record.arch.arch_id not in seen and len(recipes) < 12:
            seen.add(record.arch.arch_id)
            recipes.append(record.arch)
    recipes += [parse_recipe(LSTM), parse_recipe(RNN)]
    assert draws.stream(0, (300, 16)).formula is not None  # this torch's rounding is a known one
    for seed in (0, 7):
        for recipe in recipes:
            _assert_same_weights(build_lm(recipe, 300, "tiny", seed), _torch_drawn(recipe, 300, "tiny", seed))
    # paper size: the stream grows past its first chunk
    _assert_same_weights(build_lm(recipes[0], 10000, "paper", 0), _torch_drawn(recipes[0], 10000, "paper", 0))


def test_build_without_a_known_rounding_draws_with_torch(monkeypatch):
    monkeypatch.setattr(draws, "_FORMULAS", ())
    monkeypatch.setattr(draws, "_CACHE", {})
    assert draws.stream(0, (50, 16)).formula is None
    _assert_same_weights(build_lm(parse_recipe(LSTM), 50, "tiny", 0), _torch_drawn(parse_recipe(LSTM), 50, "tiny", 0))


def test_stream_refuses_a_wrong_rounding(monkeypatch):
    # a formula that is off by one ulp must not be picked
    def off(u, lo, width, out):
        draws._fma(u, lo, width, out)
        out.copy_(torch.nextafter(out, torch.full_like(out, 2.0)))

    monkeypatch.setattr(draws, "_FORMULAS", (off, draws._float64))
    assert draws.UniformStream(0, (50, 16)).formula is draws._float64


def test_init_ranges_follow_the_benchmark():
    model = build_lm(parse_recipe(LSTM), 50, "tiny")
    assert model.encoder.weight.abs().max() <= 0.1
    assert torch.all(model.decoder_bias == 0)
    for layer in model.layers:
        bound = 1 / layer.hidden_size ** 0.5
        assert all(p.abs().max() <= bound for p in layer.parameters())
    assert [layer.hidden_size for layer in model.layers] == [24, 24, 16]


def test_layer_outputs_shapes_and_logits():
    model = build_lm(parse_recipe(LSTM), 50, "tiny")
    tokens = torch.randint(0, 50, (6, 3))
    outs = model.layer_outputs(tokens)
    assert [tuple(o.shape) for o in outs] == [(6, 3, 24), (6, 3, 24), (6, 3, 16)]
    assert tuple(model.logits(outs[-1]).shape) == (6, 3, 50)
    assert len(model.layer_outputs(tokens, upto=1)) == 1
