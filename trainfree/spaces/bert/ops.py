"""NAS-Bench-BERT token-mixing operations (docs/metrics.md), on (B, T, H) tensors.

SA: scaled dot-product (SDP) or weighted multiplicative (WMA) multi-head attention; LT: a linear
map followed by a 2-D DFT (real part) or DCT-II per head; DSC: ConvBERT-style mixed attention (half
the width self-attention, half dynamic convolution). Softmaxes are modules so hooks can see them.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, t, w = x.shape
    return x.view(b, t, heads, w // heads).transpose(1, 2)  # (B, heads, T, d)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class SelfAttention(nn.Module):
    """SDP: softmax(Q K^T / sqrt(d)) V per head. WMA: Q is further mapped by W_w (no bias)."""

    def __init__(self, hidden: int, heads: int, weighted: bool, dropout: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.weight = nn.Linear(hidden, hidden, bias=False) if weighted else None
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.query(x)
        if self.weight is not None:
            q = self.weight(q)
        q, k, v = _split(q, self.heads), _split(self.key(x), self.heads), _split(self.value(x), self.heads)
        probs = self.dropout(self.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])))
        return _merge(probs @ v)


def dct_matrix(n: int, device=None, dtype=None) -> torch.Tensor:
    """Unnormalised DCT-II: Y_k = 2 sum_j z_j cos(pi k (2j + 1) / (2n)); as a matrix M with Y = M z."""
    k = torch.arange(n, device=device, dtype=torch.float64)[:, None]
    j = torch.arange(n, device=device, dtype=torch.float64)[None, :]
    return (2 * torch.cos(math.pi * k * (2 * j + 1) / (2 * n))).to(dtype or torch.float32)


class LinearTransform(nn.Module):
    """Z = affine(X) per head, then Re(FFT_2(Z)) (DFT) or the 2-D DCT-II (DCT) over (T, d) of each head.

    The paper's model also computed a softmax over the transformed tensor that nothing used; it is kept
    (as ``self.softmax``, output discarded) because the head-softmax-confidence metric hooks it.
    """

    def __init__(self, hidden: int, heads: int, kind: str):
        super().__init__()
        self.heads, self.kind = heads, kind
        self.dense = nn.Linear(hidden, hidden)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = _split(self.dense(x), self.heads)  # (B, h, T, d)
        if self.kind == "DFT":
            y = torch.fft.fft2(z.float()).real.to(z.dtype)
        else:
            t, d = z.shape[-2:]
            y = dct_matrix(t, z.device, z.dtype) @ z @ dct_matrix(d, z.device, z.dtype).t()
        self.softmax(y)  # unused, as in the paper's model; only hooks see it
        return _merge(y)


class MixedAttention(nn.Module):
    """ConvBERT mixed attention: n = max(1, heads // 2) heads of size hidden / heads self-attend, and as
    many dynamic-convolution heads whose kernels come from softmax(W (sepconv(X) * Q))."""

    def __init__(self, hidden: int, heads: int, kernel: int, dropout: float):
        super().__init__()
        self.n = max(1, heads // 2)
        self.d = hidden // heads
        width = self.n * self.d
        self.kernel = kernel
        self.query, self.key, self.value = (nn.Linear(hidden, width) for _ in range(3))
        self.depthwise = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden, bias=False)
        self.pointwise = nn.Conv1d(hidden, width, 1, bias=False)
        self.conv_bias = nn.Parameter(torch.zeros(width))
        self.kernel_layer = nn.Linear(width, self.n * kernel)
        self.conv_out = nn.Linear(hidden, width)
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.query(x)
        qh, kh, vh = _split(q, self.n), _split(self.key(x), self.n), _split(self.value(x), self.n)
        probs = self.dropout(self.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(self.d)))
        attn = _merge(probs @ vh)  # (B, T, n*d)
        s = self.pointwise(self.depthwise(x.transpose(1, 2))).transpose(1, 2) + self.conv_bias
        kernels = torch.softmax(self.kernel_layer(s * q).view(b, t, self.n, self.kernel), dim=-1)
        o = self.conv_out(x).transpose(1, 2)  # (B, n*d, T)
        pad = (self.kernel - 1) // 2
        windows = nn.functional.pad(o, (pad, pad)).unfold(2, self.kernel, 1)  # (B, n*d, T, k)
        windows = windows.permute(0, 2, 1, 3).reshape(b, t, self.n, self.d, self.kernel)
        conv = (windows * kernels[:, :, :, None, :]).sum(-1).reshape(b, t, self.n * self.d)
        return torch.cat([attn, conv], dim=-1)
