"""Scores CSV files: written atomically, read back with line-precise errors."""
from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from trainfree.errors import InvalidBenchmark

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
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise InvalidBenchmark(f"{path}: directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def atomic_write_binary(path: Path, write) -> None:
    atomic_write(path, write, binary=True)


def _fmt(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else str(value)  # nan, inf, -inf stay readable


def write_scores(path: Path, rows: Iterable, meta: dict | None = None) -> None:
    """Write score rows as CSV; ``meta`` (settings, versions) goes to ``<path>.meta.json`` beside it."""
    def write(fh):
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for r in rows:
            out.writerow([r.arch_id, r.name, r.metric, _fmt(r.value), r.status, r.error, f"{r.seconds:.4f}",
                          r.metric_version, r.fingerprint])

    atomic_write(path, write)
    if meta is not None:
        atomic_write(Path(str(path) + ".meta.json"), lambda fh: json.dump(meta, fh, indent=2, sort_keys=True))


def read_scores(path: Path) -> list[ScoreEntry]:
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InvalidBenchmark(f"{path}: the scores file is empty")
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise InvalidBenchmark(f"{path} line 1: missing column(s) {missing}; a scores file has {list(COLUMNS)}")
            col = {c: header.index(c) for c in header}
            entries = []
            for row in reader:
                where = f"{path} line {reader.line_num}"
                if not row:
                    continue
                if len(row) != len(header):
                    raise InvalidBenchmark(f"{where}: expected {len(header)} fields, got {len(row)}")
                try:
                    value = float(row[col["value"]]) if row[col["value"]] != "" else math.nan
                except ValueError:
                    raise InvalidBenchmark(f"{where}: column 'value': {row[col['value']]!r} is not a number") from None
                status = row[col["status"]]
                if status not in STATUSES:
                    raise InvalidBenchmark(f"{where}: column 'status': {status!r} is not one of {list(STATUSES)}")
                arch_id = row[col["arch_id"]] if "arch_id" in col else ""
                fingerprint = row[col["fingerprint"]] if "fingerprint" in col else ""
                entries.append(ScoreEntry(row[col["name"]], row[col["metric"]], value, status, arch_id, fingerprint))
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidBenchmark(f"{path}: cannot read ({err})") from None
    return entries
