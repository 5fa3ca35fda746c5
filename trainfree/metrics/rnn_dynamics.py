"""Trainability signals of recurrent cells at initialisation (new in trainfree; docs/metrics.md).

An RNN trains when a perturbation of its state, and so the gradient of the loss, neither dies out nor
blows up over the sequence. Both are measured on the seeded model along the clean trajectory of the
benchmark batch, in float64 (70 steps of a contracting cell underflow float32):

- ``lyapunov``: the finite-time largest Lyapunov exponent of layer 1 (the layer hidden covariance
  reads). A random unit perturbation of its input at step 0 is carried forward (forward-mode
  autodiff, i.e. the product of the state-to-state Jacobians along the trajectory); its mean log
  growth per step from the first step it reaches the state, averaged over sequences. 0 is the edge of chaos; very negative means the state
  forgets at once; -inf for a cell whose state does not feed back.
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
from torch.autograd import forward_ad

from trainfree.metrics.base import metric
from trainfree.probe import Probe

REQUIRES = {"recurrent_cell"}


def _layers64(probe: Probe):
    return probe.cached("layers64", lambda: copy.deepcopy(probe.model.layers[:1]).to(dtype=torch.float64))


def _inputs(probe: Probe, layer: int) -> torch.Tensor:
    """The clean input (T, B, D) recurrent ``layer`` (1-based) receives, in float64."""
    with torch.no_grad():
        x = probe.model.encoder(probe.inputs) if layer == 1 else probe.space.layer_outputs(probe, layer - 1)
    return x.detach().to(torch.float64)


def _mean_log_rate(norms: torch.Tensor, steps: int) -> float:
    """mean over sequences of (log last - log first) / steps for norms (2, B); -inf where a norm is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 or inf norms: a non-finite value, recorded as such
        logs = np.log(norms.detach().cpu().numpy())
        return float(np.mean((logs[1] - logs[0]) / steps))


def reached_rate(norms: np.ndarray) -> float:
    """Mean over sequences of the log growth per step of a perturbation's norm (T, B), measured from the
    first step it reaches (norm > 0) to the last: -inf for a sequence where it never reaches the state
    or dies out, NaN where it reaches only the last step (no growth to measure)."""
    rates = []
    for seq in norms.T:
        hit = np.flatnonzero(seq > 0)
        if hit.size == 0:
            rates.append(-math.inf)
        elif hit[0] == seq.size - 1:
            rates.append(math.nan)
        else:
            with np.errstate(divide="ignore"):
                rates.append(float((np.log(seq[-1]) - np.log(seq[hit[0]])) / (seq.size - 1 - hit[0])))
    return float(np.mean(rates))


def layer_lyapunov(probe: Probe, layer: int) -> float:
    """Mean log growth per step of a step-0 input perturbation through ``layer``'s recurrence, from the
    first step it reaches the state (a cell whose step-0 output ignores its input, e.g. a product with
    the zero initial state, is reached a step or more later)."""
    x = _inputs(probe, layer)
    if x.shape[0] < 2:
        return math.nan
    gen = torch.Generator().manual_seed(probe.settings.seed + layer)
    v = torch.randn(x.shape[1:], generator=gen, dtype=torch.float64).to(x.device)
    tangent = (v / v.norm(dim=1, keepdim=True))[None]
    cell, carry = _layers64(probe)[layer - 1], []
    with torch.no_grad(), forward_ad.dual_level():
        # step 0 with the perturbed input, then the rest from its (dual) state with plain inputs: the
        # tangent of steps 1.. inputs is zero, and a dual matmul costs about 4 plain ones in torch 2.13
        first = cell(forward_ad.make_dual(x[:1], tangent), carry=carry)
        rest = cell(x[1:], carry=carry)
        parts = [forward_ad.unpack_dual(o).tangent for o in (first, rest)]
    if parts[0] is None and parts[1] is None:  # the output does not depend on the input at all
        return -math.inf
    dt = torch.cat([p if p is not None else torch.zeros_like(o) for p, o in zip(parts, (first, rest))])
    return reached_rate(dt.norm(dim=2).detach().cpu().numpy())


def lyapunov_value(probe: Probe) -> float:
    def compute():
        return layer_lyapunov(probe, 1)

    return probe.cached("lyapunov", compute)


def state_grad_rate_value(probe: Probe) -> float:
    def compute():
        x = _inputs(probe, 1)
        steps = x.shape[0] - 2
        if steps < 1:
            return math.nan
        states: list[torch.Tensor] = []
        with torch.enable_grad():
            h = _layers64(probe)[0](x, state_hook=lambda t, s: states.append(s) if t > 0 else None)
            y = h[-1]  # (B, H): layer 1's last step
            gen = torch.Generator().manual_seed(probe.settings.seed)
            c = torch.randn(y.shape, generator=gen, dtype=y.dtype).to(y.device)
            grads = torch.autograd.grad((y * c).sum(), states, materialize_grads=True, allow_unused=True)
        norms = torch.stack([grads[-1].norm(dim=1), grads[0].norm(dim=1)])  # from step T-1 back to step 1
        return _mean_log_rate(norms, steps)

    return probe.cached("state_grad_rate", compute)


#: version 2: measured from the first step the perturbation reaches (version 1 gave +inf where step 0's
#: output ignores the input)
@metric("lyapunov", higher_is_better=True, requires=REQUIRES, version="2", backward=True)
def lyapunov(probe: Probe) -> float:
    """Finite-time largest Lyapunov exponent of layer 1 along the clean trajectory: mean log growth per
    step of a step-0 perturbation (forward-mode Jacobian products) from the first step it reaches, mean
    over sequences."""
    return lyapunov_value(probe)


@metric("lyapunov_edge", higher_is_better=True, requires=REQUIRES, version="2", backward=True)
def lyapunov_edge(probe: Probe) -> float:
    """Minus |lyapunov|: closest to the edge of chaos (exponent 0) ranks first."""
    return -abs(lyapunov_value(probe))


@metric("state_grad_rate", higher_is_better=True, requires=REQUIRES, backward=True)
def state_grad_rate(probe: Probe) -> float:
    """Mean log growth per step of ||dR/dh_t|| from the last step back to step 1 over layer 1's states
    (R = <c, h_T>, c seeded N(0, 1)): negative when gradients vanish through time."""
    return state_grad_rate_value(probe)


@metric("state_grad_edge", higher_is_better=True, requires=REQUIRES, backward=True)
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
