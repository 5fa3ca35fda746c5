"""What a search space is: the one interface the runner, the metrics, search and analysis rely on.

A space turns an architecture description (its genotype) into a seeded model and an input batch,
generates architectures for search, and provides the *probe artefacts* metrics read (hidden states,
activation codes, parameter groups, a language-model loss). A metric states the artefacts it needs
and applies to every space that provides them (``trainfree.metrics.base``); no list of spaces is
written anywhere else. This module imports neither torch nor a space, so the command line can list
spaces without loading them.
"""
from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

import numpy as np

from trainfree.config import fingerprint_of
from trainfree.errors import TrainfreeError

if TYPE_CHECKING:  # only for annotations: importing this module must stay cheap
    import torch

    from trainfree.config import ScoreSettings

#: the probe artefacts a space may provide, and what providing one means
ARTEFACTS = {
    "parameters": "the built model's parameters (tied tensors once)",
    "forward": "model(inputs) runs one forward on the space's batch",
    "parameter_groups": "parameter_groups(model): named groups, 'embedding' among them",
    "hidden_states": "hidden_states(probe, layer): (..., units) samples of a layer's hidden state (1-based; -1 the last)",
    "activation_kernel": "activation_kernel(probe): the B x B binary-code kernel of every activation of one forward",
    "lm_loss": "the model's proxy_loss(inputs, targets, activation_hook) and batch_dim (language-model loss)",
    "synflow_output": "the model's synflow_output(inputs): logits of an all-ones input past the embedding",
    "activation_codes": "activation_codes(probe): (B, N) boolean blocks, one row a sample: whether each activation "
                        "unit of one clean forward is above its activation's midpoint (pre-activation > 0)",
    "transformer_parts": "transformer_parts(model): 'attention' and 'ffn' parameter lists, and 'ffn_in', the first "
                         "FFN Linear of every layer in order",
    "shape": "shape(arch, settings): the model's depth (blocks), width (model dimension), heads, kv_heads, "
             "ffn_width (per block, averaged where blocks differ) and vocab, read off the architecture",
    # internals of one model family, for the metrics defined on that family alone
    "recurrent_cell": "a NAS-Bench-NLP RecipeLM (encoder, recurrent layers, layer_outputs(state_hook=...)) and the "
                      "space's passes over it: layer_outputs(probe, layer), ones_pass(probe), "
                      "half_norm_saliency(probe), noisy_jacobian(probe, amplitude)",
    "cell_graph": "cell_graph(arch): a recurrent cell's graph features (op counts, nodes, paths), no model built",
    "encoder_ops": "a NAS-Bench-BERT encoder: per-layer op, FFN Linears, softmax and activation modules",
    "decoder_blocks": "a decoder LM: embed(tokens), layer_outputs(embedded=..., residuals=...), blocks' act modules",
}

@dataclass(frozen=True)
class Batched:
    """A space's faster path for some metrics: ``scorers[name](archs, settings, device) -> values`` scores
    several architectures at once, ``per_pass`` of them per call, with the per-architecture values;
    ``chunk`` is how many architectures one executor task should carry for it."""

    scorers: Mapping[str, Callable]
    per_pass: int = 1
    chunk: int = 1


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one architecture's probe needs: the weights, their gradients (metrics that take a backward
    pass) and the activations at the probe's batch."""

    weights: int
    gradients: int = 0
    activations: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.activations

    def describe(self) -> str:
        gib = 1 << 30
        parts = [f"weights {self.weights / gib:.2f}"] + ([f"gradients {self.gradients / gib:.2f}"] if self.gradients
                                                          else []) + [f"activations {self.activations / gib:.2f}"]
        return f"about {self.total / gib:.2f} GiB ({', '.join(parts)} GiB)"


#: every ScoreSettings field a space may read
SETTING_FIELDS = ("seed", "size", "corpus", "split", "batch_size", "seq_len", "offset", "dtype", "device", "tokenizer")
DTYPES = ("float32", "float64")


class SearchSpace(abc.ABC):
    """One family of architectures. Subclasses set the class attributes and implement the abstract methods.

    Identity: ``from_json`` parses and validates a description (raising InvalidArchitecture naming where
    it is wrong); ``arch_id`` is a stable content hash of ``canonical_json``, so equal architectures
    share stored scores. Generation goes through a chooser (``trainfree.spaces.choices``): ``sample``
    and ``mutate`` draw from a seeded generator, ``decode`` reads the same decisions from ``n_genes``
    integers. ``build``/``inputs``/``targets`` give the seeded model and its batch under settings.
    """

    #: the registry name (``--space``), lower-case with dashes
    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: the size presets ``settings.size`` may name; "tiny" is the one tests and examples use
    sizes: ClassVar[tuple[str, ...]] = ("paper",)
    #: the probe artefacts this space provides (keys of ARTEFACTS)
    provides: ClassVar[frozenset[str]] = frozenset({"parameters", "forward"})
    #: the metrics ``score`` and ``search`` use when none is named
    default_metrics: ClassVar[tuple[str, ...]] = ()
    #: the family of models (``decoder``, ``encoder``, ``rnn``) whose benchmarks' evidence applies to it
    family: ClassVar[str | None] = None
    #: the settings fields that change this space's numbers; a field outside it must keep its default
    #: (the tokenizer only where the space tokenises subwords: the hf spaces)
    uses: ClassVar[frozenset[str]] = frozenset(SETTING_FIELDS) - {"tokenizer"}
    #: True where the numbers depend on the device type (random draws made on the device, e.g. dropout
    #: masks): a non-CPU device type then enters the settings fingerprint
    device_dependent: ClassVar[bool] = False
    #: True where ``param_counts`` counts without building the model (the memory guard then lets the
    #: parameter-count metrics through on models too large to build)
    counts_without_building: ClassVar[bool] = False
    #: raised when the space builds its models differently (an initialisation, a layer): it enters the
    #: settings fingerprint, so scores stored from older models are not reused (1: not in the fingerprint)
    model_version: ClassVar[int] = 1

    # --- identity and JSON -------------------------------------------------------------------------
    @abc.abstractmethod
    def from_json(self, text, where: str = "") -> Any:
        """Parse and validate one architecture from JSON text (or an already-decoded object)."""

    def parse(self, text, where: str = "") -> Any:
        return self.from_json(text, where)

    def arch_id(self, arch) -> str:
        return arch.arch_id

    def canonical_json(self, arch) -> str:
        return arch.canonical_json()

    def to_json(self, arch) -> str:
        return json.dumps(arch.to_dict())

    # --- generation (through a chooser) -----------------------------------------------------------
    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Any: ...

    @abc.abstractmethod
    def mutate(self, arch, rng: np.random.Generator) -> Any: ...

    @property
    @abc.abstractmethod
    def n_genes(self) -> int:
        """Length of the integer vector ``decode`` reads (each gene in [0, choices.GENE_RANGE))."""

    @abc.abstractmethod
    def decode(self, genes) -> Any: ...

    @abc.abstractmethod
    def features(self, arch) -> frozenset:
        """Hashable traits; the distance between two architectures is the size of their symmetric difference."""

    def example(self) -> Any:
        """A valid architecture of the space, the same every call (tests, docs): the draw of seed 0."""
        return self.sample(np.random.default_rng(0))

    def factors(self, arch) -> dict[str, Any]:
        """Named, hashable design factors of ``arch`` for ``trainfree analyze`` (e.g. layer count)."""
        raise TrainfreeError(f"space {self.name!r} gives no analysis factors")

    # --- settings, models and inputs --------------------------------------------------------------
    @abc.abstractmethod
    def default_settings(self) -> "ScoreSettings": ...

    def tiny_settings(self) -> "ScoreSettings":
        """The smallest settings that run every code path (tests, examples), on the CPU."""
        return self.default_settings().with_(size="tiny", batch_size=4, seq_len=16, device="cpu")

    def check(self, settings: "ScoreSettings") -> None:
        """Raise a clear error for settings this space cannot use, before any work starts."""
        check_settings(self, settings)

    def fingerprint(self, settings: "ScoreSettings") -> str:
        """The settings' fingerprint for this space's numbers (see ``device_dependent`` and ``model_version``)."""
        return fingerprint_of(self.identity(settings))

    def identity(self, settings: "ScoreSettings") -> dict:
        fields = settings.identity(self._device_type(settings))
        if self.model_version != 1:
            fields["model_version"] = self.model_version
        return fields

    def _device_type(self, settings: "ScoreSettings") -> str | None:
        return settings.resolved_device().type if self.device_dependent else None

    @abc.abstractmethod
    def build(self, arch, settings: "ScoreSettings", device: "torch.device | str" = "cpu") -> "torch.nn.Module":
        """The model of ``arch`` built under ``settings.seed``, on ``device``, in ``settings.dtype``."""

    @abc.abstractmethod
    def inputs(self, settings: "ScoreSettings", device: "torch.device | str" = "cpu") -> "torch.Tensor": ...

    @abc.abstractmethod
    def targets(self, settings: "ScoreSettings", device: "torch.device | str" = "cpu") -> "torch.Tensor":
        """Labels for loss-based metrics, aligned with ``inputs`` (next tokens, masked-LM labels)."""

    def memory_estimate(self, arch, settings: "ScoreSettings", backward: bool) -> MemoryEstimate | None:
        """What scoring ``arch`` under ``settings`` takes (with gradients when ``backward``), computed
        without building the model; None where the space's models are small enough never to matter."""
        return None

    # --- enumeration and budgets (config spaces) ---------------------------------------------------
    def grid_size(self) -> int | None:
        """How many architectures :meth:`enumerate` would go through (an upper bound before constraints),
        or None where the space cannot be enumerated (generated spaces: recipes, per-layer genotypes)."""
        return None

    def enumerate(self):
        """Every architecture of the space, in a fixed order."""
        raise TrainfreeError(f"space {self.name!r} cannot be enumerated (its architectures are generated, not a "
                             f"grid of choices); search it with random, evolution or nsga2")

    def footprint(self, arch) -> dict[str, float]:
        """What an architecture costs to serve: ``params`` (every parameter) and ``kv_per_token`` (key and
        value cache entries one token adds, over all layers), for budgets such as ``--max-memory``."""
        raise TrainfreeError(f"space {self.name!r} gives no size footprint for memory budgets")

    def describe(self, arch) -> str:
        """A short human form of ``arch`` (e.g. ``6L-256d-4h/2kv-1024ff``); the id where the space has none."""
        return self.arch_id(arch)[:12]

    def param_counts(self, probe) -> dict[str, int]:
        """Parameter counts by role, of the probe's model (:func:`count_parameters`); a space whose models
        are large overrides this to count without building them."""
        return count_parameters(self, probe.model)

    def shape(self, arch, settings: "ScoreSettings") -> dict:
        raise self._missing("shape")

    def batched(self, metrics, settings: "ScoreSettings") -> Batched | None:
        """A batched path for an architecture scored with ``metrics`` (Metric objects), or None (the
        default): the scoring loop then builds one probe per architecture."""
        return None

    # --- probe artefacts (provide the ones named in ``provides``) ----------------------------------
    def parameter_groups(self, model) -> dict[str, list]:
        raise self._missing("parameter_groups")

    def hidden_states(self, probe, layer: int) -> "torch.Tensor":
        raise self._missing("hidden_states")

    def activation_kernel(self, probe) -> "torch.Tensor":
        raise self._missing("activation_kernel")

    def activation_codes(self, probe):
        raise self._missing("activation_codes")

    def transformer_parts(self, model) -> dict[str, list]:
        raise self._missing("transformer_parts")

    def _missing(self, artefact: str) -> TrainfreeError:
        return TrainfreeError(f"space {self.name!r} does not provide the {artefact!r} artefact")


def count_parameters(space: SearchSpace, model) -> dict[str, int]:
    """``params`` (every parameter once, tied ones once), ``nonembedding`` (those outside the space's
    'embedding' group) and ``embedding``, and ``attention`` / ``ffn`` where the space provides its
    transformer parts. Works on a model built on the meta device (no memory)."""
    params = list(model.parameters())
    out = {"params": sum(p.numel() for p in params)}
    if "parameter_groups" in space.provides:
        embedding = {id(p) for p in space.parameter_groups(model)["embedding"]}
        out["nonembedding"] = sum(p.numel() for p in params if id(p) not in embedding)
        out["embedding"] = out["params"] - out["nonembedding"]
    if "transformer_parts" in space.provides:
        parts = space.transformer_parts(model)
        out["attention"] = sum(p.numel() for p in parts["attention"])
        out["ffn"] = sum(p.numel() for p in parts["ffn"])
    return out


def check_settings(space: SearchSpace, settings: "ScoreSettings") -> None:
    """A setting the space does not use must keep its default (it would change the fingerprint and
    nothing else); the dtype must be one the models run in; the device must exist."""
    from trainfree.config import ScoreSettings

    default = ScoreSettings()
    for name in SETTING_FIELDS:
        if name not in space.uses and name != "device" and getattr(settings, name) != getattr(default, name):
            raise TrainfreeError(f"space {space.name!r} does not use the {name} setting (got "
                                 f"{getattr(settings, name)!r}); leave it at {getattr(default, name)!r}")
    if settings.dtype not in DTYPES:
        raise TrainfreeError(f"unknown dtype {settings.dtype!r}; choose from: {', '.join(DTYPES)}")
    settings.resolved_device()

