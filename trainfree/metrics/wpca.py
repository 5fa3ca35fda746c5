"""W-PCA (Wang et al., ICLR 2025) and the attention / FFN parameter split, on every transformer space
that provides ``transformer_parts`` (NAS-Bench-BERT, LTS decoders, and any other space that names
its attention and FFN parameters and first FFN Linears).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from trainfree.metrics.base import metric
from trainfree.probe import Probe

#: W-PCA's variance threshold eta
ETA = 0.99
REQUIRES = {"parameters", "forward", "transformer_parts"}


def parts(probe: Probe) -> dict[str, list]:
    return probe.cached("transformer_parts", lambda: probe.space.transformer_parts(probe.model))


def pca_dim(samples: torch.Tensor, eta: float = ETA) -> int:
    """The fewest principal components of ``samples`` (N, D) whose explained variance exceeds ``eta`` of the
    total (as sklearn's PCA(n_components=eta) counts them); 0 for constant samples."""
    x = samples.detach().reshape(-1, samples.shape[-1]).to("cpu", torch.float64).numpy()
    x = x - x.mean(axis=0, keepdims=True)
    gram = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T  # the smaller one: same nonzero eigenvalues
    var = np.clip(np.linalg.eigvalsh(gram)[::-1], 0, None)  # decreasing; rounding can leave tiny negatives
    total = var.sum()
    if total == 0:
        return 0
    ratio = np.cumsum(var) / total
    return int(min(np.searchsorted(ratio, eta, side="right") + 1, var.size))


def ffn_pca_dims(probe: Probe) -> list[int | float]:
    """Each layer's PCA dimension of its first FFN Linear's outputs (every token a sample) in one forward
    under the probe's seed; NaN for a layer whose outputs are not finite."""
    def compute():
        outs: list[torch.Tensor] = []
        linears = parts(probe)["ffn_in"]
        handles = [m.register_forward_hook(lambda _m, _i, y: outs.append(y.detach())) for m in linears]
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[probe.device] if probe.device.type == "cuda" else []):
                torch.manual_seed(probe.settings.seed)
                probe.model(probe.inputs)
        finally:
            for h in handles:
                h.remove()
        return [pca_dim(y) if bool(torch.isfinite(y).all()) else math.nan for y in outs]

    return probe.cached("ffn_pca_dims", compute)


@metric("w_pca", higher_is_better=True, requires=REQUIRES)
def w_pca(probe: Probe) -> float:
    """W-PCA (Wang et al., ICLR 2025): the parameter count times the mean over layers of the number of
    principal components of the first FFN Linear's outputs needed for more than 99% of their variance."""
    dims = ffn_pca_dims(probe)
    n = sum(p.numel() for p in probe.model.parameters())
    return float(n * sum(dims) / len(dims)) if dims else math.nan


@metric("ffn_pca_dim", higher_is_better=True, requires=REQUIRES)
def ffn_pca_dim(probe: Probe) -> float:
    """W-PCA's PCA part alone: the mean over layers of the first FFN Linear outputs' 99%-variance dimension."""
    dims = ffn_pca_dims(probe)
    return float(sum(dims) / len(dims)) if dims else math.nan


@metric("attn_params", higher_is_better=True, requires={"parameters", "transformer_parts"}, counts_only=True)
def attn_params(probe: Probe) -> float:
    """Parameters of the attention (token-mixing) parts alone: q/k/v/output projections and their biases
    (BERT: the SA / LT / DSC op and W_o; Transformer-XL: also the relative-position projection and biases)."""
    return float(probe.param_counts()["attention"])


@metric("ffn_params", higher_is_better=True, requires={"parameters", "transformer_parts"}, counts_only=True)
def ffn_params(probe: Probe) -> float:
    """Parameters of the feed-forward Linears alone (weights and biases, every layer)."""
    return float(probe.param_counts()["ffn"])
