"""Metrics defined on decoder-only transformers (the LTS space) alone.

How the RNN metrics transfer (docs/metrics.md): a token position of a sequence plays the role of a
time step, so hidden covariance and activation distance are the shared metrics (``hidden_cov``,
``activation_distance``; the old ``decoder_*`` names are aliases) on the decoder space's artefacts.
``decoder_jacob_cov`` differs from the RNN's ``jacob_cov`` and keeps its own name: Mellor et al.'s
Jacobian covariance of the input embeddings through the gradient of a seeded random projection of
the last hidden state, since a final LayerNorm's output sums to a constant.
"""
from __future__ import annotations

import torch

from trainfree.metrics.base import metric
from trainfree.probe import Probe
from trainfree.linalg import correlation_rows, eig_score


@metric("decoder_jacob_cov", higher_is_better=True, requires={"decoder_blocks"}, backward=True)
def decoder_jacob_cov(probe: Probe) -> float:
    """Jacobian covariance: eigen score of the correlation between sequences of d(sum y * c)/d(input embedding),
    y the last hidden state and c a seeded N(0, 1) cotangent."""
    model = probe.model
    with torch.enable_grad():
        embedded = model.embed(probe.inputs).detach().requires_grad_(True)
        y = model.layer_outputs(embedded=embedded)[-1]
        gen = torch.Generator().manual_seed(probe.settings.seed)
        c = torch.randn(y.shape, generator=gen, dtype=y.dtype).to(y.device)
        (grad,) = torch.autograd.grad((y * c).sum(), embedded)
    return eig_score(correlation_rows(grad.reshape(grad.shape[0], -1).t()))
