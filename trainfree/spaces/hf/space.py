"""The hf SearchSpace: a space file's searched config fields in, seeded transformers models out.

An architecture is the dict of searched fields, each one of its declared choices, meeting every
constraint. Generation goes through the shared chooser: fields are picked in the file's order, each
from the choices that keep the divisibility constraints with the fields already picked; a draw over
the parameter budget is drawn again (a gene vector's later draws come from a generator its genes
seed, so ``decode`` stays a function of the genes). Mutation moves one field to another choice that
keeps every constraint. A space file given by path is registered under its name, and its text is
handed to worker processes so that they rebuild it (``trainfree.spaces.space_file``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.resources import files

import numpy as np

from trainfree.config import ScoreSettings
from trainfree.errors import InvalidArchitecture, TrainfreeError
from trainfree.spaces.base import SETTING_FIELDS, SearchSpace, check_settings
from trainfree.spaces.choices import GeneChooser, RandomChooser
from trainfree.spaces.config_arch import FactoryArch
from trainfree.spaces.hf import artefacts, inputs as tokens
from trainfree.spaces.hf.spec import SpaceSpec, parse_spec
from trainfree.spaces.parsing import exact_choice, fail, load_object, quote, reject_unknown

#: draws of one sample before the space is declared empty (constraints no architecture meets)
MAX_DRAWS = 1000
PROVIDES = frozenset({"parameters", "forward", "parameter_groups", "hidden_states", "activation_kernel",
                      "lm_loss", "synflow_output", "activation_codes", "transformer_parts", "shape"})
SIZES = ("paper", "tiny")


@dataclass(frozen=True)
class HFArch(FactoryArch):
    """One architecture: the searched fields and their values, in the file's order. ``model`` is a
    digest of the model class and fixed fields, so that ids differ between spaces that build differently."""
    model: str

    @property
    def arch_id(self) -> str:
        return hashlib.sha1(f"{self.model}\n{self.canonical_json()}".encode()).hexdigest()[:16]


class HFSpace(SearchSpace):
    """A space over a transformers model class's configs, read from a space file (see the module doc)."""

    provides = PROVIDES
    sizes = SIZES
    #: every setting, the tokenizer too (it tokenises subwords)
    uses = frozenset(SETTING_FIELDS)
    #: one no-grad pass of the blocks (no LM head) serves all four; the first is what search maximises
    default_metrics = ("hidden_cov", "activation_distance", "nonembedding_params", "params")

    def __init__(self, spec: SpaceSpec):
        self.spec = spec
        self.family = "decoder" if spec.kind == "causal" else "encoder"
        self.name = spec.name
        self.description = spec.description or f"{spec.model} configs from {spec.where}"
        self.model_digest = hashlib.sha1(json.dumps([spec.model, spec.fixed], sort_keys=True).encode()).hexdigest()[:12]
        self._params: dict[tuple, int] = {}
        self._per_layer: dict[tuple, tuple[int, int] | None] = {}  # other fields -> (1 block, each more)
        if spec.example is not None:  # before any draw: a space whose example is its one valid architecture
            self._example = self.from_json(spec.example, f"{spec.where}: example")
        else:
            self._example = self.sample(np.random.default_rng(0))  # an empty space fails here, naming the file

    # --- constraints
    def _divisible_ok(self, config: dict) -> bool:
        """The divisibility constraints whose fields are both known (searched so far, fixed or default)."""
        for a, b in self.spec.divisible:
            if any(self.spec.key(f) in self.spec.searched and self.spec.key(f) not in config for f in (a, b)):
                continue
            if self.spec.value(a, config) % self.spec.value(b, config) != 0:
                return False
        return True

    def fields(self, config: dict) -> dict:
        """The config fields an architecture sets: its searched values (a subclass may derive more)."""
        return dict(config)

    def vocab(self, config: dict, settings: ScoreSettings | None = None) -> int:
        """The vocabulary the model is built with: the space's own ``vocab_size`` (fixed or searched),
        else the tokenizer's (the shipped WordPiece: 30,522, or 8,192 at the tiny size; a file's own)."""
        key = self.spec.key("vocab_size")
        if key in config:
            return config[key]
        if key in self.spec.fixed:
            return self.spec.fixed[key]
        if settings is not None and settings.tokenizer:
            return tokens.tokenizer_size(settings.tokenizer)
        return tokens.vocab_size(settings.size if settings is not None else "paper")

    def params_of(self, config: dict) -> int:
        """Parameters of ``config``'s model at the space's vocabulary (what its budget constraints count).
        A stack of identical blocks grows linearly with its depth: the counts of one, two and three blocks
        (on the meta device) give every depth of the same other fields, checked linear, else counted as is."""
        key = tuple(config.items())
        if key not in self._params:
            layers = self.spec.key("num_hidden_layers")
            depth = config.get(layers)
            if isinstance(depth, int) and depth >= 1:
                base = tuple((k, v) for k, v in config.items() if k != layers)
                if base not in self._per_layer:
                    counts = [self._count({**config, layers: n}) for n in (1, 2, 3)]
                    steps = {counts[1] - counts[0], counts[2] - counts[1]}
                    self._per_layer[base] = (counts[0], steps.pop()) if len(steps) == 1 else None
                linear = self._per_layer[base]
                self._params[key] = (linear[0] + (depth - 1) * linear[1] if linear is not None
                                     else self._count(config))
            else:
                self._params[key] = self._count(config)
        return self._params[key]

    def _count(self, config: dict) -> int:
        from trainfree.spaces.hf.model import count_params, make_config

        return count_params(self.spec, make_config(self.spec, self.fields(config), self.vocab(config)))

    def violation(self, config: dict) -> str | None:
        """Which constraint ``config`` breaks, or None."""
        for a, b in self.spec.divisible:
            x, y = self.spec.value(a, config), self.spec.value(b, config)
            if x % y != 0:
                return f"{a} = {x} is not divisible by {b} = {y}"
        lo, hi = self.spec.min_params, self.spec.max_params
        try:
            n = self.params_of(config)  # also what transformers refuses to build
        except TrainfreeError as err:
            return str(err)
        if lo is not None or hi is not None:
            if hi is not None and n > hi:
                return f"{n} parameters exceed the budget max_params = {hi}"
            if lo is not None and n < lo:
                return f"{n} parameters are below min_params = {lo}"
        return None

    # --- identity and JSON
    def from_json(self, text, where: str = "") -> HFArch:
        data = load_object(text, where)
        reject_unknown(data, self.spec.searched, where)
        items = []
        for field, options in self.spec.searched.items():
            if field not in data:
                raise fail(where, f"missing field {field!r} (fields: {', '.join(self.spec.searched)})")
            if not exact_choice(data[field], options):
                raise fail(where, f"{field}: {quote(data[field])} is not one of {quote(options)}")
            items.append((field, data[field]))
        config = dict(items)
        broken = self.violation(config)
        if broken:
            raise InvalidArchitecture(f"{where + ': ' if where else ''}breaks a constraint of space {self.name}: {broken}")
        return HFArch(tuple(items), self.model_digest)

    def example(self) -> HFArch:
        return self._example

    # --- generation, through the shared chooser
    def _generate(self, chooser) -> HFArch:
        broken = "no choice met the divisibility pairs"
        for _ in range(MAX_DRAWS):
            config: dict = {}
            for field, options in self.spec.searched.items():
                allowed = [o for o in options if self._divisible_ok({**config, field: o})]
                if not allowed:
                    break
                config[field] = chooser.pick(allowed)
            else:
                broken = self.violation(config)
                if broken is None:
                    return HFArch(tuple(config.items()), self.model_digest)
        raise TrainfreeError(f"{self.spec.where}: constraints: no architecture met them in {MAX_DRAWS} draws (the "
                             f"last: {broken}); check the choices against the divisibility pairs and the budget")

    def sample(self, rng: np.random.Generator) -> HFArch:
        return self._generate(RandomChooser(rng))

    def mutate(self, arch: HFArch, rng: np.random.Generator) -> HFArch:
        """One field moved to another of its choices that keeps every constraint (fields tried in a random
        order; the same architecture when no single move is allowed)."""
        chooser = RandomChooser(rng)
        config = arch.config
        for field in chooser.sample(list(self.spec.searched), len(self.spec.searched)):
            moves = [o for o in self.spec.searched[field] if not exact_choice(o, [config[field]])
                     and self.violation({**config, field: o}) is None]
            if moves:
                config[field] = chooser.pick(moves)
                return HFArch(tuple((f, config[f]) for f in self.spec.searched), self.model_digest)
        return arch

    @property
    def n_genes(self) -> int:
        return len(self.spec.searched)

    def grid_size(self) -> int:
        n = 1
        for options in self.spec.searched.values():
            n *= len(options)
        return n

    def enumerate(self):
        """Every combination of the searched choices that meets the constraints, in the file's field order
        (the last field varying fastest)."""
        import itertools

        fields = list(self.spec.searched)
        for values in itertools.product(*(self.spec.searched[f] for f in fields)):
            config = dict(zip(fields, values))
            if self._divisible_ok(config) and self.violation(config) is None:
                yield HFArch(tuple(config.items()), self.model_digest)

    def footprint(self, arch: HFArch) -> dict[str, float]:
        """Parameters at the space's vocabulary, and 2 x layers x kv_heads x head_dim cache entries a token."""
        fields = {**self.spec.fixed, **self.fields(arch.config)}
        config = self.config(arch, self.default_settings())
        heads = config.num_attention_heads
        kv = getattr(config, "num_key_value_heads", None) or heads
        head_dim = fields.get("head_dim") or config.hidden_size // heads
        return {"params": self.params_of(arch.config), "kv_per_token": 2 * config.num_hidden_layers * kv * head_dim}

    def describe(self, arch: HFArch) -> str:
        """Layers, width, heads (and key/value heads), MLP width: ``6L-256d-4h/2kv-1024ff``."""
        shape = self.shape(arch, self.default_settings())
        kv = f"/{shape['kv_heads']}kv" if shape["kv_heads"] != shape["heads"] else ""
        return f"{shape['depth']}L-{shape['width']}d-{shape['heads']}h{kv}-{shape['ffn_width']}ff"

    def decode(self, genes) -> HFArch:
        return self._generate(GeneChooser(genes))

    def features(self, arch: HFArch) -> frozenset:
        return frozenset((f, json.dumps(v)) for f, v in arch.items)

    def factors(self, arch: HFArch) -> dict[str, object]:
        return {**arch.config, "params": self.params_of(arch.config)}

    # --- settings, models and inputs
    def default_settings(self) -> ScoreSettings:
        """16 sequences x 32 WordPiece tokens of WikiText-2 test, the full model, float32."""
        return ScoreSettings(size="paper", corpus="wikitext-2", split="test", batch_size=16, seq_len=32)

    def check(self, settings: ScoreSettings) -> None:
        check_settings(self, settings)
        if settings.size not in SIZES:
            raise TrainfreeError(f"space {self.name}: unknown size {settings.size!r}; choose from: {', '.join(SIZES)}")
        try:
            positions = self.spec.value("max_position_embeddings", self._example.config)
        except AttributeError:  # a config without learned positions
            positions = None
        if isinstance(positions, int) and settings.seq_len > positions:
            raise TrainfreeError(f"space {self.name}: seq_len {settings.seq_len} exceeds the model's "
                                 f"max_position_embeddings = {positions}")
        self._window(settings, self._input_vocab(settings))
        settings.resolved_device()

    def memory_estimate(self, arch: HFArch, settings: ScoreSettings, backward: bool):
        """Weights (counted on the meta device), gradients, and the activations of one forward at the
        probe's batch: every block's output kept, one block's attention scores and MLP, the logits (with a
        backward, every block's intermediates)."""
        from trainfree.spaces.base import MemoryEstimate
        from trainfree.spaces.hf.model import count_params

        config = self.config(arch, settings)
        item = 8 if settings.dtype == "float64" else 4
        weights = count_params(self.spec, config) * item
        hidden, layers = config.hidden_size, config.num_hidden_layers
        inner = (getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden)
        heads, vocab = config.num_attention_heads, config.vocab_size
        tokens, t = settings.batch_size, settings.seq_len
        tokens *= t
        if backward:
            values = tokens * layers * (12 * hidden + 4 * inner + 2 * heads * t) + 3 * tokens * vocab
        else:
            values = tokens * ((layers + 2) * hidden + 3 * inner + 2 * heads * t) + 2 * tokens * vocab
        return MemoryEstimate(weights, weights if backward else 0, values * item)

    #: param_counts builds no model (the memory guard lets the parameter counts through)
    counts_without_building = True

    def param_counts(self, probe) -> dict[str, int]:
        """Counted on a model built on the meta device: the same counts, no memory and no initialisation
        (a 2-billion-parameter model is counted in a second)."""
        from trainfree.spaces.base import count_parameters
        from trainfree.spaces.hf.model import meta_model

        return count_parameters(self, meta_model(self.spec, self.config(probe.arch, probe.settings)))

    def shape(self, arch: HFArch, settings: ScoreSettings) -> dict:
        config = self.config(arch, settings)
        heads = config.num_attention_heads
        ffn = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * config.hidden_size
        return {"depth": config.num_hidden_layers, "width": config.hidden_size, "heads": heads,
                "kv_heads": getattr(config, "num_key_value_heads", None) or heads, "ffn_width": ffn,
                "vocab": config.vocab_size}

    def export_config(self, arch: HFArch, settings: ScoreSettings):
        """The config a user trains from: the architecture's, at the vocabulary of ``settings``'s tokenizer
        (or the space's own vocab_size), naming its model class, with transformers' default attention."""
        config = self.config(arch, settings)
        config._attn_implementation = None  # the training machine's choice, not the CPU probe's eager one
        config.architectures = [self.spec.model]
        return config

    def config(self, arch: HFArch, settings: ScoreSettings):
        from trainfree.spaces.hf.model import make_config

        return make_config(self.spec, self.fields(arch.config), self.vocab(arch.config, settings))

    def build(self, arch: HFArch, settings: ScoreSettings, device="cpu"):
        """``ModelClass._from_config(config)`` under the seed, on the CPU, in eval mode (no dropout), then
        moved to ``device`` and ``settings.dtype``; wrapped with the proxy protocol (``.hf`` is the model)."""
        import torch

        from trainfree.spaces.hf.model import HFModel, build_hf

        hf = build_hf(self.spec, self.config(arch, settings), settings.seed).eval()
        return HFModel(hf, self.spec.kind).to(device=device, dtype=getattr(torch, settings.dtype))

    def _window(self, settings: ScoreSettings, vocab: int | None = None):
        return tokens.window(settings.corpus, settings.split, settings.batch_size, settings.seq_len,
                             settings.offset, settings.size, settings.tokenizer, vocab)

    def _tensor(self, array, device):
        import torch

        return torch.as_tensor(np.ascontiguousarray(array), device=device)

    def _input_vocab(self, settings: ScoreSettings) -> int:
        """The smallest vocabulary of the space's architectures: ids below it fit every model."""
        key = self.spec.key("vocab_size")
        if key in self.spec.searched:
            return min(self.spec.searched[key])
        return self.vocab({}, settings)

    def inputs(self, settings: ScoreSettings, device="cpu"):
        """(B, T) token ids (a masked LM's with [MASK] at its labelled positions)."""
        w = self._window(settings, self._input_vocab(settings))
        if self.spec.kind == "masked":
            return self._tensor(tokens.masked(w[:, :-1], settings.seed, tokenizer=settings.tokenizer)[0], device)
        return self._tensor(w[:, :-1], device)

    def targets(self, settings: ScoreSettings, device="cpu"):
        """Next tokens (causal), or the masked positions' ids and -100 elsewhere (masked)."""
        w = self._window(settings, self._input_vocab(settings))
        if self.spec.kind == "masked":
            return self._tensor(tokens.masked(w[:, :-1], settings.seed, tokenizer=settings.tokenizer)[1], device)
        return self._tensor(w[:, 1:], device)

    # --- probe artefacts
    def parameter_groups(self, model) -> dict[str, list]:
        return artefacts.parameter_groups(model)

    def hidden_states(self, probe, layer: int):
        return artefacts.hidden_states(probe, layer)

    def activation_kernel(self, probe):
        return artefacts.activation_kernel(probe)

    def activation_codes(self, probe):
        return artefacts.activation_codes(probe)

    def transformer_parts(self, model) -> dict[str, list]:
        return artefacts.transformer_parts(model)


# --- the shipped spaces, and spaces from files -------------------------------------------------------

def _shipped(file: str) -> SpaceSpec:
    text = files("trainfree.spaces.hf").joinpath(file).read_text(encoding="utf-8")
    return parse_spec(text, f"trainfree/spaces/hf/{file}", "toml")


class LlamaSpace(HFSpace):
    """hf-llama: a small Llama-style decoder (spaces/hf/llama.toml)."""

    def __init__(self):
        super().__init__(_shipped("llama.toml"))


class GPT2Space(HFSpace):
    """hf-gpt2: a small GPT-2-style decoder (spaces/hf/gpt2.toml)."""

    def __init__(self):
        super().__init__(_shipped("gpt2.toml"))


def worker_source(spec: SpaceSpec) -> str:
    """What a worker needs to rebuild a file's space: its text, where it came from, its format."""
    fmt = "json" if spec.where.lower().endswith(".json") else "toml"
    return json.dumps({"where": spec.where, "text": spec.text, "fmt": fmt, "name": spec.name})


def spec_of_source(payload: str) -> SpaceSpec:
    data = json.loads(payload)
    return parse_spec(data["text"], data["where"], data["fmt"], default_name=data["name"])
