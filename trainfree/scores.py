"""Scores CSV files: written atomically, read back with line-precise errors."""
from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from trainfree.benchmarks.base import csv_table, number, quote, read_text
from trainfree.errors import InvalidBenchmark, TrainfreeError

COLUMNS = ("arch_id", "name", "metric", "value", "status", "error", "seconds", "metric_version", "fingerprint")
REQUIRED = ("name", "metric", "value", "status")
STATUSES = ("ok", "nonfinite", "failed")


@dataclass(frozen=True)
class ScoreEntry:
    name: str
    metric: str
    value: float
    status: str
    arch_id: str = ""
    fingerprint: str = ""  # the settings' fingerprint; empty when the file has no such column


def atomic_write(path: Path, write, binary: bool = False) -> None:
    """Call ``write(fh)`` on a temporary file next to ``path`` and rename it over ``path``:
    readers never see a half-written file."""
    with atomic_file(path, binary) as fh:
        try:
            write(fh)
        except OSError as err:  # a full disk
            raise TrainfreeError(f"{path}: cannot write ({err.strerror or err})") from None


@contextmanager
def atomic_file(path: Path, binary: bool = False):
    """A temporary file next to ``path`` to write while work goes on, renamed over ``path`` when the
    block ends without an error (removed otherwise): readers never see a half-written file."""
    path = Path(path)
    check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    except OSError as err:
        raise TrainfreeError(f"{path}: cannot write ({err.strerror})") from None
    fh = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
    try:
        yield fh
    except BaseException:  # the block's own error goes on as it is
        try:
            fh.close()
        except OSError:
            pass
        os.unlink(tmp)
        raise
    try:
        fh.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a directory put there meanwhile
        os.unlink(tmp)
        raise TrainfreeError(f"{path}: cannot write ({err.strerror or err})") from None


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output path that :func:`atomic_write` could not replace: a directory,
    a missing or non-directory parent, a parent this user cannot write to."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise TrainfreeError(f"{path}: is a directory; give a file name")
    if not parent.exists():
        raise TrainfreeError(f"{path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise TrainfreeError(f"{path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TrainfreeError(f"{path}: directory {parent} is not writable")


def atomic_write_binary(path: Path, write) -> None:
    atomic_write(path, write, binary=True)


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
            raise TrainfreeError(f"{self.path}: cannot write ({err.strerror or err})") from None
        self.rows += 1
        self.counts[r.status] = self.counts.get(r.status, 0) + 1
        self.first_error = self.first_error or r.error
        if r.name != self._last:  # an item's rows come together
            self.items, self._last = self.items + 1, r.name


@contextmanager
def streamed_scores(path: Path):
    """A :class:`ScoresWriter` on a temporary file that becomes ``path`` when the block ends without error."""
    with atomic_file(path) as fh:
        yield ScoresWriter(fh, Path(path))


def read_scores(path: Path) -> list[ScoreEntry]:
    """The entries of a scores CSV; malformed lines and (name, metric) pairs given twice are refused."""
    path = Path(path)
    col, rows = csv_table(read_text(path), path, REQUIRED, COLUMNS, kind="scores file")
    entries, first = [], {}
    for line, where, row in rows:
        value = number(row[col["value"]], where, "value") if row[col["value"]] != "" else math.nan
        status = row[col["status"]]
        if status not in STATUSES:
            raise InvalidBenchmark(f"{where}: column 'status': {quote(status)} is not one of {list(STATUSES)}")
        arch_id = row[col["arch_id"]] if "arch_id" in col else ""
        fingerprint = row[col["fingerprint"]] if "fingerprint" in col else ""
        entry = ScoreEntry(row[col["name"]], row[col["metric"]], value, status, arch_id, fingerprint)
        # the same pair under several settings is allowed here: correlate refuses or splits the mix
        first.setdefault((entry.name, entry.metric, fingerprint), []).append(line)
        entries.append(entry)
    twice = {k: lines for k, lines in first.items() if len(lines) > 1}
    if twice:
        shown = "; ".join(f"{quote(n)} {quote(m)} (lines {', '.join(map(str, ls[:5]))})"
                          for (n, m, _), ls in list(twice.items())[:5])
        raise InvalidBenchmark(f"{path}: {len(twice)} (name, metric) pair(s) given more than once: {shown}"
                               + (f" and {len(twice) - 5} more" if len(twice) > 5 else ""))
    return entries
