"""GPT-2 and Transformer-XL decoders with heterogeneous layers, as LTS configures them.

GPT-2: learned absolute positions (``tgt_len`` of them), pre-LN blocks (causal self-attention with
biases, GELU FFN) and a final LayerNorm. Transformer-XL: embeddings scaled by sqrt(d_model),
sinusoidal relative positions with per-layer ``r_w_bias`` / ``r_r_bias``, bias-free attention
projections, ReLU FFN, post-LN (or pre-LN when configured); the memory is left empty for scoring.
Both use the adaptive embedding and softmax of :mod:`adaptive`. Models are built in eval mode
(dropout off), so a forward is a deterministic function of the weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainfree.errors import UnknownName
from trainfree.spaces.decoder.adaptive import AdaptiveEmbedding, AdaptiveSoftmax
from trainfree.spaces.decoder.genotype import DecoderGenotype


@dataclass(frozen=True)
class DecoderSize:
    scale: int = 1  # divide d_model, d_inner and d_embed by this (tiny models for tests)
    max_vocab: int | None = None  # cap n_token (cutoffs beyond it dropped); None = the genotype's


#: "paper" builds the genotype as configured; "tiny" shrinks widths 16x and the vocabulary for tests
SIZES = {"paper": DecoderSize(), "tiny": DecoderSize(scale=16, max_vocab=40000)}


def size_for(size: str) -> DecoderSize:
    if size not in SIZES:
        raise UnknownName(f"unknown decoder model size {size!r}; choose from: {', '.join(SIZES)}")
    return SIZES[size]


def shrink(g: DecoderGenotype, size: DecoderSize) -> DecoderGenotype:
    if size.scale == 1 and size.max_vocab is None:
        return g
    def w(x, heads=1):
        return max(heads, x // size.scale // heads * heads)
    d_model = w(g.d_model, math.lcm(*g.n_head))
    n_token = min(g.n_token, size.max_vocab or g.n_token)
    cutoffs = tuple(c for c in g.cutoffs if c < n_token) + (n_token,)
    return DecoderGenotype(g.family, g.n_layer, d_model, g.n_head, tuple(w(x) for x in g.d_inner),
                           max(g.div_val ** (len(cutoffs) - 1), w(g.d_embed)), g.div_val, n_token, cutoffs,
                           g.tie_projs[: len(cutoffs)], g.tie_weight, g.tgt_len, g.pre_lnorm)


class GPT2Block(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_inner: int):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn_qkv = nn.Linear(d_model, 3 * d_model)
        self.attn_out = nn.Linear(d_model, d_model)
        self.ln_2 = nn.LayerNorm(d_model)
        self.ffn_in = nn.Linear(d_model, d_inner)
        self.act = nn.GELU(approximate="tanh")
        self.ffn_out = nn.Linear(d_inner, d_model)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.attn_qkv(x).view(b, t, 3, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        # explicit softmax attention, not SDPA: GraSP differentiates twice and CPU flash attention cannot
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.n_head)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        y = scores.masked_fill(causal, float("-inf")).softmax(dim=-1) @ v
        return self.attn_out(y.transpose(1, 2).reshape(b, t, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln_1(x))
        return x + self.ffn_out(self.act(self.ffn_in(self.ln_2(x))))


def _rel_shift(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, K) scores against relative distances K-1..0 -> aligned to absolute key positions."""
    b, h, t, k = x.shape
    padded = F.pad(x, (1, 0))  # a zero column on the left
    return padded.view(b, h, k + 1, t)[:, :, 1:].view(b, h, t, k)


class TransXLLayer(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_inner: int, pre_lnorm: bool):
        super().__init__()
        self.n_head, self.d_head, self.pre_lnorm = n_head, d_model // n_head, pre_lnorm
        self.attn_qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.attn_r = nn.Linear(d_model, d_model, bias=False)
        self.attn_out = nn.Linear(d_model, d_model, bias=False)
        self.attn_norm = nn.LayerNorm(d_model)
        self.r_w_bias = nn.Parameter(torch.zeros(n_head, self.d_head))
        self.r_r_bias = nn.Parameter(torch.zeros(n_head, self.d_head))
        self.ffn_in = nn.Linear(d_model, d_inner)
        self.act = nn.ReLU()
        self.ffn_out = nn.Linear(d_inner, d_model)
        self.ffn_norm = nn.LayerNorm(d_model)

    def attention(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h, dh = self.n_head, self.d_head
        q, k, v = self.attn_qkv(x).view(b, t, 3, h, dh).unbind(2)
        r = self.attn_r(pos).view(t, h, dh)
        ac = torch.einsum("bihd,bjhd->bhij", q + self.r_w_bias, k)
        bd = _rel_shift(torch.einsum("bihd,jhd->bhij", q + self.r_r_bias, r))
        scores = (ac + bd) / math.sqrt(dh)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        prob = scores.masked_fill(causal, float("-inf")).softmax(dim=-1)
        return self.attn_out(torch.einsum("bhij,bjhd->bihd", prob, v).reshape(b, t, d))

    def forward(self, x: torch.Tensor, pos: torch.Tensor, residuals: list | None = None) -> torch.Tensor:
        if self.pre_lnorm:
            x = x + self.attention(self.attn_norm(x), pos)
            x = x + self.ffn_out(self.act(self.ffn_in(self.ffn_norm(x))))
            if residuals is not None:
                residuals.append(x)
            return x
        x = self.attn_norm(x + self.attention(x, pos))
        x = x + self.ffn_out(self.act(self.ffn_in(x)))
        if residuals is not None:
            residuals.append(x)  # before the LayerNorm, whose outputs sum to zero over units
        return self.ffn_norm(x)


class Decoder(nn.Module):
    """tokens (B, T) -> hidden states (B, T, d_model); ``nll`` gives next-token losses."""

    def __init__(self, g: DecoderGenotype):
        super().__init__()
        self.genotype = g
        self.word = AdaptiveEmbedding(g.n_token, g.d_embed, g.d_model, g.cutoffs, g.div_val)
        self.gpt2 = g.family == "GPT2"
        if self.gpt2:
            self.position = nn.Embedding(g.tgt_len, g.d_model)
            self.layers = nn.ModuleList(GPT2Block(g.d_model, h, di) for h, di in zip(g.n_head, g.d_inner))
            self.final_norm = nn.LayerNorm(g.d_model)
        else:
            self.layers = nn.ModuleList(TransXLLayer(g.d_model, h, di, g.pre_lnorm)
                                        for h, di in zip(g.n_head, g.d_inner))
        self.softmax = AdaptiveSoftmax(self.word, g.tie_projs)

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The adaptive embedding (tables and projections), GPT-2's position table and the softmax's own
        parameters: what LTS's "non-embedding" count leaves out."""
        params = list(self.word.parameters()) + list(self.softmax.parameters())
        return params + ([self.position.weight] if self.gpt2 else [])

    def _positions(self, t: int, dtype, device) -> torch.Tensor:
        """Sinusoidal embeddings of the relative distances t-1 .. 0 (Transformer-XL)."""
        d = self.genotype.d_model
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, device=device, dtype=torch.float32) / d))
        angles = torch.arange(t - 1, -1, -1, device=device, dtype=torch.float32)[:, None] * inv[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        e = self.word(tokens)
        if self.gpt2:
            if tokens.shape[1] > self.position.num_embeddings:
                raise ValueError(f"sequence of {tokens.shape[1]} tokens exceeds the model's {self.position.num_embeddings} "
                                 f"positions (tgt_len)")
            return e + self.position(torch.arange(tokens.shape[1], device=tokens.device))[None]
        return e * math.sqrt(self.genotype.d_model)

    def layer_outputs(self, tokens: torch.Tensor | None = None, embedded: torch.Tensor | None = None,
                      residuals: list | None = None) -> list[torch.Tensor]:
        """Each block's output (B, T, d_model); ``residuals`` collects each block's residual stream before
        any LayerNorm (GPT-2: the block output itself; Transformer-XL: the sum its last LayerNorm normalises)."""
        h = self.embed(tokens) if embedded is None else embedded
        pos = None if self.gpt2 else self._positions(h.shape[1], h.dtype, h.device)
        outs = []
        for layer in self.layers:
            h = layer(h) if self.gpt2 else layer(h, pos, residuals)
            if self.gpt2 and residuals is not None:
                residuals.append(h)
            outs.append(h)
        if self.gpt2:
            outs[-1] = self.final_norm(outs[-1])
        return outs

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.layer_outputs(tokens)[-1]

    # The proxy protocol (trainfree.metrics.proxies): a loss, its batch axis, and synflow's output.
    batch_dim = 0

    def proxy_loss(self, tokens: torch.Tensor, targets: torch.Tensor, activation_hook=None) -> torch.Tensor:
        """Mean next-token negative log-likelihood under the adaptive softmax; ``activation_hook(key, a)``
        sees every FFN activation output (B, T, d_inner), keyed by layer."""
        handles = []
        if activation_hook is not None:
            handles = [layer.act.register_forward_hook(lambda _m, _i, a, i=i: activation_hook(str(i), a))
                       for i, layer in enumerate(self.layers)]
        try:
            h = self(tokens)
        finally:
            for handle in handles:
                handle.remove()
        return self.softmax.nll(h.reshape(-1, h.shape[-1]), targets.reshape(-1)).mean()

    def synflow_output(self, tokens: torch.Tensor) -> torch.Tensor:
        """The adaptive softmax's logits for an all-ones input to the first layer (batch 1)."""
        p = self.word.layers[0].weight
        h = self.layer_outputs(embedded=torch.ones(1, tokens.shape[1], self.genotype.d_model, dtype=p.dtype,
                                                   device=p.device))[-1]
        return self.softmax.log_prob_sum(h.reshape(-1, h.shape[-1]))


#: the initialisations ``build_decoder`` knows: "lts" is the LTS code's (the default), "flat" is every
#: weight and projection N(0, 0.02) for both families (trainfree before decoder model version 2)
INITS = ("lts", "flat")


def _init(model: "Decoder", scheme: str = "lts", std: float = 0.02) -> None:
    """N(0, 0.02) for weights, tables, projections and the relative-position biases; zeros for biases and
    cluster logits; LayerNorms 1 / 0. Under "lts", GPT-2 models follow LTS's GPT-2 code (archai's
    ``GPT2PreTrainedModel._init_weights``): each block's attention-output and FFN-output weights
    N(0, 0.02 / sqrt(2 n_layer)), the adaptive projections N(0, 0.01)."""
    if scheme not in INITS:
        raise UnknownName(f"unknown decoder init {scheme!r}; choose from: {', '.join(INITS)}")
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, TransXLLayer):
            nn.init.normal_(module.r_w_bias, 0.0, std)
            nn.init.normal_(module.r_r_bias, 0.0, std)
    gpt2_lts = scheme == "lts" and model.gpt2
    for p in list(model.word.projs) + list(model.softmax.own_projs.values()):
        nn.init.normal_(p, 0.0, 0.01 if gpt2_lts else std)
    if gpt2_lts:  # the residual-path scaling of GPT-2: two residual branches per block
        residual_std = std / math.sqrt(2 * len(model.layers))
        for block in model.layers:
            nn.init.normal_(block.attn_out.weight, 0.0, residual_std)
            nn.init.normal_(block.ffn_out.weight, 0.0, residual_std)
    # the softmax's biases and cluster parameters are created as zeros


def build_decoder(g: DecoderGenotype, size: str = "paper", seed: int = 0, device: str | torch.device = "cpu",
                  init: str = "lts") -> Decoder:
    """Build under ``seed`` (global RNG forked) in eval mode; ``device='meta'`` builds shapes only.
    ``init`` names the initialisation (:data:`INITS`)."""
    g = shrink(g, size_for(size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if str(device) == "meta":
            with torch.device("meta"):
                return Decoder(g).eval()
        model = Decoder(g)
        _init(model, init)
    return model.to(device).eval()
