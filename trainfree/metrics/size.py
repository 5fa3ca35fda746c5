"""Model size: the baseline every training-free metric must beat."""
from __future__ import annotations

from trainfree.metrics.base import alias, metric
from trainfree.probe import Probe


@metric("params", higher_is_better=True, requires={"parameters"},
        published_column="Number of Parameters", counts_only=True)
def params(probe: Probe) -> float:
    """Number of parameters of the model (tied weights counted once)."""
    return float(probe.param_counts()["params"])


@metric("nonembedding_params", higher_is_better=True, requires={"parameters", "parameter_groups"}, counts_only=True)
def nonembedding_params(probe: Probe) -> float:
    """Parameters outside the space's 'embedding' group (RNN: the tied embedding/decoder and its bias; BERT:
    the token, type and position tables; decoder (LTS's "decoder params"): the adaptive embedding, GPT-2's
    position table and the adaptive softmax's own biases, cluster logits and untied projections)."""
    return float(probe.param_counts()["nonembedding"])


alias("decoder_params", of="nonembedding_params")  # the decoder space's name for it until 0.x
