"""Eigenvalue scores shared by the covariance-style metrics (float64)."""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch

#: the paper's regulariser in log(lambda + k) + 1 / (lambda + k)
EIG_K = 1e-5


def correlation_rows(samples: torch.Tensor) -> torch.Tensor | None:
    """Pearson correlation between the columns of ``samples`` (N, D) -> (D, D), in float64.

    Returns None when a column is constant: its correlation is undefined.
    """
    low, high = torch.aminmax(samples.detach(), dim=0)
    if not bool((high > low).all()):  # a constant column (or NaN): its mean need not round back to it
        return None
    x = samples.detach().to("cpu", torch.float64).numpy()
    with np.errstate(invalid="ignore", over="ignore"):  # an exploded state (inf) ends as NaN, reported as such
        x -= x.mean(axis=0, keepdims=True)  # in place: one float64 copy of the samples, not two
        cov = x.T @ x  # numpy runs a.T @ a as a symmetric rank-k update: half the work of a general matmul
        std = np.sqrt(np.diag(cov))
        if not np.all(std > 0):
            return None
        corr = cov / std[:, None] / std[None, :]
    return torch.from_numpy((corr + corr.T) / 2)  # exact symmetry for eigvalsh


def eig_score(corr: torch.Tensor | None, k: float = EIG_K) -> float:
    """-sum_j [log(lambda_j + k) + 1 / (lambda_j + k)] over the eigenvalues of a correlation matrix.

    NaN when the correlation is undefined (a constant unit), so the caller records a non-finite score.

    The sums need no eigenvalues: sum log(lambda + k) = log det(A) and sum 1 / (lambda + k) = tr(A^-1)
    for A = C + kI, both read off A's Cholesky factor L (2 sum log L_ii, and ||L^-1||_F^2) at a third
    of a symmetric eigensolver's cost. Where A is not positive definite the eigenvalues are used, so
    a lambda <= -k gives NaN from the logarithm, as the formula does.
    """
    if corr is None or not bool(torch.isfinite(corr).all()):
        return math.nan
    a = corr.detach().to("cpu", torch.float64).numpy() + k * np.eye(corr.shape[0])
    try:
        chol = scipy.linalg.cholesky(a, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        lam = torch.linalg.eigvalsh(corr.detach().to("cpu", torch.float64))
        return float(-(torch.log(lam + k) + 1.0 / (lam + k)).sum())
    inv, info = scipy.linalg.lapack.dtrtri(chol, lower=1)
    if info != 0:  # a zero pivot cannot follow a successful factorisation; kept as a guard
        return math.nan
    return float(-(2.0 * np.log(np.diag(chol)).sum() + np.square(inv).sum()))


def hidden_covariance(states: torch.Tensor) -> float:
    """Eigen score of the unit x unit correlation of ``states`` (..., units) over all their samples
    (every sequence and step): the paper's hidden covariance of one layer."""
    return eig_score(correlation_rows(states.reshape(-1, states.shape[-1])))


def eig_scores(samples: torch.Tensor, k: float = EIG_K) -> list[float]:
    """``eig_score(correlation_rows(s))`` for each ``s`` of ``samples`` (B, N, D), all at once on their device.

    For a GPU, where B small float64 products and factorisations cost what one does: the same
    formula in torch (float64 throughout), so the values agree with the per-item path to float64
    rounding, not bit for bit. NaN where a unit is constant, a value is not finite, or (through the
    eigenvalues, where the Cholesky factorisation fails) an eigenvalue is at most -k.
    """
    if samples.shape[0] == 0:
        return []
    x = samples.detach().to(torch.float64)
    varies = x.amax(dim=1) > x.amin(dim=1)  # a constant unit, whatever the rounding of its mean (NaN: False)
    x = x - x.mean(dim=1, keepdim=True)
    cov = x.transpose(1, 2) @ x
    del x
    std = cov.diagonal(dim1=1, dim2=2).sqrt()
    valid = (std > 0).all(dim=1) & varies.all(dim=1)  # False for NaN too
    corr = cov / std[:, :, None] / std[:, None, :]
    del cov
    corr = (corr + corr.transpose(1, 2)) / 2
    valid &= torch.isfinite(corr).all(dim=2).all(dim=1)
    return eig_scores_of(corr, valid, k)


def eig_scores_of(corr: torch.Tensor, valid: torch.Tensor, k: float = EIG_K) -> list[float]:
    """``eig_score`` of each correlation matrix of ``corr`` (B, D, D) where ``valid``, NaN elsewhere."""
    eye = torch.eye(corr.shape[1], dtype=corr.dtype, device=corr.device)
    a = torch.where(valid[:, None, None], corr, eye) + k * eye  # an invalid item is factored as I, then dropped
    chol, info = torch.linalg.cholesky_ex(a)
    inv = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)
    scores = -(2.0 * torch.log(chol.diagonal(dim1=1, dim2=2)).sum(dim=1) + inv.square().sum(dim=(1, 2)))
    out = scores.cpu().tolist()
    for i in (info != 0).nonzero().flatten().tolist():  # not positive definite: the eigenvalues decide
        lam = torch.linalg.eigvalsh(corr[i])
        out[i] = float(-(torch.log(lam + k) + 1.0 / (lam + k)).sum())
    return [v if ok else math.nan for v, ok in zip(out, valid.cpu().tolist())]


def binary_code_kernel(codes: torch.Tensor) -> torch.Tensor:
    """K = c c^T + (1 - c)(1 - c)^T for boolean codes c (rows, N): agreements between rows, in float64.

    Whole-number counts, exact in float64, so kernels summed block by block equal the kernel of the
    concatenated codes, in any order. Below 2^24 columns every partial sum is a whole number that
    float32 holds exactly, so the product runs in float32 (half the memory, twice the speed) and gives
    the same numbers."""
    c = codes.to(torch.float32 if codes.shape[1] < 2 ** 24 else torch.float64)
    ones = c.sum(dim=1).to(torch.float64)
    # (1-c)(1-c)^T = N - r_i - r_j + (c c^T)_ij, with r the row sums
    return 2 * (c @ c.t()).to(torch.float64) - ones[:, None] - ones[None, :] + c.shape[1]
