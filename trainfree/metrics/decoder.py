"""Metrics for decoder-only transformers (the LTS space).

How the RNN metrics transfer (docs/metrics.md): a token position of a sequence plays the role of a
time step. ``decoder_hidden_cov`` is the paper's hidden covariance of the first decoder block's
residual stream, units x units over every (sequence, position) sample, taken before LayerNorm
(a LayerNorm's outputs sum to zero over units, which would put a zero eigenvalue, -1e5, in every score); ``decoder_activation_distance`` is
NASWOT's log|det K| over the batch's sequences with every FFN activation of every position as one
more block of units; ``decoder_jacob_cov`` is Mellor et al.'s Jacobian covariance of the input
embeddings (the gradient of a seeded random projection of the last hidden state, since a final
LayerNorm's output sums to a constant).
"""
from __future__ import annotations

import math

import torch

from trainfree.metrics.base import Probe, metric
from trainfree.metrics.linalg import correlation_rows, eig_score

SPACES = ("decoder",)


@metric("decoder_params", higher_is_better=True, needs={"weights"}, spaces=SPACES)
def decoder_params(probe: Probe) -> float:
    """Non-embedding ("decoder") parameters, LTS's proxy: all but the adaptive embedding, GPT-2's position
    table and the adaptive softmax's own biases, cluster logits and untied projections."""
    model = probe.model
    embedding = {id(p) for p in model.embedding_parameters()}
    return float(sum(p.numel() for p in model.parameters() if id(p) not in embedding))


def _pass(probe: Probe) -> dict:
    """One forward: every block's residual stream (before LayerNorm) and the sequences' FFN activation kernel
    (B x B, float64)."""
    def compute() -> dict:
        model, kernel = probe.model, []

        def on_act(_m, _i, a):
            c = (a.detach() > 0).to(torch.float64).reshape(a.shape[0], -1)  # (B, T * d_inner)
            kernel.append(c @ c.t() + (1 - c) @ (1 - c).t())

        handles = [layer.act.register_forward_hook(on_act) for layer in model.layers]
        residuals: list = []
        try:
            with torch.no_grad():
                model.layer_outputs(probe.inputs, residuals=residuals)
        finally:
            for h in handles:
                h.remove()
        return {"residuals": residuals, "kernel": sum(kernel)}

    return probe.cached("decoder_pass", compute)


def _hidden_cov(states: torch.Tensor) -> float:
    return eig_score(correlation_rows(states.reshape(-1, states.shape[-1])))


@metric("decoder_hidden_cov", higher_is_better=True, needs={"forward", "hidden_states"}, spaces=SPACES)
def decoder_hidden_cov(probe: Probe) -> float:
    """Hidden covariance of the first block's residual stream (before any LayerNorm): eigen score of the
    unit x unit correlation over every (sequence, position) sample."""
    return _hidden_cov(_pass(probe)["residuals"][0])


@metric("decoder_hidden_cov_last", higher_is_better=True, needs={"forward", "hidden_states"}, spaces=SPACES)
def decoder_hidden_cov_last(probe: Probe) -> float:
    """Hidden covariance of the last block's residual stream (before any LayerNorm)."""
    return _hidden_cov(_pass(probe)["residuals"][-1])


@metric("decoder_activation_distance", higher_is_better=True, needs={"forward", "activations"}, spaces=SPACES)
def decoder_activation_distance(probe: Probe) -> float:
    """NASWOT log|det K| over the batch's sequences, K = sum over FFN activations of c c^T + (1-c)(1-c)^T,
    c = 1[a > 0] over every position and unit."""
    sign, logdet = torch.linalg.slogdet(_pass(probe)["kernel"].cpu())
    return float(logdet) if float(sign) != 0 else -math.inf


@metric("decoder_jacob_cov", higher_is_better=True, needs={"forward", "gradients"}, spaces=SPACES)
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
