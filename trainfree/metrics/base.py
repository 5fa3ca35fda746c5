"""The metric registry and the per-architecture Probe that metrics share.

A metric states the probe artefacts it ``requires`` (keys of ``trainfree.spaces.base.ARTEFACTS``)
and applies to every registered space that provides them. Old names of merged metrics stay valid as
aliases: ``get_metric(alias)`` is the merged metric under the alias's name, same function and version,
so scores stored under the old name are found again.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from trainfree.config import ScoreSettings
from trainfree.registry import Registry

#: what a metric may need from the probe
NEEDS = frozenset({"forward", "hidden_states", "gradients", "labels", "activations", "weights"})


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[["Probe"], float]
    higher_is_better: bool
    needs: frozenset[str]
    requires: frozenset[str]  # the probe artefacts a space must provide
    version: str
    description: str
    #: the column of the paper's published CSV that holds this metric, if any, and its sign there
    published_column: str | None = None
    published_sign: int = 1
    #: False for measurements (latency): the same seed need not give the same number
    deterministic: bool = True
    #: for an alias, the merged metric it resolves to
    alias_of: str | None = None

    def __call__(self, probe: "Probe") -> float:
        return float(self.fn(probe))

    def applies_to(self, space: str) -> bool:
        """Whether the registered space ``space`` provides every artefact this metric requires."""
        from trainfree.spaces import space_entry

        return self.requires <= space_entry(space).provides

    @property
    def spaces(self) -> tuple[str, ...]:
        """The registered spaces this metric applies to."""
        from trainfree.spaces import space_names

        return tuple(s for s in space_names() if self.applies_to(s))


METRICS: Registry[Metric] = Registry("metric", module_of=lambda m: getattr(m.fn, "__module__", "") or "")
#: old name -> the merged metric's name
ALIASES: dict[str, str] = {}
#: name prefix -> a function making the metric such a name stands for (``combo:PATH``: trainfree.metrics.combo)
RESOLVERS: dict[str, Callable[[str], Metric]] = {}


def metric(name: str, *, higher_is_better: bool, needs: set[str], requires: set[str],
           version: str = "1", published_column: str | None = None, published_sign: int = 1,
           deterministic: bool = True):
    """Register ``fn(probe) -> float`` as a metric. The first docstring line is its description.
    ``requires``: the probe artefacts it reads; it applies to every space that provides them all."""
    from trainfree.spaces.base import ARTEFACTS

    unknown = set(needs) - NEEDS
    if unknown:
        raise ValueError(f"metric {name!r}: unknown needs {sorted(unknown)}; choose from {sorted(NEEDS)}")
    unknown = set(requires) - set(ARTEFACTS)
    if unknown or not requires:
        raise ValueError(f"metric {name!r}: requires {sorted(unknown) or 'nothing'}; choose from {sorted(ARTEFACTS)}")

    def register(fn: Callable[["Probe"], float]) -> Callable[["Probe"], float]:
        if name in ALIASES:
            raise ValueError(f"metric {name!r} is already registered as an alias of {ALIASES[name]!r}")
        doc = (fn.__doc__ or "").strip().splitlines()
        METRICS.add(name, Metric(name, fn, higher_is_better, frozenset(needs), frozenset(requires), version,
                                 doc[0] if doc else "", published_column, published_sign, deterministic))
        return fn

    return register


def alias(old: str, of: str) -> None:
    """Keep ``old`` valid for the merged metric ``of`` (same function, version and values)."""
    METRICS.get(of)  # the target exists
    if old in METRICS or old in ALIASES:
        raise ValueError(f"metric {old!r} is already registered")
    ALIASES[old] = of


def get_metric(name: str) -> Metric:
    from trainfree.registry import ensure_plugins

    ensure_plugins()
    for prefix, resolve in RESOLVERS.items():  # a name that stands for a file (combo:PATH, metrics.combo)
        if isinstance(name, str) and name.startswith(prefix):
            return resolve(name)
    if name in ALIASES:
        return replace(METRICS.get(ALIASES[name]), name=name, alias_of=ALIASES[name])
    return METRICS.get(name)


def metric_versions() -> dict[str, str]:
    """Every valid metric name (aliases included) -> its current version."""
    names = [m.name for m in METRICS] + list(ALIASES)
    return {n: get_metric(n).version for n in names}


@dataclass
class Probe:
    """One architecture's context: the seeded model, the input batch, and a cache of shared artefacts.

    Artefacts (layer outputs, gradients, ...) are computed on first use and reused by every metric
    scored on the same probe, so ten metrics cost one forward pass.
    """

    arch: Any
    space: Any  # a SearchSpace: builds models and inputs, provides the artefacts
    settings: ScoreSettings
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: the artefacts the metrics scored on this probe will read, so that a space can compute several
    #: in one pass (NAS-Bench-NLP: activation codes with the layer outputs)
    expected: frozenset = frozenset()
    _cache: dict = field(default_factory=dict, repr=False)

    def cached(self, key, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def model(self) -> torch.nn.Module:
        return self.cached("model", self.fresh_model)

    def fresh_model(self) -> torch.nn.Module:
        """A new copy of the seeded model, for metrics that change weights."""
        return self.space.build(self.arch, self.settings, self.device)

    @property
    def inputs(self) -> torch.Tensor:
        return self.cached("inputs", lambda: self.space.inputs(self.settings, self.device))

    @property
    def targets(self) -> torch.Tensor:
        """Labels for loss-based metrics (next tokens for language models)."""
        return self.cached("targets", lambda: self.space.targets(self.settings, self.device))

    # --- artefacts, computed by the space once per probe --------------------------------------------
    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """The model's parameters by role ('embedding', and the space's own: 'attention', 'ffn', ...)."""
        return self.cached("parameter_groups", lambda: self.space.parameter_groups(self.model))

    def hidden_states(self, layer: int) -> torch.Tensor:
        """(..., units) samples of ``layer``'s hidden state (1-based; -1 the last layer)."""
        return self.space.hidden_states(self, layer)

    def activation_kernel(self) -> torch.Tensor:
        """B x B binary-code kernel, summed over every activation of one clean forward (float64)."""
        return self.space.activation_kernel(self)
