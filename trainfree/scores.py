"""Scores CSV files: written atomically (:mod:`trainfree.files`), read back with line-precise errors."""
from __future__ import annotations

import csv
import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

from trainfree.benchmarks.base import csv_table, number, quote, read_text
from trainfree.errors import InvalidBenchmark
from trainfree.files import atomic_file, atomic_write, write_error
from trainfree.records import STATUSES, Score, Status

COLUMNS = ("arch_id", "name", "metric", "value", "status", "error", "seconds", "metric_version", "fingerprint")
REQUIRED = ("name", "metric", "value", "status")


def _fmt(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else str(value)  # nan, inf, -inf stay readable


def write_scores(path: Path, rows: Iterable, meta: dict | None = None) -> None:
    """Write score rows as CSV; ``meta`` (settings, versions) goes to ``<path>.meta.json`` beside it."""
    with streamed_scores(path) as writer:
        for r in rows:
            writer(r)
    if meta is not None:
        write_meta(path, meta)


def write_meta(path: Path, meta: dict) -> None:
    atomic_write(Path(str(path) + ".meta.json"), lambda fh: json.dump(meta, fh, indent=2, sort_keys=True))


class ScoresWriter:
    """``writer(row)`` writes one score row to the CSV as it arrives and keeps the counts a summary
    needs (rows, per status, items, the first error), not the rows."""

    def __init__(self, fh, path: Path):
        self._out, self.path = csv.writer(fh), path
        self._out.writerow(COLUMNS)
        self.rows, self.items, self.first_error = 0, 0, ""
        self.counts = dict.fromkeys(STATUSES, 0)
        self._last = None

    def __call__(self, r) -> None:
        try:
            self._out.writerow([r.arch_id, r.name, r.metric, _fmt(r.value), r.status, r.error, f"{r.seconds:.4f}",
                                r.metric_version, r.fingerprint])
        except OSError as err:  # a full disk
            raise write_error(self.path, err) from None
        self.rows += 1
        self.counts[Status(r.status).value] += 1
        self.first_error = self.first_error or r.error
        if r.name != self._last:  # an item's rows come together
            self.items, self._last = self.items + 1, r.name


@contextmanager
def streamed_scores(path: Path):
    """A :class:`ScoresWriter` on a temporary file that becomes ``path`` when the block ends without error."""
    with atomic_file(path) as fh:
        yield ScoresWriter(fh, Path(path))


def read_scores(path: Path) -> list[Score]:
    """The rows of a scores CSV; malformed lines and (name, metric) pairs given twice are refused. A file
    without arch_id or fingerprint columns gives empty ones."""
    path = Path(path)
    col, rows = csv_table(read_text(path), path, REQUIRED, COLUMNS, kind="scores file")
    entries, first = [], {}
    for line, where, row in rows:
        value = number(row[col["value"]], where, "value") if row[col["value"]] != "" else math.nan
        status = row[col["status"]]
        if status not in STATUSES:
            raise InvalidBenchmark(f"{where}: column 'status': {quote(status)} is not one of {list(STATUSES)}")
        optional = {c: row[col[c]] for c in ("error", "metric_version", "fingerprint") if c in col}
        if "seconds" in col and row[col["seconds"]] != "":
            optional["seconds"] = number(row[col["seconds"]], where, "seconds")
        entry = Score(row[col["arch_id"]] if "arch_id" in col else "", row[col["metric"]], value, Status(status),
                      name=row[col["name"]], **optional)
        # the same pair under several settings is allowed here: correlate refuses or splits the mix
        first.setdefault((entry.name, entry.metric, entry.fingerprint), []).append(line)
        entries.append(entry)
    twice = {k: lines for k, lines in first.items() if len(lines) > 1}
    if twice:
        shown = "; ".join(f"{quote(n)} {quote(m)} (lines {', '.join(map(str, ls[:5]))})"
                          for (n, m, _), ls in list(twice.items())[:5])
        raise InvalidBenchmark(f"{path}: {len(twice)} (name, metric) pair(s) given more than once: {shown}"
                               + (f" and {len(twice) - 5} more" if len(twice) > 5 else ""))
    return entries
