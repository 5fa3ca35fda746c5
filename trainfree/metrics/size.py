"""Model size: the baseline every training-free metric must beat."""
from __future__ import annotations

from trainfree.metrics.base import Probe, metric


@metric("params", higher_is_better=True, needs={"weights"}, spaces=("nasbench-nlp",))
def params(probe: Probe) -> float:
    """Number of parameters of the built model (tied weights counted once)."""
    return float(sum(p.numel() for p in probe.model.parameters()))


@metric("nonembedding_params", higher_is_better=True, needs={"weights"}, spaces=("nasbench-nlp",))
def nonembedding_params(probe: Probe) -> float:
    """Parameters outside the token embedding, the tied decoder and its bias: the recurrent layers."""
    model = probe.model
    return float(sum(p.numel() for p in model.layers.parameters()))
