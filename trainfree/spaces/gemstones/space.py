"""The Gemstones space: the model family of the Gemstones suite, searched by width and depth.

Every Gemstone is a transformers ``GemmaForCausalLM`` (the released checkpoints' config): heads of 128
dimensions (``width / 128`` of them), half as many key/value heads (``int(heads / 2)``, at least one),
a GeGLU MLP of four times the width, RMSNorm (eps 1e-5), RoPE (theta 10,000), context 2,048, no biases,
untied embedding and head over a 50,304-token vocabulary. That config gives exactly the published
parameter count of all 22 shapes (``tests/test_gemstones.py``). An architecture is
``{"hidden_size": width, "num_hidden_layers": depth}``; the space holds every width from 256 to 3,072 in
steps of 128 and every depth from 1 to 80, the suite's 22 shapes among them.

The models are built from the config under the seed (no weights are downloaded). Inputs are the hf
spaces' (WordPiece ids of WikiText-2 test, all below 50,304), or a corpus and tokenizer of one's own.
"""
from __future__ import annotations

from trainfree.spaces.hf.space import HFSpace
from trainfree.spaces.hf.spec import SpaceSpec

HEAD_DIM = 128
VOCAB = 50304
WIDTHS = tuple(range(256, 3072 + 1, HEAD_DIM))
DEPTHS = tuple(range(1, 81))
#: the config fields every Gemstone shares (the released config.json's)
FIXED = {"vocab_size": VOCAB, "head_dim": HEAD_DIM, "hidden_activation": "gelu_pytorch_tanh",
         "hidden_act": "gelu_pytorch_tanh", "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
         "rope_theta": 10000.0, "tie_word_embeddings": False, "attention_bias": False}


#: the suite's groups of about equal size (the paper's iso-parameter sets): nine shapes near 100M, four
#: near 0.5B, three near 1B, three near 2B; the three smallest shapes are in none
SIZE_GROUPS = (("100M", 1e8), ("0.5B", 5e8), ("1B", 1e9), ("2B", 2e9))


def heads(width: int) -> tuple[int, int]:
    """(attention heads, key/value heads) of a width: heads of 128, and int(heads / 2) kv heads (at least 1)."""
    n = width // HEAD_DIM
    return n, max(1, n // 2)


def params(width: int, depth: int) -> int:
    """The exact parameter count, in closed form: untied embedding and head, per layer the q/o projections,
    the k/v projections of the kv heads, the GeGLU MLP and two RMSNorms, then the final norm."""
    n, kv = heads(width)
    attention = 2 * width * n * HEAD_DIM + 2 * width * kv * HEAD_DIM
    return 2 * VOCAB * width + width + depth * (attention + 12 * width * width + 2 * width)


SPEC = SpaceSpec(name="gemstones", model="GemmaForCausalLM", kind="causal", fixed=dict(FIXED),
                 searched={"hidden_size": list(WIDTHS), "num_hidden_layers": list(DEPTHS)},
                 description="Gemstones decoders (Gemma-style, transformers GemmaForCausalLM): width x depth, heads "
                             "of 128, half as many key/value heads, GeGLU MLP of 4x width, 50,304 tokens",
                 where="trainfree/spaces/gemstones",
                 example={"hidden_size": 256, "num_hidden_layers": 3})


class GemstonesSpace(HFSpace):
    """The Gemstones family (see the module docstring)."""

    #: the shape baselines and parameter counts (no model built), then the block-state metrics
    default_metrics = ("nonembedding_params", "params", "attn_params", "ffn_params", "embedding_params", "depth",
                       "width", "aspect_ratio", "depth_width_sq", "hidden_cov", "activation_distance")

    def __init__(self):
        super().__init__(SPEC)

    def fields(self, config: dict) -> dict:
        width = config["hidden_size"]
        n, kv = heads(width)
        return {**config, "num_attention_heads": n, "num_key_value_heads": kv, "intermediate_size": 4 * width}

    def params_of(self, config: dict) -> int:
        return params(config["hidden_size"], config["num_hidden_layers"])

    def describe(self, arch) -> str:
        """The suite's own name for a shape: ``WIDTHxDEPTH``."""
        return f"{arch.config['hidden_size']}x{arch.config['num_hidden_layers']}"

    def factors(self, arch) -> dict[str, object]:
        """Width, depth, parameters, aspect ratio, and ``size_group``: the suite's equal-size group (100M,
        0.5B, 1B, 2B: within 20% of it), None outside them (``correlate --within size_group``)."""
        width, depth = arch.config["hidden_size"], arch.config["num_hidden_layers"]
        n = self.params_of(arch.config)
        group = next((label for label, size in SIZE_GROUPS if abs(n - size) <= 0.2 * size), None)
        return {"width": width, "depth": depth, "params": n, "aspect_ratio": round(width / depth, 2),
                "size_group": group}
