"""The decoder space: LTS GPT-2 / Transformer-XL genotypes in, seeded models and token batches out."""
from __future__ import annotations

import torch

from trainfree.config import ScoreSettings
from trainfree.data.corpora import load_corpus, ranked_window
from trainfree.errors import TrainfreeError
from trainfree.spaces.base import check_settings
from trainfree.spaces.choices import GeneratedSpace
from trainfree.spaces.parts import hooked_codes, module_params
from trainfree.spaces.decoder import generate
from trainfree.spaces.decoder.genotype import DecoderGenotype, parse_decoder
from trainfree.spaces.decoder.model import Decoder, build_decoder, size_for


#: a 3-layer Transformer-XL of the LTS space, with its adaptive embedding and softmax
EXAMPLE = {"family": "TransXL", "n_layer": 3, "d_model": 128, "n_head": [2, 8, 4], "d_inner": [900, 512, 1500],
           "d_embed": 256, "div_val": 2, "n_token": 267736, "cutoffs": [19997, 39997, 199997, 267736],
           "tie_projs": [False, True, True, True], "tgt_len": 192}


class DecoderSpace(GeneratedSpace):
    name = "decoder"
    description = "LTS decoder-only language models (GPT-2 and Transformer-XL genotypes)"
    sizes = ("paper", "tiny")
    provides = frozenset({"parameters", "forward", "parameter_groups", "lm_loss", "synflow_output",
                          "hidden_states", "activation_kernel", "decoder_blocks",
                          "activation_codes", "transformer_parts", "shape"})
    family = "decoder"
    generator = generate
    parser = staticmethod(parse_decoder)
    example_json = EXAMPLE
    #: 2: GPT-2 models take LTS's GPT-2 initialisation (scaled residual projections; model.INITS)
    model_version = 2
    #: what `score` and `search` use when no metric is named (docs/results-lts.md)
    default_metrics = ("decoder_params", "params", "decoder_hidden_cov", "decoder_activation_distance")

    def default_settings(self) -> ScoreSettings:
        """The full model on 16 sequences x 32 frequency-ranked WikiText-2 test words (32: every LTS
        context length is at least that)."""
        return ScoreSettings(size="paper", corpus="wikitext-2", batch_size=16, seq_len=32)

    def check(self, settings: ScoreSettings) -> None:
        check_settings(self, settings)
        size = size_for(settings.size)
        ranked_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len, settings.offset)
        vocab = load_corpus(settings.corpus).vocab_size
        if size.max_vocab is not None and vocab > size.max_vocab:
            raise TrainfreeError(f"corpus {settings.corpus} has {vocab} words; the {settings.size} preset's vocabulary "
                                 f"holds {size.max_vocab}")
        settings.resolved_device()

    def shape(self, arch: DecoderGenotype, settings: ScoreSettings) -> dict:
        """n_layer, d_model, and the per-layer heads and FFN widths averaged (LTS layers differ)."""
        return {"depth": arch.n_layer, "width": arch.d_model, "heads": sum(arch.n_head) / arch.n_layer,
                "kv_heads": sum(arch.n_head) / arch.n_layer, "ffn_width": sum(arch.d_inner) / arch.n_layer,
                "vocab": arch.n_token}

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

    # --- probe artefacts ---------------------------------------------------------------------------
    def parameter_groups(self, model: Decoder) -> dict[str, list]:
        """'embedding': the adaptive embedding, GPT-2's position table and the adaptive softmax's own
        biases, cluster logits and untied projections; 'blocks': the rest."""
        embedding = model.embedding_parameters()
        ids = {id(p) for p in embedding}
        return {"embedding": embedding, "blocks": [p for p in model.parameters() if id(p) not in ids]}

    def _pass(self, probe) -> dict:
        """One no-grad forward: every block's residual stream (before LayerNorm) and the sequences'
        binary-code kernel of every FFN activation (B x B, float64)."""
        def compute() -> dict:
            from trainfree.linalg import binary_code_kernel

            model, kernel = probe.model, []

            def on_act(_m, _i, a):
                kernel.append(binary_code_kernel((a.detach() > 0).reshape(a.shape[0], -1)))  # (B, T * d_inner)

            handles = [layer.act.register_forward_hook(on_act) for layer in model.layers]
            residuals: list = []
            try:
                with torch.no_grad():
                    model.layer_outputs(probe.inputs, residuals=residuals)
            finally:
                for h in handles:
                    h.remove()
            return {"residuals": residuals, "kernel": sum(kernel)}

        return probe.cached("decoder_pass", compute)

    def hidden_states(self, probe, layer: int) -> torch.Tensor:
        """Block ``layer``'s residual stream (B, T, d_model), before any LayerNorm (a LayerNorm's outputs
        sum to zero over units, which would put a zero eigenvalue in every covariance score)."""
        residuals = self._pass(probe)["residuals"]
        if layer != -1 and not 1 <= layer <= len(residuals):
            raise TrainfreeError(f"layer {layer}: the architecture has {len(residuals)} blocks")
        return residuals[-1 if layer == -1 else layer - 1]

    def activation_kernel(self, probe) -> torch.Tensor:
        return self._pass(probe)["kernel"]

    def transformer_parts(self, model: Decoder) -> dict[str, list]:
        """'attention': the q/k/v, output (and Transformer-XL's relative-position) projections and the
        relative-position biases; 'ffn': the two FFN Linears; 'ffn_in': each layer's first FFN Linear.
        LayerNorms are in neither."""
        attention, ffn = [], []
        for layer in model.layers:
            attention += [layer.attn_qkv, layer.attn_out] + ([layer.attn_r] if hasattr(layer, "attn_r") else [])
            ffn += [layer.ffn_in, layer.ffn_out]
        extra = [p for layer in model.layers for p in (getattr(layer, "r_w_bias", None), getattr(layer, "r_r_bias", None))
                 if p is not None]
        return {"attention": module_params(attention) + extra, "ffn": module_params(ffn),
                "ffn_in": [layer.ffn_in for layer in model.layers]}

    def activation_codes(self, probe):
        """Every FFN activation output > 0 (GELU, ReLU: pre-activation > 0) of one clean forward: one
        (B, T * d_inner) block per layer."""
        return hooked_codes(probe, [layer.act for layer in probe.model.layers],
                            lambda: probe.model.layer_outputs(probe.inputs))

