"""Synaptic saliency and hidden synaptic saliency as Serianni & Kalita (2023) computed them."""
from __future__ import annotations

from trainfree.metrics.base import metric
from trainfree.probe import Probe

REQUIRES = {"recurrent_cell"}  # the NAS-Bench-NLP model's own passes (the space's ones_pass, half_norm_saliency)


@metric("synaptic_saliency", higher_is_better=False, requires=REQUIRES, backward=True)
def synaptic_saliency(probe: Probe) -> float:
    """sum |theta * dR/dtheta|, R = 1/2 ||y||^2, over every linear W_i (i >= 1) and the tied embedding.

    The paper's notebook definition; not true SynFlow (no |theta| linearisation, real tokens).
    """
    return probe.space.half_norm_saliency(probe)


@metric("synaptic_saliency_csv", higher_is_better=False, requires=REQUIRES, backward=True,
        published_column="Synaptic Saliency")
def synaptic_saliency_csv(probe: Probe) -> float:
    """The released CSV's synaptic saliency: as synaptic_saliency but with R = sum(y) (cotangent ones)."""
    return probe.space.ones_pass(probe).saliency


@metric("hidden_synaptic_saliency", higher_is_better=False, requires=REQUIRES, backward=True, published_column="Hidden Synaptic Saliency")
def hidden_synaptic_saliency(probe: Probe) -> float:
    """sum over every incoming hidden state h of sum |h * dS/dh|, S = sum(y), one clean pass."""
    return probe.space.ones_pass(probe).hidden_saliency
