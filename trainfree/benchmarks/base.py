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
from typing import Any, Callable

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


def csv_table(text: str, path: Path, required, columns, kind: str = "file"):
    """A CSV text with a header: (column index by name, then ``(line, where, row)`` for each non-empty
    line, ``where`` naming the file and line for error messages).
    A missing ``required`` column, or a row with another number of fields, raises InvalidBenchmark
    naming the file and line."""
    rows = csv_rows(text, path)
    header = next(rows, (None, None))[1]
    if header is None:
        raise InvalidBenchmark(f"{path}: the {kind} is empty")
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidBenchmark(f"{path} line 1: missing column(s) {missing}; expected {list(columns)}")

    def body():
        for line, row in rows:
            if not row:
                continue
            where = f"{path} line {line}"
            if len(row) != len(header):
                raise InvalidBenchmark(f"{where}: expected {len(header)} fields, got {len(row)}")
            yield line, where, row

    return {c: header.index(c) for c in header}, body()


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


# -- the format registry ---------------------------------------------------------------------------
#: how much of a file a sniff reads (decompressed): enough for a header or the first record
SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class BenchmarkFormat:
    """A benchmark file format: which paths it claims (by extension, or folders) and a cheap look at
    the content (``sniff``) that tells it from other formats sharing the extension."""

    name: str
    reads: str  # what files it reads, for the user
    suffixes: tuple[str, ...]  # e.g. (".csv", ".csv.gz")
    sniff: Callable[[Path], bool]
    load: Callable[..., Benchmark]  # load(path, name=, target=, setting=)
    folders: bool = False  # also reads a folder
    settings: Callable[[Path], list[str]] | None = None  # a file of several benchmarks, named FILE#SETTING

    def claims(self, path: Path) -> bool:
        if path.is_dir():
            return self.folders
        return path.name.lower().endswith(self.suffixes)


FORMATS: dict[str, BenchmarkFormat] = {}
#: the shipped formats come first, in this order, whichever loader was imported first (sniffing and
#: error messages go through FORMATS in order); other formats follow as registered
SHIPPED_ORDER = ("nasbench-nlp-csv", "nasbench-nlp-logs", "nasbench-bert", "lts", "trainfree-benchmark", "gemstones")


def register_format(fmt: BenchmarkFormat) -> BenchmarkFormat:
    if fmt.name in FORMATS:
        raise ValueError(f"benchmark format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    rank = {n: SHIPPED_ORDER.index(n) if n in SHIPPED_ORDER else len(SHIPPED_ORDER) for n in FORMATS}
    ordered = sorted(FORMATS.items(), key=lambda item: rank[item[0]])  # stable: others keep their order
    FORMATS.clear()
    FORMATS.update(ordered)
    return fmt


def head_text(path: Path, size: int = SNIFF_BYTES) -> str:
    """The first ``size`` characters of a (possibly gzipped) text file; '' when unreadable."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error):  # corrupt data: the loader then says what is wrong
        return ""


def formats_help() -> str:
    """Every registered format and what it reads, for error messages."""
    return "; ".join(f"{f.name}: {f.reads}" for f in FORMATS.values())


def detect_format(path: Path, setting: bool = False) -> BenchmarkFormat:
    """The format of ``path``: one whose extension and content match; otherwise the only format that
    claims the extension (its loader then says, located, what is wrong); otherwise InvalidBenchmark
    listing the formats. With ``setting`` (a ``FILE#SETTING`` was given) only formats of several
    benchmarks per file are candidates."""
    claimants = [f for f in FORMATS.values() if f.claims(path) and (f.settings is not None or not setting)]
    for fmt in claimants:
        if fmt.sniff(path):
            return fmt
    if len(claimants) == 1:
        return claimants[0]
    seen = ("its content matches none of " + ", ".join(f.name for f in claimants)) if claimants else "unknown extension"
    raise InvalidBenchmark(f"{path}: unknown benchmark format ({seen}); trainfree reads: {formats_help()}")
