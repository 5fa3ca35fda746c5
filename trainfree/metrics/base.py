"""The metric registry and the per-architecture Probe that metrics share.

A metric states the probe artefacts it ``requires`` (keys of ``trainfree.spaces.base.ARTEFACTS``)
and applies to every registered space that provides them. Old names of merged metrics stay valid as
aliases: ``get_metric(alias)`` is the merged metric under the alias's name, same function and version,
so scores stored under the old name are found again.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from trainfree.errors import TrainfreeError
from trainfree.probe import Probe
from trainfree.records import orient
from trainfree.registry import Registry

@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[["Probe"], float]
    higher_is_better: bool
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
    #: whether it takes gradients (a backward pass): the memory guard counts them
    backward: bool = False
    #: whether it reads only the space's parameter counts (``Probe.param_counts``): where a space counts
    #: without building the model (``counts_without_building``), the memory guard lets it through
    counts_only: bool = False

    def __call__(self, probe: "Probe") -> float:
        return float(self.fn(probe))

    @property
    def module(self) -> str:
        """The module whose code computes the metric."""
        return getattr(self.fn, "__module__", "") or ""

    @property
    def key_version(self) -> str:
        """The version under which its values are stored: the version, and for code from outside
        trainfree (a plug-in) the module that registered it, so that a plug-in's values never take a
        built-in's key (or another plug-in's)."""
        module = self.module
        if module == "trainfree" or module.startswith("trainfree."):
            return self.version
        return f"{module}:{self.version}"

    def orient(self, value):
        """``value`` turned so that higher is better (:func:`trainfree.records.orient`)."""
        return orient(value, self.higher_is_better)

    def applies_to(self, space) -> bool:
        """Whether ``space`` (a space object or a registered name) provides every artefact this metric
        requires and, where the space lists the metrics it supports, lists it."""
        return not _unfit(self, space)

    @property
    def spaces(self) -> tuple[str, ...]:
        """The registered spaces this metric applies to."""
        from trainfree.spaces import space_names

        return tuple(s for s in space_names() if self.applies_to(s))


def _unfit(metric: Metric, space) -> str:
    """Why ``metric`` does not apply to ``space`` ('' when it does)."""
    if isinstance(space, str):
        from trainfree.spaces import space_entry

        entry = space_entry(space)
        provides, listed = entry.provides, getattr(entry._space, "metrics", None)
    else:
        provides, listed = space.provides, getattr(space, "metrics", None)
    missing = sorted(metric.requires - provides)
    if missing:
        return f"the space does not provide {', '.join(missing)}"
    if listed is not None and metric.name not in listed:
        return f"the space supports only {', '.join(listed)}"
    return ""


def check_applies(metric: Metric, space) -> None:
    """The one applicability check: raise naming what ``space`` lacks when ``metric`` does not apply."""
    why = _unfit(metric, space)
    if why:
        name = space if isinstance(space, str) else space.name
        raise TrainfreeError(f"metric {metric.name!r} does not apply to space {name!r}: {why} (it applies to "
                             f"{', '.join(metric.spaces) or 'no space'})")


METRICS: Registry[Metric] = Registry("metric", module_of=lambda m: getattr(m.fn, "__module__", "") or "")
#: old name -> the merged metric's name
ALIASES: dict[str, str] = {}
#: name prefix (ending in ``:``) or exact name -> a function making the metric such a name stands for
#: (``combo:PATH`` and the shipped combinations: trainfree.metrics.combo)
RESOLVERS: dict[str, Callable[[str], Metric]] = {}


def metric(name: str, *, higher_is_better: bool, requires: set[str], version: str = "1",
           published_column: str | None = None, published_sign: int = 1, deterministic: bool = True,
           backward: bool = False, counts_only: bool = False):
    """Register ``fn(probe) -> float`` as a metric. The first docstring line is its description.
    ``requires``: the probe artefacts it reads (``trainfree.spaces.base.ARTEFACTS``); it applies to
    every space that provides them all. ``backward``: it takes gradients (the memory guard counts them)."""
    from trainfree.spaces.base import ARTEFACTS

    if isinstance(requires, str):
        raise TrainfreeError(f"metric {name!r}: requires must be a set of artefact names, got the string {requires!r}")
    unknown = set(requires) - set(ARTEFACTS)
    if unknown or not requires:
        raise TrainfreeError(f"metric {name!r}: requires {sorted(unknown) or 'nothing'}; choose from {sorted(ARTEFACTS)}")

    def register(fn: Callable[["Probe"], float]) -> Callable[["Probe"], float]:
        if name in ALIASES:
            raise TrainfreeError(f"metric {name!r} is already registered as an alias of {ALIASES[name]!r}")
        doc = (fn.__doc__ or "").strip().splitlines()
        METRICS.add(name, Metric(name, fn, higher_is_better, frozenset(requires), version, doc[0] if doc else "",
                                 published_column, published_sign, deterministic, backward=bool(backward),
                                 counts_only=bool(counts_only)))
        return fn

    return register


def alias(old: str, of: str) -> None:
    """Keep ``old`` valid for the merged metric ``of`` (same function, version and values)."""
    METRICS.get(of)  # the target exists
    if old in METRICS or old in ALIASES:
        raise TrainfreeError(f"metric {old!r} is already registered")
    ALIASES[old] = of


def get_metric(name: str) -> Metric:
    from trainfree.registry import ensure_plugins

    ensure_plugins()
    for prefix, resolve in RESOLVERS.items():  # a name that stands for a file (combo:PATH, metrics.combo)
        if isinstance(name, str) and (name == prefix or (prefix.endswith(":") and name.startswith(prefix))):
            return resolve(name)
    if name in ALIASES:
        return replace(METRICS.get(ALIASES[name]), name=name, alias_of=ALIASES[name])
    return METRICS.get(name)


def metric_versions() -> dict[str, str]:
    """Every valid metric name (aliases included) -> the version its values are stored under."""
    names = [m.name for m in METRICS] + list(ALIASES)
    return {n: get_metric(n).key_version for n in names}
