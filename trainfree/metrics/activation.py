"""Activation distance: NASWOT's binary-code kernel (Mellor et al. 2021) over every activation of a forward."""
from __future__ import annotations

import math

import torch

from trainfree.metrics.base import alias, metric
from trainfree.probe import Probe


@metric("activation_distance", higher_is_better=True, requires={"activation_kernel"}, published_column="Activation Distance")
def activation_distance(probe: Probe) -> float:
    """NASWOT log|det K|, K = sum over every activation (node, step, layer; FFN unit and position) of
    c c^T + (1-c)(1-c)^T (c = 1[a > 0]).

    K is B x B (sequences); one clean pass (the RNN notebook's second pass would add B ln 2). This is
    Mellor et al.'s NASWOT score with every activation evaluation as one more block of units.
    """
    sign, logdet = torch.linalg.slogdet(probe.activation_kernel().cpu())
    return float(logdet) if float(sign) != 0 else -math.inf


alias("decoder_activation_distance", of="activation_distance")  # the decoder space's name before the merge
