"""Jacobian covariance and cosine (Mellor et al. 2021; Serianni & Kalita 2023) and their noise variants.

J = dS/d(embedding), S = sum of the last layer's outputs, one row vec(J[:, b, :]) per sequence b.
Noisy variants feed e~ = e + a * Var_batch(e) * eps past the lookup, with one eps for every a.
"""
from __future__ import annotations

import torch

from trainfree.metrics.base import metric
from trainfree.probe import Probe
from trainfree.linalg import correlation_rows, eig_score

REQUIRES = {"recurrent_cell"}  # the NAS-Bench-NLP model's own passes (the space's ones_pass, noisy_jacobian)
#: the noise amplitudes of the small, large and more noise variants (the paper's 0.1, 10, 100)
NOISE_AMPLITUDES = (0.1, 10.0, 100.0)


def _rows(jac: torch.Tensor) -> torch.Tensor:
    return jac.permute(1, 0, 2).reshape(jac.shape[1], -1)  # (B, T*E)


def jacobian_covariance(jac: torch.Tensor) -> float:
    """Eigen score of the B x B correlation between the sequences' Jacobian rows."""
    return eig_score(correlation_rows(_rows(jac).t()))


def jacobian_cosine(jac: torch.Tensor) -> float:
    """1 - sum_{i != j} |cos(J_i, J_j)|^(1/20) / (2 (N^2 - N)); near 0.5 when the rows are parallel."""
    rows = _rows(jac).double()
    rows = rows / rows.norm(dim=1, keepdim=True)
    cos = rows @ rows.t()
    cos.fill_diagonal_(0)
    n = cos.shape[0]
    return float(1 - cos.abs().pow(1 / 20).sum() / (2 * (n * n - n)))


def _clean(probe: Probe, score) -> float:
    return probe.cached(("jac_score", score.__name__, None), lambda: score(probe.space.ones_pass(probe).jacobian))


def _noisy(probe: Probe, score, amplitude: float) -> float:
    return probe.cached(("jac_score", score.__name__, amplitude), lambda: score(probe.space.noisy_jacobian(probe, amplitude)))


@metric("jacob_cov", higher_is_better=True, requires=REQUIRES, backward=True)
def jacob_cov(probe: Probe) -> float:
    """Jacobian covariance (Mellor et al.): eigen score of the 50 x 50 correlation of per-sequence Jacobians."""
    return _clean(probe, jacobian_covariance)


@metric("jacob_cosine", higher_is_better=True, requires=REQUIRES, backward=True, published_column="Jacobian Cosine")
def jacob_cosine(probe: Probe) -> float:
    """Jacobian cosine: 1 - mean |cos|^(1/20) over pairs of per-sequence Jacobians (off-diagonal, halved)."""
    return _clean(probe, jacobian_cosine)


def _register_noise(score, base: str, higher: dict, published: dict) -> None:
    kind = "covariance" if score is jacobian_covariance else "cosine"
    for label, amplitude in (("small", 0.1), ("large", 10.0)):
        def fn(probe: Probe, amplitude=amplitude) -> float:
            return 1 - abs(_clean(probe, score) - _noisy(probe, score, amplitude))

        fn.__doc__ = f"1 - |clean - noisy| Jacobian {kind}, noise amplitude {amplitude:g} (variance-scaled)."
        col, sign = published.get(label, (None, 1))
        metric(f"{base}_{label}_noise", higher_is_better=higher[label], requires=REQUIRES, backward=True,
               published_column=col, published_sign=sign)(fn)

    def more(probe: Probe) -> float:
        value = _clean(probe, score)
        for amplitude in NOISE_AMPLITUDES:
            value *= _noisy(probe, score, amplitude)
        return value

    more.__doc__ = f"Product of the clean and the 0.1 / 10 / 100-noise Jacobian {kind} scores ('more noised')."
    col, sign = published.get("more", (None, 1))
    metric(f"{base}_more_noise", higher_is_better=higher["more"], requires=REQUIRES, backward=True,
           published_column=col, published_sign=sign)(more)


# Directions are those the paper found on NAS-Bench-NLP PTB (docs/metrics.md); the released CSV stores
# the large-noise covariance negated (|j - j_10| - 1), hence its sign -1.
_register_noise(jacobian_covariance, "jacob_cov",
                higher={"small": True, "large": True, "more": False},
                published={"large": ("Large Noise Jacobian", -1), "more": ("More Noised Jacobian", 1)})
_register_noise(jacobian_cosine, "jacob_cosine",
                higher={"small": False, "large": False, "more": True},
                published={"large": ("Large Noise Jacobian Cosine", 1), "more": ("More Noised Jacobian Cosine", 1)})
