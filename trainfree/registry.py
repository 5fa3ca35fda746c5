"""A small name -> object registry: duplicate and unknown names raise, listing the choices."""
from __future__ import annotations

import difflib
from typing import Generic, Iterable, Iterator, TypeVar

from trainfree.errors import UnknownName

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


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
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
