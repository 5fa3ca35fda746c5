"""Hidden covariance (Serianni & Kalita 2023), the paper's new RNN metric."""
from __future__ import annotations

import torch

from trainfree.metrics.base import Probe, metric
from trainfree.metrics.linalg import correlation_rows, eig_score
from trainfree.metrics.rnn_passes import incoming_hidden_states


def hidden_covariance(states: torch.Tensor) -> float:
    """Eigen score of the hidden-unit x hidden-unit correlation over all (sequence, step) samples."""
    samples = states.reshape(-1, states.shape[-1])  # (T*B, H): rows are samples, columns are units
    return eig_score(correlation_rows(samples))


def _layer_metric(layer: int):
    def fn(probe: Probe) -> float:
        return hidden_covariance(incoming_hidden_states(probe, layer))

    fn.__doc__ = (f"Hidden covariance of recurrent layer {layer}: eigen score of the unit x unit correlation "
                  f"of the incoming hidden states of one clean forward.")
    return fn


for _layer, _name in ((1, "hidden_cov"), (2, "hidden_cov_l2"), (3, "hidden_cov_l3")):
    metric(_name, higher_is_better=True, needs={"forward", "hidden_states"}, spaces=("nasbench-nlp",),
           published_column=f"Layer {_layer} Hidden Covariance")(_layer_metric(_layer))
