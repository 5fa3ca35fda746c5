"""The NAS-Bench-NLP language model (AWD-LSTM style wrapper around recipe cells).

Embedding (vocab x emsize) -> recurrent layers of width nhid, the last one emsize wide because the
decoder is tied to the embedding. Dropouts are omitted: metrics run the model in eval mode, where
the benchmark's embedding, locked and weight dropouts are all identity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from trainfree.errors import UnknownName
from trainfree.spaces.nasbench_nlp.cell import RecipeRNN
from trainfree.spaces.nasbench_nlp.draws import UniformStream, stream
from trainfree.spaces.nasbench_nlp.recipe import Recipe


@dataclass(frozen=True)
class LMSize:
    emsize: int
    nhid: int
    nlayers: int


#: "paper" is the size every NAS-Bench-NLP architecture was trained at; "tiny" is for tests.
SIZES = {
    "paper": LMSize(emsize=400, nhid=600, nlayers=3),
    "small": LMSize(emsize=128, nhid=192, nlayers=3),
    "tiny": LMSize(emsize=16, nhid=24, nlayers=3),
}


def get_size(size: str | LMSize) -> LMSize:
    if isinstance(size, LMSize):
        return size
    if size not in SIZES:
        raise UnknownName(f"unknown model size {size!r}; choose from: {', '.join(SIZES)}")
    return SIZES[size]


class RecipeLM(nn.Module):
    """Embedding, ``nlayers`` recipe layers, decoder tied to the embedding.

    ``forward`` returns the last layer's states (T, B, emsize), as NAS-Bench-NLP's model does;
    ``logits`` applies the tied decoder for metrics that need a next-token loss.
    """

    def __init__(self, recipe: Recipe, vocab_size: int, size: LMSize, init: bool = True):
        """``init`` draws the weights from torch's global generator in the benchmark's order; without
        it the weights are left for ``fill_from`` to set."""
        super().__init__()
        self.recipe = recipe
        self.size = size
        # with init: draws N(0, 1), as the benchmark did (overwritten later, but it advances the generator)
        weight = None if init else torch.empty(vocab_size, size.emsize)
        self.encoder = nn.Embedding(vocab_size, size.emsize, _weight=weight)
        widths = [size.emsize] + [size.nhid] * (size.nlayers - 1) + [size.emsize]
        self.layers = nn.ModuleList(RecipeRNN(recipe, widths[i], widths[i + 1], init) for i in range(size.nlayers))
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))
        if not init:
            return
        # The benchmark built an untied nhid-wide decoder first and then tied it; replay its draws.
        nn.init.kaiming_uniform_(torch.empty(vocab_size, size.nhid), a=math.sqrt(5))
        nn.init.uniform_(torch.empty(vocab_size), -1 / math.sqrt(size.nhid), 1 / math.sqrt(size.nhid))
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)  # the tied decoder weight's own re-draw

    @torch.no_grad()
    def fill_from(self, stream: UniformStream) -> None:
        """Set every weight to what ``init`` draws, taking the values from the seed's shared stream.

        Offsets count the draws ``init`` makes after the embedding's normal draw: each layer's
        construction-time draws (discarded) then its kept re-draw, the untied decoder's weight and
        bias, and the embedding's two uniform draws, of which the second is kept.
        """
        offset = 0
        for layer in self.layers:
            params = list(layer.parameters())
            offset += sum(p.numel() for p in params)
            bound = layer.init_bound()
            for p in params:
                stream.fill_(p.data, offset, -bound, bound)
                offset += p.numel()
        vocab = self.encoder.num_embeddings
        offset += vocab * self.size.nhid + vocab + self.encoder.weight.numel()
        stream.fill_(self.encoder.weight.data, offset, -0.1, 0.1)

    def layer_outputs(self, tokens: torch.Tensor, upto: int | None = None,
                      embedded: torch.Tensor | None = None, activation_hook=None,
                      state_hook=None) -> list[torch.Tensor]:
        """Outputs (T, B, width) of layers 1..upto for token ids (T, B) or a given embedding.

        ``state_hook(layer, t, h)`` sees every incoming hidden state (layer is 1-based).
        """
        h = self.encoder(tokens) if embedded is None else embedded
        outs = []
        for i, layer in enumerate(self.layers[: upto or len(self.layers)], start=1):
            hook = None if state_hook is None else (lambda t, s, i=i: state_hook(i, t, s))
            h = layer(h, activation_hook=activation_hook, state_hook=hook)
            outs.append(h)
        return outs

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.layer_outputs(tokens)[-1]

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The tied embedding/decoder matrix and the decoder bias."""
        return [self.encoder.weight, self.decoder_bias]

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        return states @ self.encoder.weight.t() + self.decoder_bias

    # The proxy protocol (trainfree.metrics.proxies): a loss, its batch axis, and synflow's output.
    batch_dim = 1

    def proxy_loss(self, tokens: torch.Tensor, targets: torch.Tensor, activation_hook=None) -> torch.Tensor:
        """Mean next-token cross-entropy; ``activation_hook(key, a)`` sees each activation node's (B, H)
        output at every step, keyed by layer and node."""
        h = self.encoder(tokens)
        for i, layer in enumerate(self.layers):
            hook = None if activation_hook is None else (lambda name, a, i=i: activation_hook(f"{i}:{name}", a))
            h = layer(h, activation_hook=hook)
        logits = self.logits(h)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def synflow_output(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits for an all-ones embedded input of the batch's length (batch 1)."""
        p = self.encoder.weight
        ones = torch.ones(tokens.shape[0], 1, p.shape[1], dtype=p.dtype, device=p.device)
        return self.logits(self.layer_outputs(None, embedded=ones)[-1])


def build_lm(recipe: Recipe, vocab_size: int, size: str | LMSize = "paper", seed: int = 0,
             device: str | torch.device = "cpu") -> RecipeLM:
    """Build the model under ``seed`` exactly as NAS-Bench-NLP did (CPU construction), in eval mode.

    The weights come from this process's cached stream of the seed's draws (``draws``), bit for bit
    what ``RecipeLM(..., init=True)`` under ``torch.manual_seed(seed)`` gives; where this torch's
    rounding is not one the stream knows, the model draws them itself. The global torch RNG is
    left untouched either way.
    """
    size = get_size(size)
    shared = stream(seed, (vocab_size, size.emsize))
    if shared.formula is not None:
        model = RecipeLM(recipe, vocab_size, size, init=False)
        model.fill_from(shared)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = RecipeLM(recipe, vocab_size, size)
    return model.to(device).eval()


def token_window(settings, device="cpu") -> torch.Tensor:
    """The paper's input window (T, B): the first ``seq_len`` tokens of each of ``batch_size`` columns."""
    from trainfree.data.corpora import paper_window

    window = paper_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len, settings.offset)
    return torch.as_tensor(window, device=device)
