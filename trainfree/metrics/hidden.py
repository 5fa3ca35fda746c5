"""Hidden covariance (Serianni & Kalita 2023), the paper's new RNN metric."""
from __future__ import annotations

import torch

from trainfree.metrics.base import Probe, metric
from trainfree.metrics.linalg import correlation_rows, eig_score


def layer_outputs(probe: Probe, layer: int) -> torch.Tensor:
    """Clean eval-mode outputs (T, B, H) of recurrent ``layer`` (1-based); computes only layers 1..layer.

    Layers already computed for this probe are reused, so asking for layer 3 after layer 1 runs
    only layers 2 and 3.
    """
    key = ("layer_output", layer)
    if key in probe._cache:
        return probe._cache[key]
    model = probe.model
    with torch.no_grad():
        h = model.encoder(probe.inputs) if layer == 1 else layer_outputs(probe, layer - 1)
        out = model.layers[layer - 1](h)
    probe._cache[key] = out
    return out


def incoming_hidden_states(probe: Probe, layer: int) -> torch.Tensor:
    """h_{t-1} as each step of ``layer`` received it: the zero h_0, then outputs 1..T-1. (T, B, H)"""
    out = layer_outputs(probe, layer)
    return torch.cat([torch.zeros_like(out[:1]), out[:-1]], dim=0)


def hidden_covariance(states: torch.Tensor) -> float:
    """Eigen score of the hidden-unit x hidden-unit correlation over all (sequence, step) samples."""
    samples = states.reshape(-1, states.shape[-1])  # (T*B, H): rows are samples, columns are units
    return eig_score(correlation_rows(samples))


def _layer_metric(layer: int, column: str):
    def fn(probe: Probe) -> float:
        return hidden_covariance(incoming_hidden_states(probe, layer))

    fn.__doc__ = (f"Hidden covariance of recurrent layer {layer}: eigen score of the unit x unit correlation "
                  f"of the incoming hidden states of one clean forward.")
    return fn


for _layer, _name in ((1, "hidden_cov"), (2, "hidden_cov_l2"), (3, "hidden_cov_l3")):
    _column = f"Layer {_layer} Hidden Covariance"
    metric(_name, higher_is_better=True, needs={"forward", "hidden_states"}, spaces=("nasbench-nlp",),
           published_column=_column)(_layer_metric(_layer, _column))
