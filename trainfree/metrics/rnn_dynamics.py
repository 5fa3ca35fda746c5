"""Trainability signals of recurrent cells at initialisation (new in trainfree; docs/metrics.md).

An RNN trains when a perturbation of its state, and so the gradient of the loss, neither dies out nor
blows up over the sequence. Both are measured on the seeded model along the clean trajectory of the
benchmark batch, in the model's float32. 70 steps of a contracting cell would underflow float32, so
the perturbation (or the gradient) is divided by its norm after every step and the logs of those norms
are summed in float64 (the standard way to compute Lyapunov exponents). The norm is the hidden tuple's,
so where h_0's part of it falls below 1e-30 of the whole (another state keeps the norm up while h_0's
part decays) float32 may have lost it, and the cell is measured again in float64 (7 of 100 PTB cells for
state_grad_rate, 1 for lyapunov).

- ``lyapunov``: the finite-time largest Lyapunov exponent of layer 1 (the layer hidden covariance
  reads). A random unit perturbation of its input at step 0 is carried forward (the forward-mode
  derivative, i.e. the product of the state-to-state Jacobians along the trajectory); its mean log
  growth per step from the first step it reaches the state, averaged over sequences. 0 is the edge of
  chaos; very negative means the state forgets at once; -inf for a cell whose state does not feed back.
- ``state_grad_rate``: the backward view. dR/dh_t for layer 1's incoming states, R = <c, h_T> its last
  step against a seeded N(0, 1) cotangent; the mean log growth per step of ||dR/dh_t|| from the last
  step back to step 1 (negative: vanishing gradients).
- ``*_edge``: minus the absolute value, for "closest to 0 is best".
- ``hidden_erank``: effective rank (Roy & Vetterli 2007) of layer 1's hidden-state correlation, exp of
  the entropy of its normalised eigenvalues: a continuous count of the directions the state uses,
  where the eigen score mostly counts degenerate ones.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import scipy.linalg
import torch

from trainfree.metrics.base import metric
from trainfree.probe import Probe

REQUIRES = {"recurrent_cell"}


#: below this share of the tuple's norm, h_0's part of a float32 tangent or gradient may have lost digits
#: to underflow (float32's smallest normal is 1.2e-38): the cell is measured again in float64
TINY_SHARE = math.log(1e-30)


def _layer64(probe: Probe, layer: int):
    return probe.cached(("layer64", layer), lambda: copy.deepcopy(probe.model.layers[layer - 1]).to(torch.float64))


def _inputs(probe: Probe, layer: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The clean input recurrent ``layer`` (1-based) receives, as the layer's forward takes it: layer 1's
    as the distinct token embeddings (U, D) and the rows (T, B) that pick them (each is projected once);
    a later layer's (T, B, D) with rows None."""
    with torch.no_grad():
        if layer == 1:
            tokens, rows = torch.unique(probe.inputs, return_inverse=True)
            return probe.model.encoder(tokens).detach(), rows
        return probe.space.layer_outputs(probe, layer - 1).detach(), None


def reached_log_rate(logs: np.ndarray) -> float:
    """Mean over sequences of the log growth per step of a perturbation's norm, from log norms (T, B),
    measured from the first step it reaches (log norm > -inf) to the last: -inf for a sequence where it
    never reaches the state or dies out, NaN where it reaches only the last step (no growth to measure)
    or a norm is not finite."""
    rates = []
    for seq in logs.T:
        hit = np.flatnonzero(~np.isneginf(seq))  # NaN counts as reached: it makes the rate NaN
        if hit.size == 0:
            rates.append(-math.inf)
        elif hit[0] == seq.size - 1:
            rates.append(math.nan)
        else:
            rates.append(float((seq[-1] - seq[hit[0]]) / (seq.size - 1 - hit[0])))
    return float(np.mean(rates))


def reached_rate(norms: np.ndarray) -> float:
    """:func:`reached_log_rate` of norms (T, B)."""
    with np.errstate(divide="ignore"):
        return reached_log_rate(np.log(norms))


def layer_lyapunov(probe: Probe, layer: int) -> float:
    """Mean log growth per step of a step-0 input perturbation through ``layer``'s recurrence, from the
    first step it reaches the state (a cell whose step-0 output ignores its input, e.g. a product with
    the zero initial state, is reached a step or more later)."""
    x, rows = _inputs(probe, layer)
    steps, batch = x.shape[:2] if rows is None else rows.shape
    if steps < 2:
        return math.nan
    gen = torch.Generator().manual_seed(probe.settings.seed + layer)
    v = torch.randn((batch, x.shape[-1]), generator=gen, dtype=torch.float64)
    direction = (v / v.norm(dim=1, keepdim=True)).to(x.device)
    with torch.no_grad():  # the tangent by hand, renormalised each step (RecipeRNN.step0_tangent_log_norms)
        logs, share = probe.model.layers[layer - 1].step0_tangent_log_norms(x, direction.to(x.dtype), rows)
        if share < TINY_SHARE and x.dtype != torch.float64:
            logs, _ = _layer64(probe, layer).step0_tangent_log_norms(x.double(), direction, rows)
    return reached_log_rate(logs)


def lyapunov_value(probe: Probe) -> float:
    def compute():
        return layer_lyapunov(probe, 1)

    return probe.cached("lyapunov", compute)


class _Rescale(torch.autograd.Function):
    """The identity on a step's hidden tuple; backward divides the tuple's cotangent by its norm per
    sequence (recorded under the step), so the gradient never underflows on its way back."""

    @staticmethod
    def forward(ctx, norms, t, *hidden):
        ctx.norms, ctx.t = norms, t
        return tuple(h.view_as(h) for h in hidden)

    @staticmethod
    def backward(ctx, *grads):
        norm = sum(g.double().pow(2).sum(dim=1) for g in grads).sqrt()
        norm = torch.where((norm > 0) & torch.isfinite(norm), norm, 1.0)
        ctx.norms[ctx.t] = norm
        return (None, None, *(g / norm.to(g.dtype)[:, None] for g in grads))


def _state_grad_log_norms(cell, x, rows, seed: int) -> tuple[dict, dict]:
    """log ||dR/dh_t|| for each step t's output h_t (B,) in R's units, R = <c, h_T>, c seeded N(0, 1);
    and h_t's share of the step's rescaled cotangent (log). dR/dh_t counts every use of h_t, those inside
    step t too (a later node of the same step can read h_new_0), all of which reach R through step t's
    rescaling. Steps no gradient reaches are left out."""
    length, batch = rows.shape
    norms, grads = {}, {}

    def step(t, hidden):
        if hidden[0].requires_grad:
            hidden[0].register_hook(lambda g: grads.__setitem__(t, g.double().norm(dim=1)))
        return _Rescale.apply(norms, t, *hidden)

    # differentiate with respect to the zero initial tuple: the backward runs through every step and no
    # weight gradient is formed
    start = [x.new_zeros(batch, cell.hidden_size, requires_grad=True) for _ in range(cell.tuple_size)]
    with torch.enable_grad():
        y = cell(x, rows=rows, carry=list(start), step_hook=step)[-1]  # (B, H): the layer's last step
        c = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        torch.autograd.grad((y * c.to(y.device, y.dtype)).sum(), start, allow_unused=True)
    scale = torch.zeros(batch, dtype=torch.float64)
    logs, shares = {}, {}
    for t in range(length - 1, -1, -1):
        if t in norms:
            scale = scale + norms[t].cpu().log()  # the rescalings of steps t..T-1
        if t in grads:
            shares[t] = grads[t].cpu().log()
            logs[t] = shares[t] + scale
    return logs, shares


def state_grad_rate_value(probe: Probe) -> float:
    def compute():
        x, rows = _inputs(probe, 1)
        length, batch = rows.shape
        steps = length - 2
        if steps < 1:
            return math.nan
        used = (0, length - 2)  # the states steps 1 and T-1 receive
        logs, shares = _state_grad_log_norms(probe.model.layers[0], x, rows, probe.settings.seed)
        if any(t in shares and float(shares[t].min()) < TINY_SHARE for t in used):
            logs, _ = _state_grad_log_norms(_layer64(probe, 1), x.double(), rows, probe.settings.seed)
        first, last = (logs.get(t, torch.full((batch,), -math.inf, dtype=torch.float64)) for t in used)
        return float(np.mean(((first - last) / steps).numpy()))

    return probe.cached("state_grad_rate", compute)


#: version 2: measured from the first step the perturbation reaches (version 1 gave +inf where step 0's
#: output ignores the input). Version 3: in the model's float32 with the tangent renormalised each step
#: (version 2 ran a float64 copy through forward-mode autodiff): 3.8x faster, values within 4.9e-5
#: relative on the suite's 130 subset cells (docs/performance.md; benchmarks/dynamics_versions.py)
@metric("lyapunov", higher_is_better=True, requires=REQUIRES, version="3")
def lyapunov(probe: Probe) -> float:
    """Finite-time largest Lyapunov exponent of layer 1 along the clean trajectory: mean log growth per
    step of a step-0 perturbation (Jacobian products, renormalised each step) from the first step it
    reaches, mean over sequences."""
    return lyapunov_value(probe)


@metric("lyapunov_edge", higher_is_better=True, requires=REQUIRES, version="3")
def lyapunov_edge(probe: Probe) -> float:
    """Minus |lyapunov|: closest to the edge of chaos (exponent 0) ranks first."""
    return -abs(lyapunov_value(probe))


#: version 2: float32 with the cotangent renormalised each step (version 1: a float64 copy): 2.3x faster,
#: values within 8.0e-5 relative on the suite's 130 subset cells
@metric("state_grad_rate", higher_is_better=True, requires=REQUIRES, version="2", backward=True)
def state_grad_rate(probe: Probe) -> float:
    """Mean log growth per step of ||dR/dh_t|| from the last step back to step 1 over layer 1's states
    (R = <c, h_T>, c seeded N(0, 1)): negative when gradients vanish through time."""
    return state_grad_rate_value(probe)


@metric("state_grad_edge", higher_is_better=True, requires=REQUIRES, version="2", backward=True)
def state_grad_edge(probe: Probe) -> float:
    """Minus |state_grad_rate|: gradients that neither vanish nor explode rank first."""
    return -abs(state_grad_rate_value(probe))


def effective_rank(samples: torch.Tensor) -> float:
    """exp(entropy of the normalised eigenvalues) of the correlation between the varying columns of
    ``samples`` (N, D); 0 when no column varies, NaN when a value is not finite."""
    x = samples.detach().reshape(-1, samples.shape[-1]).to("cpu", torch.float64)
    if not bool(torch.isfinite(x).all()):
        return math.nan
    x = x[:, x.amax(dim=0) > x.amin(dim=0)]
    if x.shape[1] == 0:
        return 0.0
    x = x.numpy()
    x -= x.mean(axis=0, keepdims=True)
    x /= np.linalg.norm(x, axis=0, keepdims=True)
    # the correlation matrix's eigenvalues: x'x (numpy's symmetric rank-k update) and a symmetric
    # eigensolver, a third of the SVD's time; they differ from the squared singular values by float64
    # rounding of the largest (1e-16 relative), which moves the entropy by less than 1e-12
    lam = scipy.linalg.eigvalsh(x.T @ x, check_finite=False)
    p = lam[lam > 0] / lam[lam > 0].sum()
    return float(np.exp(-(p * np.log(p)).sum()))


@metric("hidden_erank", higher_is_better=True, requires={"hidden_states"})
def hidden_erank(probe: Probe) -> float:
    """Effective rank of layer 1's hidden-state correlation over one clean forward (constant units left out)."""
    return effective_rank(probe.hidden_states(1))
