"""Checks every registered metric passes, parametrised over the registry: a new metric is tested
the moment it is registered (finite on the tiny model, deterministic, leaves the model unchanged). What each
costs is printed by `python benchmarks/metric_costs.py --tiny --space SPACE`, not asserted here."""
import math

import pytest
import torch

from trainfree.config import ScoreSettings
from trainfree.metrics import METRICS, Probe
from trainfree.spaces import get_space
from tests.conftest import LSTM

# tiny model, tiny batch, per space
TINY = {"nasbench-nlp": ScoreSettings(size="tiny", batch_size=10, seq_len=20, device="cpu"),
        "nasbench-bert": ScoreSettings(size="tiny", corpus="wikitext-2", batch_size=4, seq_len=16, device="cpu"),
        "decoder": ScoreSettings(size="tiny", corpus="wikitext-2", batch_size=4, seq_len=16, device="cpu")}
_LAYER = {"operation_type": "SA", "operation_parameter": "WMA", "num_operation_heads": 4,
          "feed_forward_dimension": 512, "num_feed_forward": 3}
BERT = {"hidden_size": 256, "encoder_layers": [  # every operation family once
    _LAYER, dict(_LAYER, operation_type="LT", operation_parameter="DCT", num_operation_heads=2),
    dict(_LAYER, operation_type="DSC", operation_parameter=9, num_feed_forward=1),
    dict(_LAYER, operation_parameter="SDP")]}
DECODER = {"family": "TransXL", "n_layer": 3, "d_model": 128, "n_head": [2, 8, 4], "d_inner": [900, 512, 1500],
           "d_embed": 256, "div_val": 2, "n_token": 267736, "cutoffs": [19997, 39997, 199997, 267736],
           "tie_projs": [False, True, True, True], "tgt_len": 192}
SPACE_ARCHS = {"nasbench-nlp": LSTM, "nasbench-bert": BERT, "decoder": DECODER}


def _cases():
    return [(m.name, space) for m in METRICS for space in m.spaces if space in SPACE_ARCHS]


@pytest.mark.parametrize("name,space", _cases())
def test_metric_contract(name, space):
    metric = next(m for m in METRICS if m.name == name)
    sp = get_space(space)
    probe = Probe(sp.from_json(SPACE_ARCHS[space]), sp, TINY[space])
    before = {k: v.clone() for k, v in probe.model.state_dict().items()}
    value = metric(probe)
    assert math.isfinite(value), f"{name} gave {value} on the tiny model"
    after = probe.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), f"{name} changed the probe's weights"
    assert all(p.grad is None for p in probe.model.parameters()), f"{name} left gradients on the model"
    again = metric(Probe(sp.from_json(SPACE_ARCHS[space]), sp, TINY[space]))
    assert again == value or not metric.deterministic, f"{name} is not deterministic under the same seed"


def test_every_metric_documents_itself():
    for m in METRICS:
        assert m.description and m.version and m.spaces and m.needs
        assert m.fn.__doc__ and len(m.fn.__doc__.strip()) > 20
