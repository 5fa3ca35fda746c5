"""A small name -> object registry: duplicate and unknown names raise, listing the choices."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from trainfree.errors import DuplicateName, UnknownName

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choices, or ''."""
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UnknownName:
    """The error for a name that is not among ``choices``: the closest ones first, then them all."""
    choices = sorted(choices)
    return UnknownName(f"unknown {kind} {name!r}{did_you_mean(name, choices)}; choose from: "
                       f"{', '.join(choices) or '(none)'}")


#: every registry made, so that plug-in bookkeeping can ask each which modules registered into it
_REGISTRIES: list["Registry"] = []


class Registry(Generic[T]):
    def __init__(self, kind: str, module_of: Callable[[T], str] | None = None):
        """``module_of`` tells which module an item comes from (for worker processes to import)."""
        self.kind = kind
        self._items: dict[str, T] = {}
        self.module_of = module_of
        _REGISTRIES.append(self)

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise DuplicateName(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise unknown_name(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


# --- plug-ins ---------------------------------------------------------------------------------------
# A plug-in is a module that registers spaces and metrics when imported. It is named by an entry point
# (groups below), by `trainfree --plugin MODULE`, by $TRAINFREE_PLUGINS (comma-separated) or by
# load_plugins(); worker processes load the same list before they score (trainfree.executors).

ENTRY_POINT_GROUPS = ("trainfree.spaces", "trainfree.metrics")
PLUGINS_ENV = "TRAINFREE_PLUGINS"

_loaded: list[str] = []  # modules loaded by name, in order: what a worker must load too
#: (loader "module:function", argument) pairs a worker must also run, e.g. a space file's text
_sources: list[tuple[str, str]] = []
_ensured = False


def load_plugins(modules=()) -> list[str]:
    """Import each plug-in module once (a name already imported is not run again); returns them all."""
    import importlib

    from trainfree.errors import TrainfreeError

    for module in modules:
        if isinstance(module, tuple):  # a worker source (add_worker_source): call its loader
            _run_source(*module)
            continue
        module = module.strip()
        if not module or module in _loaded:
            continue
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise TrainfreeError(f"plug-in {module!r} cannot be imported: {err}") from None
        except Exception as err:  # noqa: BLE001 - whatever the plug-in's own code raised, named once
            raise TrainfreeError(f"plug-in {module!r} failed while loading: {type(err).__name__}: "
                                 f"{_short(err)}") from None
        _loaded.append(module)
    return list(_loaded)


def _short(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + "..."


def add_worker_source(loader: str, argument: str) -> None:
    """Have worker processes call ``loader(argument)`` before they score (``loader``: "module:function"),
    e.g. to rebuild a space registered from a file the workers may not see."""
    if (loader, argument) not in _sources:
        _sources.append((loader, argument))


def _run_source(loader: str, argument: str) -> None:
    import importlib

    module, _, function = loader.partition(":")
    getattr(importlib.import_module(module), function)(argument)


def ensure_plugins() -> None:
    """Load the entry-point plug-ins and $TRAINFREE_PLUGINS, once per process."""
    global _ensured
    if _ensured:
        return
    _ensured = True  # first: a plug-in that looks a space up while loading must not recurse here
    import os
    from importlib.metadata import entry_points

    from trainfree.errors import TrainfreeError

    for group in ENTRY_POINT_GROUPS:
        for ep in entry_points(group=group):
            try:
                ep.load()  # importing the module registers its spaces and metrics
            except Exception as err:  # a broken third-party package names itself
                raise TrainfreeError(f"plug-in entry point {ep.name!r} ({ep.value}, group {group}) failed to "
                                     f"load: {type(err).__name__}: {_short(err)}") from None
    load_plugins(os.environ.get(PLUGINS_ENV, "").split(","))


def plugin_modules() -> list:
    """The modules a worker process must import to know every space and metric registered here: those
    loaded as plug-ins, and the (importable) modules of items registered from outside trainfree, e.g.
    by a user's module imported before scoring; then the worker sources (loader, argument) pairs."""
    found = list(_loaded)
    owners = [r.module_of(item) for r in _REGISTRIES if r.module_of is not None for item in r]
    for module in owners:
        if module and module.split(".")[0] != "trainfree" and module not in ("__main__", "__mp_main__") \
                and module not in found:
            found.append(module)
    return found + list(_sources)
