"""The NAS-Bench-BERT search space: genotypes in, seeded encoders and WordPiece batches out."""
from __future__ import annotations

import torch

from trainfree.config import ScoreSettings
from trainfree.spaces.base import SETTING_FIELDS, check_settings
from trainfree.spaces.choices import GeneratedSpace
from trainfree.data.bert_inputs import bert_batch, mlm_labels
from trainfree.spaces.bert import generate
from trainfree.spaces.bert.genotype import BertGenotype, parse_genotype
from trainfree.spaces.bert.model import BertEncoder, build_bert, size_for


_LAYER = {"operation_type": "SA", "operation_parameter": "WMA", "num_operation_heads": 4,
          "feed_forward_dimension": 512, "num_feed_forward": 3}
#: four layers, every operation family once (SA-WMA, LT-DCT, DSC, SA-SDP)
EXAMPLE = {"hidden_size": 256, "encoder_layers": [
    _LAYER, dict(_LAYER, operation_type="LT", operation_parameter="DCT", num_operation_heads=2),
    dict(_LAYER, operation_type="DSC", operation_parameter=9, num_feed_forward=1),
    dict(_LAYER, operation_parameter="SDP")]}


class NASBenchBERTSpace(GeneratedSpace):
    generator = generate
    parser = staticmethod(parse_genotype)
    example_json = EXAMPLE
    name = "nasbench-bert"
    description = "NAS-Bench-BERT encoders (per-layer SA / LT / DSC ops and FFN stacks)"
    sizes = ("paper", "as-specified", "tiny")
    provides = frozenset({"parameters", "forward", "parameter_groups", "lm_loss", "synflow_output", "encoder_ops",
                          "activation_codes", "transformer_parts"})
    #: the WordPiece batch is the first tokens of each line block: there is no window offset
    uses = frozenset(SETTING_FIELDS) - {"offset", "tokenizer"}
    family = "encoder"
    #: the metrics run in train mode, and dropout masks drawn on a CUDA generator differ from the CPU's
    device_dependent = True
    #: what `score` and `search` use when no metric is named: one seeded forward feeds them all
    #: (docs/performance.md); the gradient metrics rank worse here and cost a backward pass more
    default_metrics = ("head_confidence", "head_confidence_n", "bert_activation_distance",
                       "head_softmax_confidence", "params", "nonembedding_params")

    def default_settings(self) -> ScoreSettings:
        """The paper's metric model (hidden 256, FFN 1024) on 32 x 128 WordPiece tokens of WikiText-2 test."""
        return ScoreSettings(size="paper", corpus="wikitext-2", batch_size=32, seq_len=128)

    def check(self, settings: ScoreSettings) -> None:
        check_settings(self, settings)
        size_for(settings.size)
        bert_batch(settings.corpus, settings.split, settings.batch_size, settings.seq_len)
        if settings.seq_len > size_for(settings.size).max_positions:
            from trainfree.errors import TrainfreeError

            cap = size_for(settings.size).max_positions
            raise TrainfreeError(f"seq_len {settings.seq_len} exceeds the {settings.size!r} model's {cap} positions; "
                                 f"give --seq-len {cap} or less (settings.with_(seq_len={cap}) in Python)")
        settings.resolved_device()

    def build(self, arch: BertGenotype, settings: ScoreSettings, device: torch.device | str = "cpu") -> BertEncoder:
        """Built under the seed, in train mode as the paper's metrics ran (dropout on, seeded per pass)."""
        model = build_bert(arch, settings.size, seed=settings.seed, device=device)
        return model.to(getattr(torch, settings.dtype)).train()

    def targets(self, settings: ScoreSettings, device: torch.device | str = "cpu") -> torch.Tensor:
        """Masked-LM labels (B, T) for the input batch: 15% of the real tokens (never [CLS], [SEP] or
        [PAD]; at least one per row), chosen under the seed, keep their id; the rest are -100."""
        return torch.as_tensor(mlm_labels(self._batch(settings), settings.seed), device=device)

    def _batch(self, settings: ScoreSettings):
        return bert_batch(settings.corpus, settings.split, settings.batch_size, settings.seq_len)

    def inputs(self, settings: ScoreSettings, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.as_tensor(self._batch(settings), device=device)

    def factors(self, arch: BertGenotype) -> dict[str, int]:
        """Design factors for analysis: depth, width, heads and FFN layers in total, and how many layers
        use each operation type, each operation parameter and the 1024-wide FFN."""
        from collections import Counter

        out = {"num_layers": len(arch.layers), "hidden_size": arch.hidden_size,
               "total_heads": sum(layer.num_operation_heads for layer in arch.layers),
               "total_ffn_layers": sum(layer.num_feed_forward for layer in arch.layers)}
        ops = Counter(layer.operation_type for layer in arch.layers)
        params = Counter(str(layer.operation_parameter) for layer in arch.layers)
        for op in ("SA", "LT", "DSC"):
            out[f"n_{op}"] = ops[op]
        for p in ("SDP", "WMA", "DFT", "DCT", "5", "9"):
            out[f"n_{'kernel' + p if p.isdigit() else p}"] = params[p]
        out["n_ffn_dim_1024"] = sum(layer.feed_forward_dimension == 1024 for layer in arch.layers)
        return out

    def parameter_groups(self, model: BertEncoder) -> dict[str, list]:
        """'embedding': the token, type and position tables (and their LayerNorm/projection stay 'encoder')."""
        embedding = model.embedding_parameters()
        ids = {id(p) for p in embedding}
        return {"embedding": embedding, "encoder": [p for p in model.parameters() if id(p) not in ids]}

    def transformer_parts(self, model: BertEncoder) -> dict[str, list]:
        """'attention': each layer's token-mixing op (SA / LT / DSC) and its output projection W_o;
        'ffn': the FFN stack's Linears; 'ffn_in': each layer's first FFN Linear. LayerNorms are in neither."""
        from trainfree.spaces.parts import module_params

        mixing = [m for layer in model.layers for m in [layer.op] + ([layer.output] if layer.mixes else [])]
        ffn = [m for layer in model.layers for m in [layer.ffn_in, *layer.ffn_hidden, layer.ffn_out]]
        return {"attention": module_params(mixing), "ffn": module_params(ffn),
                "ffn_in": [layer.ffn_in for layer in model.layers]}

    def activation_codes(self, probe):
        """Every FFN GELU output > 0 (pre-activation > 0) of one seeded train-mode forward: one (B, T * F)
        block per GELU call."""
        from trainfree.spaces.parts import hooked_codes

        return hooked_codes(probe, [layer.act for layer in probe.model.layers], lambda: probe.model(probe.inputs))
