"""Activation distance: NASWOT's binary-code kernel (Mellor et al. 2021) over a recurrent cell."""
from __future__ import annotations

import math

import torch

from trainfree.metrics.base import Probe, metric
from trainfree.metrics.rnn_passes import layer_outputs


@metric("activation_distance", higher_is_better=True, needs={"forward", "activations"}, spaces=("nasbench-nlp",),
        published_column="Activation Distance")
def activation_distance(probe: Probe) -> float:
    """NASWOT log|det K|, K = sum over every activation node, step and layer of c c^T + (1-c)(1-c)^T (c = 1[a > 0]).

    K is B x B (sequences); one clean pass (the notebook's second pass would add B ln 2). This is
    Mellor et al.'s NASWOT score with every activation evaluation as one more block of units.
    """
    layers = len(probe.model.layers)
    layer_outputs(probe, layers, kernel=True)
    kernel = sum(probe._cache[("activation_kernel", i)] for i in range(1, layers + 1))
    sign, logdet = torch.linalg.slogdet(kernel.cpu())
    return float(logdet) if float(sign) != 0 else -math.inf
