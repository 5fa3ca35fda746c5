"""A space made in Python from a plain factory ``config -> nn.Module``, for users without `transformers`.

An architecture is a flat JSON object of config values, each one of its field's declared choices
(``{"d_model": [64, 128], "n_layer": [1, 2, 3]}``); its id is the sha1 of its canonical JSON. The
model is ``factory(config)`` built under ``torch.manual_seed(settings.seed)``. Every factory model
gives ``params``; with ``vocab_size`` (the module maps a (B, T) token batch to (B, T, vocab_size)
logits, or an output with ``.logits``) the classic loss proxies run on its next-token cross-entropy.
The space lives in the Python session that made it, so it scores in-process (``jobs=1``).
"""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from trainfree.config import ScoreSettings
from trainfree.errors import TrainfreeError
from trainfree.spaces.base import SearchSpace
from trainfree.spaces.config_arch import FactoryArch
from trainfree.spaces.choices import GeneChooser, RandomChooser
from trainfree.spaces.parsing import exact_choice, fail, load_object, quote, reject_unknown

#: the metrics every factory model supports, and those that need its LM loss
SIZE_METRICS = ("params",)
LOSS_METRICS = ("grad_norm", "snip", "grasp", "zico")
JSON_TYPES = (bool, int, float, str, type(None))


class FactoryModel:
    """Marker base for the wrapped module (defined lazily so that this module imports without torch)."""


def _wrap(module, vocab_size: int | None):
    import torch
    import torch.nn.functional as F

    class Wrapped(torch.nn.Module, FactoryModel):
        batch_dim = 0  # the proxies split token batches along it

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, tokens):
            return self.inner(tokens)

        def proxy_loss(self, tokens, targets, activation_hook=None):
            """Mean next-token cross-entropy of the module's logits."""
            if vocab_size is None:
                raise TrainfreeError("this factory space has no vocab_size, so its models have no LM loss")
            out = self.inner(tokens)
            logits = getattr(out, "logits", out)
            if not isinstance(logits, torch.Tensor) or logits.shape[:-1] != tokens.shape or logits.shape[-1] != vocab_size:
                shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                raise TrainfreeError(f"the factory's module returned {shape} for tokens of shape {tuple(tokens.shape)}; "
                                     f"the loss needs logits of shape (*tokens.shape, vocab_size={vocab_size})")
            return F.cross_entropy(logits.reshape(-1, vocab_size).float(), targets.reshape(-1))

    return Wrapped(module)


def factory_identity(factory, version: str | None = None) -> dict:
    """What identifies a factory's models: its qualified name, and the given ``version`` or else the
    SHA-1 of its source (of its code object where the source cannot be read, e.g. in a REPL)."""
    import hashlib
    import inspect

    target = getattr(factory, "__func__", factory)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(target).__qualname__)}"
    if version is not None:
        return {"name": name, "version": version}
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        code = getattr(target, "__code__", None) or getattr(getattr(target, "__call__", None), "__code__", None)
        source = _code_text(code) if code is not None else type(target).__qualname__
    return {"name": name, "source_sha1": hashlib.sha1(source.encode()).hexdigest()[:16]}


def _code_text(code) -> str:
    """A code object's bytecode, names and constants (nested code objects in turn), without addresses."""
    consts = [_code_text(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts]
    return repr((code.co_code.hex(), code.co_names, code.co_varnames, consts))


class FactorySpace(SearchSpace):
    """A search space over ``choices`` whose models ``factory(config)`` makes; see the module docstring."""

    in_process_only = True

    #: every setting but the size preset (the factory decides the model's size)
    uses = frozenset({"seed", "corpus", "split", "batch_size", "seq_len", "offset", "dtype", "device"})

    def __init__(self, name: str, factory: Callable[[dict], Any], choices: Mapping[str, Sequence],
                 vocab_size: int | None = None, settings: ScoreSettings | None = None, version: str | None = None):
        if not callable(factory):
            raise TrainfreeError(f"space {name!r}: factory must be callable, got {type(factory).__name__}")
        if not choices:
            raise TrainfreeError(f"space {name!r}: declare at least one field and its choices")
        fields = {}
        for field, options in choices.items():
            options = list(options) if not isinstance(options, (str, bytes)) else []
            if not isinstance(field, str) or not options:
                raise TrainfreeError(f"space {name!r}: field {quote(field)}: give a non-empty list of choices")
            for o in options:
                if not isinstance(o, JSON_TYPES):
                    raise TrainfreeError(f"space {name!r}: field {field!r}: choice {quote(o)} is not a JSON scalar")
            fields[field] = options
        if vocab_size is not None and (isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2):
            raise TrainfreeError(f"space {name!r}: vocab_size must be an integer of at least 2, got {quote(vocab_size)}")
        if version is not None and not isinstance(version, str):
            raise TrainfreeError(f"space {name!r}: version must be a string, got {quote(version)}")
        self.name, self.factory, self.choices, self.vocab_size = name, factory, fields, vocab_size
        self.factory_identity = factory_identity(factory, version)
        self._settings = settings or ScoreSettings(size="paper", corpus="wikitext-2", batch_size=8, seq_len=32)
        self.metrics = SIZE_METRICS + (LOSS_METRICS if vocab_size is not None else ())
        #: the probe artefacts it provides (trainfree.spaces.base.ARTEFACTS): what its metrics require
        self.provides = frozenset({"parameters"} | ({"forward", "lm_loss"} if vocab_size is not None else set()))
        self.default_metrics = ("params", "snip") if vocab_size is not None else ("params",)

    def register(self) -> "FactorySpace":
        """Make the space known by name for this session (``get_space``, ``trainfree.api``); returns it."""
        from trainfree.spaces import SPACES, register_space

        if self.name not in SPACES or SPACES.get(self.name).load() is not self:
            register_space(self, self.name, description=f"factory space {self.name}", sizes=("paper",),
                           provides=self.provides)  # another space of this name raises here
        return self

    # --- identity and JSON
    def arch_id(self, arch: FactoryArch) -> str:
        return arch.arch_id

    def canonical_json(self, arch: FactoryArch) -> str:
        return arch.canonical_json()

    def to_json(self, arch: FactoryArch) -> str:
        return json.dumps(arch.to_dict())

    def from_json(self, text, where: str = "") -> FactoryArch:
        data = load_object(text, where)
        reject_unknown(data, self.choices, where)
        items = []
        for field, options in self.choices.items():
            if field not in data:
                raise fail(where, f"missing field {field!r} (fields: {', '.join(self.choices)})")
            if not exact_choice(data[field], options):
                raise fail(where, f"{field}: {quote(data[field])} is not one of {quote(options)}")
            items.append((field, data[field]))
        return FactoryArch(tuple(items))

    # --- generation, through the shared chooser
    def _generate(self, chooser) -> FactoryArch:
        return FactoryArch(tuple((f, chooser.pick(opts)) for f, opts in self.choices.items()))

    def sample(self, rng: np.random.Generator) -> FactoryArch:
        return self._generate(RandomChooser(rng))

    def mutate(self, arch: FactoryArch, rng: np.random.Generator) -> FactoryArch:
        """One field with more than one choice moved to another of its choices (the same config when none has)."""
        chooser = RandomChooser(rng)
        free = [f for f, opts in self.choices.items() if len(opts) > 1]
        if not free:
            return arch
        field = chooser.pick(free)
        config = arch.config
        config[field] = chooser.pick([o for o in self.choices[field] if not exact_choice(o, [config[field]])])
        return FactoryArch(tuple((f, config[f]) for f in self.choices))

    @property
    def n_genes(self) -> int:
        return len(self.choices)

    def decode(self, genes) -> FactoryArch:
        return self._generate(GeneChooser(genes))

    def features(self, arch: FactoryArch) -> frozenset:
        return frozenset((f, json.dumps(v)) for f, v in arch.items)

    def factors(self, arch: FactoryArch) -> dict[str, object]:
        return arch.config

    # --- models and inputs
    def default_settings(self) -> ScoreSettings:
        return self._settings

    def identity(self, settings: ScoreSettings) -> dict:
        """The settings' identity and the factory's (its qualified name and the hash of its source, or
        the version given): a changed factory never reuses the scores of the old one."""
        return {**super().identity(settings), "factory": self.factory_identity}

    def check(self, settings: ScoreSettings) -> None:
        from trainfree.data.corpora import ranked_window
        from trainfree.spaces.base import check_settings

        check_settings(self, settings)
        ranked_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len, settings.offset)

    def build(self, arch: FactoryArch, settings: ScoreSettings, device="cpu"):
        import torch

        with torch.random.fork_rng(devices=[]):  # the caller's generator is left as it was
            torch.manual_seed(settings.seed)
            module = self.factory(arch.config)
        if not isinstance(module, torch.nn.Module):
            raise TrainfreeError(f"space {self.name!r}: the factory returned {type(module).__name__}, not a torch.nn.Module")
        return _wrap(module, self.vocab_size).to(device=device, dtype=getattr(torch, settings.dtype))

    def _window(self, settings: ScoreSettings, device):
        import torch

        from trainfree.data.corpora import ranked_window

        w = torch.as_tensor(ranked_window(settings.corpus, settings.split, settings.batch_size, settings.seq_len,
                                          settings.offset), device=device)
        # frequency ranks: words beyond the vocabulary share its last id, as an unknown-word bucket would
        return w.clamp(max=self.vocab_size - 1) if self.vocab_size else w

    def inputs(self, settings: ScoreSettings, device="cpu"):
        """(B, T) frequency-ranked word ids of the corpus window."""
        return self._window(settings, device)[:, :-1]

    def targets(self, settings: ScoreSettings, device="cpu"):
        return self._window(settings, device)[:, 1:]
