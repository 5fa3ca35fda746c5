"""Benchmarks: architectures paired with trained results read from real files."""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainfree.errors import InvalidBenchmark


def read_text(path: Path) -> str:
    """A whole text file, gunzipped when it ends in .gz; unreadable files raise InvalidBenchmark."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as err:  # zlib.error: corrupt .gz data
        raise InvalidBenchmark(f"{path}: cannot read ({err})") from None


def read_json(path: Path):
    """A whole JSON (or .json.gz) file; bad JSON, nesting too deep for the decoder, or integers beyond
    Python's digit limit raise InvalidBenchmark naming the file (and the line, where json knows it)."""
    text = read_text(path)
    try:
        return json.loads(text)
    except ValueError as err:
        raise InvalidBenchmark(f"{path}: not valid JSON ({err})") from None
    except RecursionError:
        raise InvalidBenchmark(f"{path}: not valid JSON (nested too deeply)") from None


def csv_rows(text: str, path: Path):
    """``(line number, row)`` of a CSV text; a malformed row (a field over csv's 131,072-character limit,
    a stray quote) raises InvalidBenchmark naming the file and line."""
    reader = csv.reader(io.StringIO(text))
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise InvalidBenchmark(f"{path} line {reader.line_num}: not valid CSV ({err})") from None
        yield line, row
        line = reader.line_num + 1


def quote(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about values of any size."""
    if isinstance(value, (dict, list)):
        text = f"a JSON {'object' if isinstance(value, dict) else 'list'}"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 40:
        text = f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"  # str() has a digit limit
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def mapping(value, where: str, field: str, optional: bool = True) -> dict:
    """``value`` when it is a JSON object (``{}`` when None and ``optional``); otherwise InvalidBenchmark
    naming the field."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise InvalidBenchmark(f"{where}: field {field!r} must be a JSON object, got {quote(value)}")
    return value


def finite_or_none(value, where: str, field: str) -> float | None:
    """A number as a finite float; None for a missing or non-finite one (NaN, inf). Anything else that is
    not a number, or an integer beyond float range, raises InvalidBenchmark naming the field."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidBenchmark(f"{where}: field {field!r} must be a number, got {quote(value)}")
    try:
        value = float(value)
    except OverflowError:
        raise InvalidBenchmark(f"{where}: field {field!r}: {quote(value)} is beyond the range of a float") from None
    return value if math.isfinite(value) else None


def number(text: str, where: str, column: str) -> float:
    """A CSV cell as a float ('' is not a number here); digits that overflow to inf are refused, so that
    only a cell spelling inf is infinite."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidBenchmark(f"{where}: column {column!r}: {quote(text)} is not a number") from None
    if math.isinf(value) and "inf" not in text.lower():
        raise InvalidBenchmark(f"{where}: column {column!r}: {quote(text)} is beyond the range of a float")
    return value


def check_unique(names, source) -> None:
    """Refuse a benchmark that names two architectures alike: its targets could not be paired with scores."""
    counts = Counter(names)
    dup = [n for n, c in counts.items() if c > 1]
    if dup:
        shown = ", ".join(quote(n) for n in dup[:10]) + (f" and {len(dup) - 10} more" if len(dup) > 10 else "")
        raise InvalidBenchmark(f"{source}: duplicate architecture names ({len(dup)}): {shown}; each name must be "
                               f"unique to pair scores with trained results")


@dataclass(frozen=True)
class Record:
    name: str  # the benchmark's own name for the run (e.g. the log name)
    arch: Any
    target: float
    extra: dict = field(default_factory=dict, compare=False)


@dataclass
class Benchmark:
    name: str
    space: str
    records: list[Record]
    target: str
    lower_is_better: bool
    skipped: int = 0  # entries without a finite target
    source: str = ""
    corpus: str | None = None  # the corpus the architectures were trained on, when known

    def __len__(self) -> int:
        return len(self.records)

    def head(self, limit: int | None) -> "Benchmark":
        """The first ``limit`` records (all when None)."""
        if limit is None:
            return self
        return Benchmark(self.name, self.space, self.records[:limit], self.target, self.lower_is_better,
                         self.skipped, self.source, self.corpus)

    def only(self, names) -> "Benchmark":
        """The records whose name is in ``names``, in the benchmark's order."""
        keep = set(names)
        return Benchmark(self.name, self.space, [r for r in self.records if r.name in keep], self.target,
                         self.lower_is_better, self.skipped, self.source, self.corpus)

    def targets(self) -> dict[str, float]:
        return {r.name: r.target for r in self.records}
