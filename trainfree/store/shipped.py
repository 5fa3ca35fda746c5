"""The shipped suite file (``trainfree/data/suite/suite.json.gz``), read once and indexed by settings
fingerprint, so that the scoring loop takes a key the suite holds instead of computing it again.

A key is served only under the exact fingerprint and metric key version it was computed under, and only
when it ended ``ok`` or ``nonfinite`` (a failed key is computed again, as with a store). Imports nothing
heavier than the standard library.
"""
from __future__ import annotations

import gzip
import json
import math
from functools import lru_cache
from pathlib import Path

from trainfree.errors import TrainfreeError
from trainfree.records import Status

SUITE_PARTS = ("suite", "suite.json.gz")
#: the largest suite file read (the shipped one is well under it)
MAX_BYTES = 64 << 20
_STATUS = {"o": Status.OK, "n": Status.NONFINITE, "f": Status.FAILED}


def suite_path() -> Path:
    from trainfree.data import data_path

    return Path(str(data_path(*SUITE_PARTS)))


def read_suite(path: str | Path | None = None) -> dict | None:
    """The suite file's content (the shipped one by default); None when there is none."""
    path = Path(path) if path is not None else suite_path()
    if not path.is_file():
        if path == suite_path():
            return None
        raise TrainfreeError(f"{path}: no such suite file")
    if path.stat().st_size > MAX_BYTES:
        raise TrainfreeError(f"{path}: larger than a suite file may be ({MAX_BYTES >> 20} MiB)")
    try:
        with gzip.open(path, "rb") as fh:
            data = json.loads(fh.read(MAX_BYTES * 8 + 1))
    except (OSError, ValueError, EOFError) as err:
        raise TrainfreeError(f"{path}: not a trainfree suite file ({err})") from None
    if not isinstance(data, dict) or data.get("format") != "trainfree-suite" or not isinstance(data.get("benchmarks"), dict):
        raise TrainfreeError(f"{path}: not a trainfree suite file (no 'format': 'trainfree-suite')")
    return data


@lru_cache(maxsize=1)
def _index() -> dict:
    """fingerprint -> (metric, key version) -> arch id -> (value, status, error, seconds, trainfree version)."""
    data = read_suite()
    out: dict = {}
    if data is None:
        return out
    version = data.get("trainfree", "")
    for entry in data["benchmarks"].values():
        by_key = out.setdefault(entry["fingerprint"], {})
        ids = entry["arch_ids"]
        for name, m in entry["metrics"].items():
            values = by_key.setdefault((name, m["key_version"]), {})
            for i, code in enumerate(m["status"]):
                status = _STATUS.get(code)
                if status is None or status is Status.FAILED:
                    continue
                value = m["values"][i]
                values[ids[i]] = (math.nan if value is None else float(value), status, "", m["seconds"][i] or 0.0,
                                  version)
    return out


def lookup(fingerprint: str, versions: dict[str, str], arch_ids) -> dict[tuple[str, str], tuple]:
    """(arch_id, metric) -> (value, status, error, seconds, trainfree version) of the keys the shipped suite
    holds for these metric key versions under ``fingerprint``."""
    by_key = _index().get(fingerprint)
    if not by_key:
        return {}
    out = {}
    for metric, version in versions.items():
        values = by_key.get((metric, version))
        if values:
            for a in arch_ids:
                if a in values:
                    out[(a, metric)] = values[a]
    return out
