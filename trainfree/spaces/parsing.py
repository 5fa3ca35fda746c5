"""What every architecture parser shares: JSON read within fixed limits, integers that are integers,
unknown fields named with the closest valid one, and values quoted in messages by a bounded prefix.
No torch here. The limits are documented in docs/spaces.md ("Input limits").
"""
from __future__ import annotations

import difflib
import json
import re
import reprlib
from collections.abc import Mapping
from typing import Any, Callable, Iterable

from trainfree.errors import InvalidArchitecture

#: characters (bytes, for bytes) of JSON text a parser reads; the longest shipped recipe has 1,014
MAX_JSON_CHARS = 1 << 20
#: nested objects and arrays; the deepest shipped form (a NAS-Bench-BERT config) has 4
MAX_JSON_DEPTH = 16
#: values (containers and scalars) in an already-decoded architecture; text is bounded by its length
MAX_JSON_ITEMS = 1 << 17
#: characters of a value quoted in an error message
QUOTE_CHARS = 80


class _Repr(reprlib.Repr):
    def repr_int(self, x, level):  # str() of a >4300-digit int raises ValueError; say how big it is
        return repr(x) if x.bit_length() <= 256 else f"<a {x.bit_length()}-bit integer>"


_REPR = _Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, QUOTE_CHARS, QUOTE_CHARS, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def quote(value: Any) -> str:
    """``repr(value)`` cut to QUOTE_CHARS characters, never descending more than 3 levels into it."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a foreign object whose repr fails: its type is enough
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."


def fail(where: str, msg: str) -> InvalidArchitecture:
    return InvalidArchitecture(f"{where}: {msg}" if where else msg)


# a JSON string (or an unterminated one, to the end): possessive, so the scan stays linear
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def _text_depth(text: str) -> int:
    depth = deepest = 0
    for b in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if b in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                break
    return deepest


def check_value(value: Any, where: str) -> None:
    """An already-decoded value: at most MAX_JSON_DEPTH levels and MAX_JSON_ITEMS values (also ends
    a walk through a container that contains itself)."""
    stack, seen = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_JSON_ITEMS:
            raise fail(where, f"more than {MAX_JSON_ITEMS} values")
        if isinstance(item, (Mapping, list, tuple)):
            if depth > MAX_JSON_DEPTH:
                raise fail(where, f"nested deeper than {MAX_JSON_DEPTH} levels")
            children = list(item.values()) if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children[: MAX_JSON_ITEMS + 1])


def load_json(source: Any, where: str, object_pairs_hook: Callable | None = None) -> Any:
    """JSON text (str or bytes) decoded once its length and nesting are checked; any other value
    checked for depth and size and returned as it is."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) > MAX_JSON_CHARS:
            raise fail(where, f"the JSON text is {len(source)} bytes, above the limit of {MAX_JSON_CHARS}")
        try:
            source = bytes(source).decode(json.detect_encoding(source), "surrogatepass")
        except UnicodeDecodeError as err:
            raise fail(where, f"not valid JSON ({err})") from None
    if not isinstance(source, str):
        check_value(source, where)
        return source
    if len(source) > MAX_JSON_CHARS:
        raise fail(where, f"the JSON text is {len(source)} characters, above the limit of {MAX_JSON_CHARS}")
    if _text_depth(source) > MAX_JSON_DEPTH:
        raise fail(where, f"the JSON text nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(source, object_pairs_hook=object_pairs_hook)
    except InvalidArchitecture as err:
        raise fail(where, str(err)) from None
    except (ValueError, RecursionError) as err:  # RecursionError: kept for safety, the depth check comes first
        raise fail(where, f"not valid JSON ({str(err)[:QUOTE_CHARS]})") from None


def load_object(source: Any, where: str = "") -> Mapping:
    """``source`` (JSON text or an already-decoded value) as a mapping within the limits."""
    data = load_json(source, where)
    if not isinstance(data, Mapping):
        raise fail(where, f"expected a JSON object, got {type(data).__name__}")
    return data


def reject_unknown(mapping: Mapping, allowed: Iterable[str], where: str, at: str = "") -> None:
    """Raise for the first key of ``mapping`` not in ``allowed``, naming the closest allowed key."""
    allowed = tuple(allowed)
    for key in mapping:
        if key in allowed:
            continue
        close = difflib.get_close_matches(key, allowed, n=1) if isinstance(key, str) and len(key) <= 100 else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise fail(where, f"{at}unknown field {quote(key)}{hint} (fields: {', '.join(allowed)})")


def integer(value: Any, where: str, name: str, lo: int, hi: int) -> int:
    """``value`` if it is an int (not a bool, not a float such as 256.0) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(where, f"{name}: expected an integer, got {type(value).__name__} {quote(value)}")
    if not lo <= value <= hi:
        raise fail(where, f"{name}: {quote(value)} is outside [{lo}, {hi}]" +
                   (" (see 'Input limits' in docs/spaces.md)" if value > hi else ""))
    return value


def exact_choice(value: Any, options: Iterable) -> bool:
    """``value`` equals one of ``options`` and has its type (so 256.0 and True match no int)."""
    return any(type(value) is type(o) and value == o for o in options)
