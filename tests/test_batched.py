"""The batched layer-1 path (many NAS-Bench-NLP cells per pass) against the per-architecture one."""
import math

import numpy as np
import pytest
import torch

from trainfree.config import ScoreSettings
from trainfree.metrics import get_metric
from trainfree.linalg import correlation_rows, eig_score, eig_scores
from trainfree.outcomes import score_many, score_one
from trainfree.probe import Probe
from trainfree.spaces import get_space
from trainfree.spaces.nasbench_nlp import draws
from trainfree.spaces.nasbench_nlp.batched import Layer1Batch, stream_offsets
from trainfree.spaces.nasbench_nlp.lm import build_lm, get_size
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
from tests.conftest import LSTM, RNN
from tests.test_models import TORCH_GRU

TINY = ScoreSettings(size="tiny", device="cpu")
VOCAB = 10000  # PTB

# h doubles twice and is squared every step: it overflows to inf, then inf - inf gives NaN
EXPLODES = {
    "l": {"op": "linear", "input": ["x", "h_prev_0"]},
    "a": {"op": "activation_leaky_relu", "input": ["l"]},
    "s1": {"op": "elementwise_sum", "input": ["h_prev_0", "h_prev_0"]},
    "s2": {"op": "elementwise_sum", "input": ["s1", "s1"]},
    "p": {"op": "elementwise_prod", "input": ["s2", "s2"]},
    "h_new_0": {"op": "blend", "input": ["a", "p", "a"]},
}
# a second state h1 <- 4 h1^2 + tanh(...) that grows without bound and feeds the output through a product
EXPLODES_2 = {
    "l": {"op": "linear", "input": ["x", "h_prev_0", "h_prev_1"]},
    "t": {"op": "activation_tanh", "input": ["l"]},
    "g": {"op": "elementwise_sum", "input": ["h_prev_1", "h_prev_1"]},
    "gg": {"op": "elementwise_prod", "input": ["g", "g"]},
    "h_new_1": {"op": "elementwise_sum", "input": ["gg", "t"]},
    "q": {"op": "elementwise_prod", "input": ["t", "h_new_1"]},
    "m": {"op": "linear", "input": ["q", "x"]},
    "h_new_0": {"op": "activation_sigm", "input": ["m"]},
}


@pytest.fixture(scope="module")
def cells(ptb):
    """Three dozen cells of mixed shapes: shipped ones (1-3 states, 8-25 nodes, dead nodes), the
    hand-written LSTM, RNN and GRU, and two that explode to non-finite states."""
    seen, out, triple = set(), [], []
    for r in ptb.records:
        if r.arch.arch_id not in seen:
            seen.add(r.arch.arch_id)
            if len(out) < 28:
                out.append(r.arch)
            elif r.arch.hidden_tuple_size == 3 and len(triple) < 4:
                triple.append(r.arch)
        if len(triple) == 4:
            break
    return out + triple + [parse_recipe(c) for c in (LSTM, RNN, TORCH_GRU, EXPLODES, EXPLODES_2)]


def _per_arch_states(arch, settings=TINY):
    return Probe(arch, get_space("nasbench-nlp"), settings).hidden_states(1)


@pytest.fixture(scope="module")
def reference(cells):
    return [_per_arch_states(c) for c in cells]


def test_the_cells_have_mixed_shapes_and_some_explode(cells, reference):
    assert {c.hidden_tuple_size for c in cells} == {1, 2, 3}
    assert len({len(c.nodes) for c in cells}) > 5
    assert [bool(torch.isfinite(r).all()) for r in reference] == [True] * (len(cells) - 2) + [False, False]


@pytest.mark.parametrize("per_batch", [1, 5, 64])
def test_batched_states_equal_the_per_architecture_states(cells, reference, per_batch):
    size, space = get_size("tiny"), get_space("nasbench-nlp")
    shared = draws.stream(0, (VOCAB, size.emsize))
    tokens = space.inputs(TINY)
    for s in range(0, len(cells), per_batch):
        part = cells[s: s + per_batch]
        got = Layer1Batch(part, size, VOCAB, shared).incoming_states(tokens)
        assert got.shape == (len(part), 70, 50, 24)
        for j in range(len(part)):
            # the same float operations in the same order: equal, NaN and inf where they are
            torch.testing.assert_close(got[j], reference[s + j], rtol=0, atol=0, equal_nan=True)


def test_batched_scores_equal_the_per_architecture_scores(cells):
    space = get_space("nasbench-nlp")
    chunk = [(c, ["hidden_cov"]) for c in cells] + [(c, ["hidden_cov", "params"]) for c in cells[:3]] + \
        [(c, ["params", "hidden_cov_l2"]) for c in cells[3:5]]
    batched = score_many(space, chunk, TINY)
    single = [o for arch, names in chunk for o in score_one(space, arch, names, TINY)]
    assert [(o.arch_id, o.metric, o.status) for o in batched] == [(o.arch_id, o.metric, o.status) for o in single]
    for b, s in zip(batched, single):
        if math.isnan(s.value):
            assert math.isnan(b.value)
        else:
            assert b.value == pytest.approx(s.value, rel=1e-9)
    assert sum(o.status == "nonfinite" for o in batched) == 2  # the exploding cells, reported as NaN


def test_the_gpu_way_on_cpu_agrees_to_rounding(cells, reference):
    # what a GPU runs (tanh/sigmoid over all architectures at once, batched float64 correlation and
    # factor), here on CPU: the same values to float32 rounding of the activations' last elements
    from trainfree.spaces.nasbench_nlp._batched_metrics import hidden_cov_batch

    size = get_size("tiny")
    got = Layer1Batch(cells, size, VOCAB, draws.stream(0, (VOCAB, size.emsize)), exact=False).incoming_states(
        get_space("nasbench-nlp").inputs(TINY))
    for j, want in enumerate(reference):
        torch.testing.assert_close(got[j], want, rtol=1e-5, atol=1e-6, equal_nan=True)
    fast = hidden_cov_batch(cells, TINY, torch.device("cpu"), exact=False)
    exact = hidden_cov_batch(cells, TINY, torch.device("cpu"))
    assert [math.isnan(v) for v in fast] == [math.isnan(v) for v in exact] == [False] * (len(cells) - 2) + [True] * 2
    assert fast[:-2] == pytest.approx(exact[:-2], rel=1e-5)


def test_other_forward_metrics_keep_the_per_architecture_path(cells, monkeypatch):
    from trainfree.spaces.nasbench_nlp import _batched_metrics as rnn_batch

    calls = []
    real = rnn_batch.BATCHED["hidden_cov"]
    monkeypatch.setitem(rnn_batch.BATCHED, "hidden_cov", lambda *a: calls.append(len(a[0])) or real(*a))
    space = get_space("nasbench-nlp")
    score_many(space, [(cells[0], ["hidden_cov", "hidden_cov_l2"]), (cells[1], ["hidden_cov_l2"])], TINY)
    assert calls == []  # layer 2 needs the whole model: one probe serves both metrics
    score_many(space, [(c, ["hidden_cov", "params"]) for c in cells[:5]], TINY)
    assert calls == [5]  # at the tiny width, all of them in one pass
    score_many(space, [(c, ["hidden_cov"]) for c in cells[:5]], TINY, batch=2)
    assert calls == [5, 2, 2, 1]


def test_a_failing_batch_falls_back_to_one_architecture_at_a_time(cells, monkeypatch):
    from trainfree.spaces.nasbench_nlp import _batched_metrics as rnn_batch

    def broken(*_):
        raise RuntimeError("out of memory")

    monkeypatch.setitem(rnn_batch.BATCHED, "hidden_cov", broken)
    space = get_space("nasbench-nlp")
    out = score_many(space, [(c, ["hidden_cov"]) for c in cells[:3]], TINY)
    assert [o.value for o in out] == [o.value for c in cells[:3] for o in score_one(space, c, ["hidden_cov"], TINY)]


def test_lean_weights_are_the_models_bit_for_bit(cells):
    size = get_size("tiny")
    shared = draws.stream(0, (VOCAB, size.emsize))
    for arch in cells[:6] + cells[-5:]:
        model = build_lm(arch, VOCAB, "tiny")
        layout, emb_offset = stream_offsets(arch, size, VOCAB)
        for name, comp in model.layers[0].components.items():
            for key, p in [((name, "bias"), comp.bias)] + [((name, k), w) for k, w in enumerate(comp.weights)]:
                offset, shape = layout[key]
                got = torch.empty(shape)
                shared.fill_(got, offset, -1 / math.sqrt(24), 1 / math.sqrt(24))
                assert torch.equal(got, p.data), key
        rows = torch.tensor([0, 17, 9999])
        got = torch.empty(3, size.emsize)
        shared.fill_at_(got, emb_offset + rows[:, None] * size.emsize + torch.arange(size.emsize), -0.1, 0.1)
        assert torch.equal(got, model.encoder.weight.data[rows])


def test_stream_pieces_join_seamlessly(monkeypatch):
    monkeypatch.setattr(draws.UniformStream, "CHUNK", 1000)
    s = draws.UniformStream(3, (7, 5))
    gen = torch.Generator().manual_seed(3)
    torch.empty(7, 5).normal_(generator=gen)
    want = torch.empty(5500).uniform_(generator=gen)
    assert torch.equal(s.values(0, 5500), want)
    assert torch.equal(s.values(990, 25), want[990:1015])  # across a piece boundary
    index = torch.tensor([[4999, 3], [1000, 999]])
    assert torch.equal(s.take(index), want[index])
    assert len(s) % 1000 == 0 and len(s) >= 5000


def test_batched_eig_scores_equal_the_per_item_path():
    rng = np.random.default_rng(5)
    items = [rng.normal(size=(60, 8)) @ rng.normal(size=(8, 8)),  # full rank
             rng.normal(size=(6, 8)),  # rank deficient: small eigenvalues
             rng.normal(size=(60, 8))]
    items[2][:, 3] = 0.7  # a constant unit
    explode = rng.normal(size=(60, 8))
    explode[5, 2] = math.inf
    items.append(explode)
    padded = [np.concatenate([x, np.zeros((60 - len(x), 8))]) if len(x) < 60 else x for x in items]
    samples = torch.tensor(np.stack(padded))
    got = eig_scores(samples)
    want = [eig_score(correlation_rows(s)) for s in samples]
    assert math.isnan(got[2]) and math.isnan(want[2]) and math.isnan(got[3]) and math.isnan(want[3])
    assert got[:2] == pytest.approx(want[:2], rel=1e-9)
    assert eig_scores(torch.empty(0, 5, 3)) == []


def test_not_positive_definite_goes_through_the_eigenvalues():
    # as eig_score: a matrix with an eigenvalue below -k gives NaN from the logarithm, one with an
    # eigenvalue in (-k, 0) its finite eigenvalue sum
    from trainfree.linalg import EIG_K, eig_scores_of

    corr = torch.stack([torch.diag(torch.tensor([1.0, -0.5], dtype=torch.float64)),
                        torch.diag(torch.tensor([1.0, -EIG_K / 2], dtype=torch.float64)),
                        torch.eye(2, dtype=torch.float64)])
    got = eig_scores_of(corr, torch.tensor([True, True, True]))
    want = [eig_score(c) for c in corr]
    assert math.isnan(got[0]) and math.isnan(want[0])
    assert got[1:] == pytest.approx(want[1:], rel=1e-12)


def test_paper_size_batched_values_equal_the_published_column(ptb):
    from trainfree.benchmarks.published import load_published

    published = load_published()
    records, seen = [], set()
    for r in ptb.records:
        if r.arch.arch_id not in seen and r.name in published:
            seen.add(r.arch.arch_id)
            records.append(r)
        if len(records) == 2:
            break
    settings = ScoreSettings(device="cpu")
    out = score_many(get_space("nasbench-nlp"), [(r.arch, ["hidden_cov"]) for r in records], settings)
    for r, o in zip(records, out):
        assert o.value == pytest.approx(published[r.name]["Layer 1 Hidden Covariance"], rel=1e-5)
    assert get_metric("hidden_cov").published_column == "Layer 1 Hidden Covariance"
