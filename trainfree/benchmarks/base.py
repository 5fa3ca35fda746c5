"""Benchmarks: architectures paired with trained results read from real files."""
from __future__ import annotations

import gzip
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
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise InvalidBenchmark(f"{path}: cannot read ({err})") from None


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


def register_format(fmt: BenchmarkFormat) -> BenchmarkFormat:
    if fmt.name in FORMATS:
        raise ValueError(f"benchmark format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    return fmt


def head_text(path: Path, size: int = SNIFF_BYTES) -> str:
    """The first ``size`` characters of a (possibly gzipped) text file; '' when unreadable."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            return fh.read(size)
    except (OSError, EOFError):
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
