"""The paper's RNN metrics scored together on one probe (shared and folded passes) against each metric on
its own probe, and against the published columns: the sharing must not change a value, non-finite ones
included."""
import math

import pytest

from trainfree.api import default_settings
from trainfree.benchmarks.published import load_published
from trainfree.config import ScoreSettings
from trainfree.evaluation.reproduce import default_metrics
from trainfree.metrics import Probe, get_metric
from trainfree.spaces import get_space
from trainfree.spaces.nasbench_nlp.cell import RecipeRNN

PAPER = default_metrics("nasbench-nlp")
SPACE = get_space("nasbench-nlp")


def _alone(arch, settings) -> dict[str, float]:
    out = {}
    for name in PAPER:
        spec = get_metric(name)
        out[name] = spec(Probe(arch, SPACE, settings, expected=frozenset(spec.requires)))
    return out


def _together(arch, settings) -> dict[str, float]:
    expected = frozenset().union(*(get_metric(n).requires for n in PAPER))  # as score_one builds it
    probe = Probe(arch, SPACE, settings, expected=expected)
    return {name: get_metric(name)(probe) for name in PAPER}


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _mixed(bench, n: int) -> list:
    """n distinct cells evenly spaced over the benchmark, and its first cells with a dead node."""
    cells = list({r.arch.arch_id: r.arch for r in bench.records}.values())
    dead = [a for a in cells if len(a.live_nodes()) < len(a.nodes)][:3]
    return cells[:: len(cells) // n][:n] + dead


def test_together_equals_each_metric_alone_bit_for_bit(ptb, monkeypatch):
    settings = ScoreSettings(size="tiny", batch_size=10, seq_len=20, device="cpu")
    calls = []
    forward = RecipeRNN.forward
    monkeypatch.setattr(RecipeRNN, "forward", lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    cells = _mixed(ptb, 24)
    assert any(len(a.live_nodes()) < len(a.nodes) for a in cells)
    for arch in cells:
        alone = _alone(arch, settings)
        calls.clear()
        together = _together(arch, settings)
        for name in PAPER:
            assert _same(together[name], alone[name]), (arch.arch_id, name, together[name], alone[name])
        # 3 layers, 5 passes: the clean no-grad one (hidden states and codes), the ones pass, three noisy
        assert len(calls) == 15, arch.arch_id


#: the columns the per-metric path matched the published CSV on to rounding (docs/performance.md): the
#: noise variants amplify float32 rounding (1 - |clean - noisy|, products of four scores), so their
#: published values differ from any float32 recomputation by up to 1e-2 on some cells
ROUNDING_COLUMNS = {"hidden_cov": 1e-5, "hidden_cov_l2": 1e-5, "hidden_cov_l3": 1e-5,
                    # largest relative difference over the suite's cells: 6e-5, 8e-5, 2.4e-4
                    "activation_distance": 5e-4, "jacob_cosine": 5e-4, "synaptic_saliency_csv": 5e-4}


@pytest.mark.slow
def test_paper_size_together_equals_alone_and_published(ptb, wt2):
    settings = ScoreSettings(device="cpu")
    published = load_published()
    names = {r.arch.arch_id: r.name for r in ptb.records}
    cells = _mixed(ptb, 4)[:5]
    for arch in cells:
        alone = _alone(arch, settings)
        together = _together(arch, settings)
        assert all(_same(together[n], alone[n]) for n in PAPER), arch.arch_id
        row = published[names[arch.arch_id]]
        for n, rel in ROUNDING_COLUMNS.items():
            spec = get_metric(n)
            assert together[n] == pytest.approx(spec.published_sign * row[spec.published_column], rel=rel), n
    # WikiText-2 cells whose states go non-finite (hidden covariance NaN) or whose activation kernel is
    # singular (activation distance -inf): the same non-finite values either way
    wt_settings = default_settings(wt2).with_(device="cpu")
    by_id = {r.arch.arch_id: r.arch for r in wt2.records}
    for arch_id, name in (("eff8abe6ced5fc72", "hidden_cov"), ("f28e63b3ab494acc", "activation_distance")):
        alone = _alone(by_id[arch_id], wt_settings)
        together = _together(by_id[arch_id], wt_settings)
        assert not math.isfinite(together[name])
        assert all(_same(together[n], alone[n]) for n in PAPER), arch_id


def test_reproduce_recompute_skips_the_shipped_suite(monkeypatch, tmp_path):
    import trainfree.store.shipped as shipped
    from trainfree.cli import main

    calls = []
    lookup = shipped.lookup
    monkeypatch.setattr(shipped, "lookup", lambda *a, **k: calls.append(1) or lookup(*a, **k))
    common = ["reproduce", "rnn", "--metrics", "hidden_cov", "--limit", "2", "--no-store", "--jobs", "1", "--quiet"]
    assert main(common + ["--output-dir", str(tmp_path / "a")]) == 0
    assert calls  # by default the shipped values are looked up
    calls.clear()
    assert main(common + ["--recompute", "--output-dir", str(tmp_path / "b")]) == 0
    assert not calls
    a = (tmp_path / "a" / "results-rnn.csv").read_text().splitlines()
    b = (tmp_path / "b" / "results-rnn.csv").read_text().splitlines()
    assert a[0] == b[0] and a[1].split(",")[:8] == b[1].split(",")[:8]  # same values, same statistics
