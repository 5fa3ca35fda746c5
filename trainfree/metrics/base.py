"""The metric registry and the per-architecture Probe that metrics share."""
from __future__ import annotations

from dataclasses import dataclass, field
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
    spaces: tuple[str, ...]
    version: str
    description: str
    #: the column of the paper's published CSV that holds this metric, if any, and its sign there
    published_column: str | None = None
    published_sign: int = 1
    #: False for measurements (latency): the same seed need not give the same number
    deterministic: bool = True

    def __call__(self, probe: "Probe") -> float:
        return float(self.fn(probe))


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str, *, higher_is_better: bool, needs: set[str], spaces: tuple[str, ...],
           version: str = "1", published_column: str | None = None, published_sign: int = 1,
           deterministic: bool = True):
    """Register ``fn(probe) -> float`` as a metric. The first docstring line is its description."""
    unknown = set(needs) - NEEDS
    if unknown:
        raise ValueError(f"metric {name!r}: unknown needs {sorted(unknown)}; choose from {sorted(NEEDS)}")

    def register(fn: Callable[["Probe"], float]) -> Callable[["Probe"], float]:
        doc = (fn.__doc__ or "").strip().splitlines()
        METRICS.add(name, Metric(name, fn, higher_is_better, frozenset(needs), tuple(spaces), version,
                                 doc[0] if doc else "", published_column, published_sign, deterministic))
        return fn

    return register


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


@dataclass
class Probe:
    """One architecture's context: the seeded model, the input batch, and a cache of shared artefacts.

    Artefacts (layer outputs, gradients, ...) are computed on first use and reused by every metric
    scored on the same probe, so ten metrics cost one forward pass.
    """

    arch: Any
    space: Any  # a SearchSpace: builds models and inputs
    settings: ScoreSettings
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
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
