"""ELECTRA-style encoder for NAS-Bench-BERT genotypes (docs/metrics.md), nanoGPT-style: one file, a
config with presets, explicit initialisation.

Modes:
- ``paper-metric-model``: what the paper computed its metrics on: hidden 256 and FFN width 1024 for
  every architecture (the genotype's hidden size and FFN dimension are ignored), embedding 128.
- ``as-specified``: the genotype's own hidden size and per-layer FFN dimension.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from trainfree.errors import UnknownName
from trainfree.spaces.bert.genotype import BertGenotype, Layer
from trainfree.spaces.bert.ops import LinearTransform, MixedAttention, SelfAttention

MODES = ("paper-metric-model", "as-specified")


@dataclass(frozen=True)
class BertSize:
    vocab: int = 30522
    embedding: int = 128
    max_positions: int = 512
    type_vocab: int = 2
    hidden: int | None = None  # None: the genotype's
    ffn: int | None = None  # None: each layer's feed_forward_dimension
    dropout: float = 0.1
    ln_eps: float = 1e-12
    init_std: float = 0.02
    mask_token: int = 103  # [MASK] in the uncased WordPiece vocabulary


#: "paper" is the paper-metric-model; "as-specified" the genotype's own sizes; "tiny" for tests.
SIZES = {
    "paper": BertSize(hidden=256, ffn=1024),
    "as-specified": BertSize(),
    "tiny": BertSize(embedding=16, max_positions=64, hidden=32, ffn=64),
}


def size_for(size: str, mode: str = "paper-metric-model") -> BertSize:
    """The config of a size preset; ``mode='as-specified'`` turns the paper preset into as-specified."""
    if mode not in MODES:
        raise UnknownName(f"unknown BERT model mode {mode!r}; choose from: {', '.join(MODES)}")
    if size not in SIZES:
        raise UnknownName(f"unknown BERT model size {size!r}; choose from: {', '.join(SIZES)}")
    return SIZES["as-specified"] if mode == "as-specified" and size == "paper" else SIZES[size]


class EncoderLayer(nn.Module):
    """Post-LN layer. SA/DSC: u = LN(x + Drop(W_o Op(x))); LT: u = Op(x) (no projection, residual or LN).
    FFN: v = GELU(W_in u), (nff - 1) x v = GELU(W_k v), out = LN(u + Drop(W_out v))."""

    def __init__(self, spec: Layer, hidden: int, ffn: int, cfg: BertSize):
        super().__init__()
        self.spec = spec
        op, param, heads = spec.operation_type, spec.operation_parameter, spec.num_operation_heads
        if op == "SA":
            self.op = SelfAttention(hidden, heads, weighted=param == "WMA", dropout=cfg.dropout)
        elif op == "LT":
            self.op = LinearTransform(hidden, heads, kind=param)
        else:
            self.op = MixedAttention(hidden, heads, kernel=int(param), dropout=cfg.dropout)
        self.mixes = op != "LT"
        if self.mixes:
            self.output = nn.Linear(hidden, hidden)
            self.norm1 = nn.LayerNorm(hidden, eps=cfg.ln_eps)
        self.ffn_in = nn.Linear(hidden, ffn)
        self.ffn_hidden = nn.ModuleList(nn.Linear(ffn, ffn) for _ in range(spec.num_feed_forward - 1))
        self.ffn_out = nn.Linear(ffn, hidden)
        self.act = nn.GELU()
        self.norm2 = nn.LayerNorm(hidden, eps=cfg.ln_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.mix(x)
        return self.norm2(u + self.dropout(self.ffn_out(self.ffn_activations(u))))

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """The token-mixing half: u."""
        return self.norm1(x + self.dropout(self.output(self.op(x)))) if self.mixes else self.op(x)

    def ffn_activations(self, u: torch.Tensor) -> torch.Tensor:
        """The FFN's last GELU output v (no dropout inside: it draws nothing from the RNG)."""
        v = self.act(self.ffn_in(u))
        for layer in self.ffn_hidden:
            v = self.act(layer(v))
        return v


class BertEncoder(nn.Module):
    """Embeddings (word + type + position -> LN -> dropout -> projection to hidden) and the layers.
    No attention mask reaches the layers, as in the paper's model."""

    def __init__(self, genotype: BertGenotype, cfg: BertSize):
        super().__init__()
        hidden = cfg.hidden or genotype.hidden_size
        self.word = nn.Embedding(cfg.vocab, cfg.embedding)
        self.token_type = nn.Embedding(cfg.type_vocab, cfg.embedding)
        self.position = nn.Embedding(cfg.max_positions, cfg.embedding)
        self.embed_norm = nn.LayerNorm(cfg.embedding, eps=cfg.ln_eps)
        self.project = nn.Linear(cfg.embedding, hidden) if cfg.embedding != hidden else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(EncoderLayer(spec, hidden, cfg.ffn or spec.feed_forward_dimension, cfg)
                                    for spec in genotype.layers)
        self.cfg = cfg

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The token, type and position tables (what "non-embedding" parameters leave out)."""
        return [self.word.weight, self.token_type.weight, self.position.weight]

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.word(tokens) + self.token_type(torch.zeros_like(tokens)) + self.position(positions)[None]
        h = self.dropout(self.embed_norm(h))
        return self.project(h) if self.project is not None else h

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> last hidden state (B, T, hidden)."""
        return self.encode(self.embed(tokens))

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h = layer(h)
        return h

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """A parameter-free masked-LM head: back through the projection's transpose, then the tied word
        table (the metric model has no trained head; adding one would change ``params``)."""
        if self.project is not None:
            h = h @ self.project.weight
        return h @ self.word.weight.t()

    # The proxy protocol (trainfree.metrics.proxies): a loss, its batch axis, and synflow's output.
    batch_dim = 0

    def proxy_loss(self, tokens: torch.Tensor, labels: torch.Tensor, activation_hook=None) -> torch.Tensor:
        """Masked-token cross-entropy: positions with a label (not -100) are fed as [MASK] and predicted.
        ``activation_hook(key, a)`` sees every FFN GELU output (B, T, F), keyed by layer and call."""
        handles = []
        if activation_hook is not None:
            for i, layer in enumerate(self.layers):
                calls = iter(range(1 + len(layer.ffn_hidden)))
                handles.append(layer.act.register_forward_hook(
                    lambda _m, _i, a, i=i, calls=calls: activation_hook(f"{i}:{next(calls)}", a)))
        try:
            masked = tokens.masked_fill(labels != -100, self.cfg.mask_token)
            logits = self.logits(self(masked))
        finally:
            for handle in handles:
                handle.remove()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    def synflow_output(self, tokens: torch.Tensor) -> torch.Tensor:
        """Head logits for an all-ones input to the first layer (batch 1, the batch's length)."""
        p = self.word.weight
        width = self.project.weight.shape[0] if self.project is not None else p.shape[1]
        return self.logits(self.encode(torch.ones(1, tokens.shape[1], width, dtype=p.dtype, device=p.device)))


def _init(module: nn.Module, std: float) -> None:
    # ELECTRA's init: N(0, 0.02) for Linear and Embedding weights, zero biases, LayerNorm 1 / 0
    if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv1d)):
        nn.init.normal_(module.weight, 0.0, std)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def build_bert(genotype: BertGenotype, size: str = "paper", mode: str = "paper-metric-model", seed: int = 0,
               device: str | torch.device = "cpu") -> BertEncoder:
    """Build under ``seed`` (global RNG forked, not disturbed). ``device='meta'`` builds shapes only."""
    cfg = size_for(size, mode)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if str(device) == "meta":
            with torch.device("meta"):
                return BertEncoder(genotype, cfg)
        model = BertEncoder(genotype, cfg)
        model.apply(lambda m: _init(m, cfg.init_std))
    return model.to(device)
