"""Benchmarks: architectures paired with trained results read from real files."""
from __future__ import annotations

import gzip
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
