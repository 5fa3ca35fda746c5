"""Model size: the baseline every training-free metric must beat."""
from __future__ import annotations

from trainfree.metrics.base import Probe, metric


SPACES = ("nasbench-nlp", "nasbench-bert")


@metric("params", higher_is_better=True, needs={"weights"}, spaces=SPACES + ("decoder",),
        published_column="Number of Parameters")
def params(probe: Probe) -> float:
    """Number of parameters of the built model (tied weights counted once)."""
    return float(sum(p.numel() for p in probe.model.parameters()))


@metric("nonembedding_params", higher_is_better=True, needs={"weights"}, spaces=SPACES)
def nonembedding_params(probe: Probe) -> float:
    """Parameters outside the embedding tables (RNN: the tied embedding/decoder and its bias; BERT: the
    token, type and position tables)."""
    model = probe.model
    embedding = {id(p) for p in model.embedding_parameters()}
    return float(sum(p.numel() for p in model.parameters() if id(p) not in embedding))
