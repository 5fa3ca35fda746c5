"""Hidden covariance (Serianni & Kalita 2023), the paper's new RNN metric, on every space with hidden states.

A decoder's token positions play the role of an RNN's time steps (docs/metrics.md): its "hidden state"
is a block's residual stream before LayerNorm.
"""
from __future__ import annotations


from trainfree.metrics.base import alias, metric
from trainfree.probe import Probe
from trainfree.linalg import hidden_covariance


def _layer_metric(layer: int):
    def fn(probe: Probe) -> float:
        return hidden_covariance(probe.hidden_states(layer))

    which = "the last layer" if layer == -1 else f"layer {layer}"
    fn.__doc__ = (f"Hidden covariance of {which}: eigen score of the unit x unit correlation of its hidden "
                  f"states over one clean forward (RNN: the incoming h_(t-1); decoder: the residual stream).")
    return fn


for _layer, _name, _column in ((1, "hidden_cov", "Layer 1 Hidden Covariance"),
                               (2, "hidden_cov_l2", "Layer 2 Hidden Covariance"),
                               (3, "hidden_cov_l3", "Layer 3 Hidden Covariance"),
                               (-1, "hidden_cov_last", None)):
    metric(_name, higher_is_better=True, requires={"hidden_states"},
           published_column=_column)(_layer_metric(_layer))

# the decoder space's names before the merge: same definition, version and values
alias("decoder_hidden_cov", of="hidden_cov")
alias("decoder_hidden_cov_last", of="hidden_cov_last")
