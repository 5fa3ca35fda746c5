"""Adaptive input embedding and adaptive softmax (Baevski & Auli 2019; Grave et al. 2017) as in
Transformer-XL, which LTS's GPT-2 and Transformer-XL models share.

Token ids are split into clusters at ``cutoffs``; cluster i embeds in ``d_embed // div_val**i``
dimensions and is projected to ``d_proj`` (with ``div_val == 1``: one table, projected only when its
width differs from ``d_proj``). The softmax ties its word weights to the embedding tables and, where
``tie_projs[i]``, its projections too; its biases, the cluster logits and untied projections are its own.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _bounds(cutoffs) -> list[tuple[int, int]]:
    starts = [0] + list(cutoffs[:-1])
    return list(zip(starts, cutoffs))


class AdaptiveEmbedding(nn.Module):
    def __init__(self, n_token: int, d_embed: int, d_proj: int, cutoffs, div_val: int):
        super().__init__()
        self.cutoffs, self.div_val, self.d_proj = tuple(cutoffs), div_val, d_proj
        self.layers = nn.ModuleList()
        self.projs = nn.ParameterList()
        if div_val == 1:
            self.layers.append(nn.Embedding(n_token, d_embed))
            if d_proj != d_embed:
                self.projs.append(nn.Parameter(torch.empty(d_proj, d_embed)))
        else:
            for i, (lo, hi) in enumerate(_bounds(self.cutoffs)):
                width = d_embed // div_val ** i
                self.layers.append(nn.Embedding(hi - lo, width))
                self.projs.append(nn.Parameter(torch.empty(d_proj, width)))

    def width(self, i: int) -> int:
        return self.layers[0 if self.div_val == 1 else i].weight.shape[1]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.div_val == 1:
            e = self.layers[0](tokens)
            return F.linear(e, self.projs[0]) if len(self.projs) else e
        out = torch.zeros(*tokens.shape, self.d_proj, dtype=self.projs[0].dtype, device=tokens.device)
        for i, (lo, hi) in enumerate(_bounds(self.cutoffs)):
            mask = (tokens >= lo) & (tokens < hi)
            if mask.any():
                out[mask] = F.linear(self.layers[i](tokens[mask] - lo), self.projs[i])
        return out


class AdaptiveSoftmax(nn.Module):
    """Log-probabilities of next tokens over the clusters, tied to an :class:`AdaptiveEmbedding`."""

    def __init__(self, embedding: AdaptiveEmbedding, tie_projs):
        super().__init__()
        self.embedding = [embedding]  # a list: tied, not a second registration of its parameters
        self.cutoffs, self.div_val = embedding.cutoffs, embedding.div_val
        n_clusters = len(self.cutoffs) - 1
        self.cluster_weight = nn.Parameter(torch.zeros(n_clusters, embedding.width(0))) if n_clusters else None
        self.cluster_bias = nn.Parameter(torch.zeros(n_clusters)) if n_clusters else None
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(hi - lo)) for lo, hi in _bounds(self.cutoffs))
        self.own_projs = nn.ParameterDict()
        for i in range(len(self.cutoffs)):
            needs = self.div_val != 1 or embedding.d_proj != embedding.width(0)
            if needs and not tie_projs[i]:
                self.own_projs[str(i)] = nn.Parameter(torch.empty(embedding.d_proj, embedding.width(i)))

    def _proj(self, i: int) -> torch.Tensor | None:
        if str(i) in self.own_projs:
            return self.own_projs[str(i)]
        projs = self.embedding[0].projs
        if not len(projs):
            return None
        return projs[0] if self.div_val == 1 else projs[i]

    def _weight(self, i: int) -> torch.Tensor:
        emb = self.embedding[0]
        if self.div_val == 1:
            lo, hi = _bounds(self.cutoffs)[i]
            return emb.layers[0].weight[lo:hi]
        return emb.layers[i].weight

    def _logits(self, h: torch.Tensor, i: int, extra_w=None, extra_b=None) -> torch.Tensor:
        proj = self._proj(i)
        x = h @ proj if proj is not None else h  # (N, d_proj) -> (N, width_i)
        w, b = self._weight(i), self.biases[i]
        if extra_w is not None:
            w, b = torch.cat([w, extra_w]), torch.cat([b, extra_b])
        return F.linear(x, w, b)

    def log_prob_sum(self, h: torch.Tensor) -> torch.Tensor:
        """Sum over positions of every cluster's logits (synflow's R); no normalisation."""
        total = self._logits(h, 0, self.cluster_weight, self.cluster_bias).sum()
        for i in range(1, len(self.cutoffs)):
            total = total + self._logits(h, i).sum()
        return total

    def nll(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of each target (N,) given hidden states h (N, d_proj)."""
        head = F.log_softmax(self._logits(h, 0, self.cluster_weight, self.cluster_bias), dim=-1)
        bounds = _bounds(self.cutoffs)
        out = torch.zeros_like(targets, dtype=head.dtype)
        first = bounds[0][1]
        in_head = targets < first
        out[in_head] = -head[in_head].gather(1, targets[in_head, None]).squeeze(1)
        for i in range(1, len(bounds)):
            lo, hi = bounds[i]
            mask = (targets >= lo) & (targets < hi)
            if mask.any():
                tail = F.log_softmax(self._logits(h[mask], i), dim=-1)
                out[mask] = -(head[mask, first + i - 1] + tail.gather(1, (targets[mask] - lo)[:, None]).squeeze(1))
        return out
