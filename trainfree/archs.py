"""Architectures of one's own: a JSON-lines file (or a `trainfree search --output` JSON) or a Python list,
turned into the ``(name, arch)`` items the scoring loop takes.

A line (or list item) is the architecture itself, in whatever form the space's parser takes, or an
object ``{"name": ..., "arch": ...}``; without a name an architecture is named by its id. Two items
with one name are refused, listing the names.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable

from trainfree.errors import InvalidArchitecture, TrainfreeError

WRAPPER_KEYS = {"name", "arch"}
#: characters of an architecture's name
MAX_NAME = 1000


def _named(value: Any) -> tuple[str | None, Any]:
    """(name or None, architecture) for a decoded line or list item."""
    if isinstance(value, tuple) and len(value) == 2:
        return value[0], value[1]
    if isinstance(value, Mapping) and "arch" in value and set(value) <= WRAPPER_KEYS:
        return value.get("name"), value["arch"]
    return None, value


def _item(space, value: Any, where: str) -> tuple[str, object]:
    name, raw = _named(value)
    if name is not None and (isinstance(name, bool) or not isinstance(name, (str, int))):
        raise InvalidArchitecture(f"{where}: name: expected a string, got {type(name).__name__}")
    if isinstance(name, str):
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\\ud800"): no file or store could hold it
            raise InvalidArchitecture(f"{where}: name: not valid Unicode text (a lone surrogate escape)") from None
        if len(name) > MAX_NAME:
            raise InvalidArchitecture(f"{where}: name: longer than {MAX_NAME} characters")
    arch = raw if _is_parsed(space, raw) else space.from_json(raw, where)
    return (str(name) if name is not None else space.arch_id(arch)), arch


def _is_parsed(space, value: Any) -> bool:
    """An architecture object already (what the space's parser returns), not its JSON form."""
    if isinstance(value, (str, bytes, bytearray, Mapping, list)):
        return False
    try:
        space.arch_id(value)
    except Exception:
        return False
    return True


def _check_unique(items: list[tuple[str, object]], where: str, places: list[str]) -> list[tuple[str, object]]:
    """Refuse names given twice, each listed with (up to five of) the places it occurs (``places``: one
    per item); at most ten names are shown."""
    from trainfree.spaces.parsing import quote

    at: dict[str, list[str]] = {}
    for (name, _), place in zip(items, places):
        at.setdefault(name, []).append(place)
    dup = [f"{quote(n)} ({', '.join(p[:5])}{f' and {len(p) - 5} more' if len(p) > 5 else ''})"
           for n, p in at.items() if len(p) > 1]
    if dup:
        shown = ", ".join(dup[:10]) + (f" and {len(dup) - 10} more" if len(dup) > 10 else "")
        raise TrainfreeError(f"{where}: duplicate architecture names: {shown} (give each line its own \"name\")")
    return items


def from_list(space, archs: Iterable[Any]) -> list[tuple[str, object]]:
    """Architecture objects, dicts, JSON strings, ``{"name", "arch"}`` objects or (name, arch) pairs."""
    items = [_item(space, a, f"archs[{i}]") for i, a in enumerate(archs)]
    if not items:
        raise TrainfreeError("archs: the list holds no architectures")
    return _check_unique(items, "archs", [f"archs[{i}]" for i in range(len(items))])


def read_archs(path: str | Path, space, limit: int | None = None) -> list[tuple[str, object]]:
    """The ``(name, arch)`` items of a JSON-lines file (the first ``limit`` of them: the rest of the file
    is not read), or the trials of a search output JSON (their architectures, once each, named by id).
    Blank and ``#`` lines are skipped; lines end at a newline only (a U+2028 inside a JSON string is
    text), and a UTF-8 byte-order mark is allowed."""
    path = Path(path)
    try:
        if not path.is_file():
            raise TrainfreeError(f"--archs {path}: " + ("no such file" if not path.exists() else
                                                       "not a regular file (a folder, a device or a pipe)"))
        fh = open(path, encoding="utf-8-sig", newline="")
    except OSError as err:
        raise TrainfreeError(f"--archs {path}: cannot read ({err.strerror or err})") from None
    with fh:
        try:
            first = fh.readline()
            while first and not first.strip():
                first = fh.readline()
            if first.strip() == "{":  # one pretty-printed object: a `trainfree search --output` JSON
                search = _search_output(first + fh.read())
                if search is not None:
                    items = _search_trials(search, space, path)
                    return items[:limit] if limit is not None else items
                raise InvalidArchitecture(f"{path}: a multi-line JSON object that is not a search output; give one "
                                          f"architecture a line")
            return _lines(space, path, [first], fh, limit)
        except UnicodeDecodeError as err:
            raise TrainfreeError(f"--archs {path}: not UTF-8 text ({err})") from None


def _lines(space, path: Path, head: list[str], rest, limit: int | None) -> list[tuple[str, object]]:
    import itertools

    items, places = [], []
    for number, line in enumerate(itertools.chain(head, rest), 1):
        if limit is not None and len(items) >= limit:
            break
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            value = json.loads(stripped)
        except RecursionError:
            raise InvalidArchitecture(f"{where}: nested too deeply") from None
        except ValueError as err:
            raise InvalidArchitecture(f"{where}: not valid JSON ({str(err)[:200]})") from None
        items.append(_item(space, value, where))
        places.append(f"line {number}")
    if not items:
        raise TrainfreeError(f"--archs {path}: no architectures (one JSON value a line; blank and # lines are skipped)")
    return _check_unique(items, str(path), places)


def _search_output(text: str) -> dict | None:
    """The decoded file when it is one JSON object with trials (what `trainfree search --output` writes)."""
    head = text.lstrip()
    if not head.startswith("{") or "\n" not in head.rstrip():  # a one-line object is a JSON-lines file
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("trials"), list) else None


def _search_trials(data: dict, space, path: Path) -> list[tuple[str, object]]:
    if data.get("space") != space.name:
        raise TrainfreeError(f"--archs {path}: a search over space {data.get('space')!r}, not {space.name!r}")
    seen: dict[str, object] = {}
    for i, trial in enumerate(data["trials"]):
        if not isinstance(trial, dict) or "arch" not in trial:
            raise TrainfreeError(f"--archs {path}: trials[{i}] holds no architecture (\"arch\")")
        arch = space.from_json(trial["arch"], f"{path}: trials[{i}]")
        seen.setdefault(space.arch_id(arch), arch)
    if not seen:
        raise TrainfreeError(f"--archs {path}: the search holds no trials")
    return list(seen.items())
