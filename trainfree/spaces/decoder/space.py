"""The decoder space: LTS GPT-2 / Transformer-XL genotypes in, seeded models and token batches out."""
from __future__ import annotations

import torch

from trainfree.config import ScoreSettings
from trainfree.data.corpora import load_corpus, ranked_window
from trainfree.errors import TrainfreeError
from trainfree.spaces.choices import GeneratedSpace
from trainfree.spaces.decoder import generate
from trainfree.spaces.decoder.genotype import DecoderGenotype, parse_decoder
from trainfree.spaces.decoder.model import Decoder, build_decoder, size_for


class DecoderSpace(GeneratedSpace):
    name = "decoder"
    generator = generate
    #: what `score` and `search` use when no metric is named (docs/results-lts.md)
    default_metrics = ("decoder_params", "params", "decoder_hidden_cov", "decoder_activation_distance")

    def default_settings(self) -> ScoreSettings:
        """The full model on 16 sequences x 32 frequency-ranked WikiText-2 test words (32: every LTS
        context length is at least that)."""
        return ScoreSettings(size="paper", corpus="wikitext-2", batch_size=16, seq_len=32)

    def from_json(self, text, where: str = "") -> DecoderGenotype:
        return parse_decoder(text, where)

    def check(self, settings: ScoreSettings) -> None:
        size = size_for(settings.size)
        ranked_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len, settings.offset)
        vocab = load_corpus(settings.corpus).vocab_size
        if size.max_vocab is not None and vocab > size.max_vocab:
            raise TrainfreeError(f"corpus {settings.corpus} has {vocab} words; the {settings.size} preset's vocabulary "
                                 f"holds {size.max_vocab}")
        settings.resolved_device()

    def build(self, arch: DecoderGenotype, settings: ScoreSettings, device: torch.device | str = "cpu") -> Decoder:
        model = build_decoder(arch, settings.size, seed=settings.seed, device=device)
        return model.to(getattr(torch, settings.dtype))

    def _window(self, settings: ScoreSettings, device) -> torch.Tensor:
        w = ranked_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len, settings.offset)
        return torch.as_tensor(w, device=device)

    def inputs(self, settings: ScoreSettings, device: torch.device | str = "cpu") -> torch.Tensor:
        """(B, T) word ids ranked by WikiText-2 train frequency."""
        return self._window(settings, device)[:, :-1]

    def targets(self, settings: ScoreSettings, device: torch.device | str = "cpu") -> torch.Tensor:
        """The next word of every input position."""
        return self._window(settings, device)[:, 1:]

    def factors(self, arch: DecoderGenotype) -> dict[str, object]:
        """Design factors for analysis: the global sizes, the adaptive embedding (width, divisor,
        clusters), the context length, and the per-layer FFN widths and heads as mean and maximum."""
        return {"family": arch.family, "n_layer": arch.n_layer, "d_model": arch.d_model, "d_embed": arch.d_embed,
                "div_val": arch.div_val, "n_clusters": arch.n_clusters, "tgt_len": arch.tgt_len,
                "d_inner_mean": round(sum(arch.d_inner) / arch.n_layer), "d_inner_max": max(arch.d_inner),
                "n_head_mean": round(sum(arch.n_head) / arch.n_layer, 2), "n_head_max": max(arch.n_head)}
