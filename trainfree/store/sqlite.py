"""The results store: SQLite (stdlib), WAL mode, a schema version.

A score is keyed by (architecture id, metric, metric version, settings fingerprint), so a rerun
skips every finished key and a changed definition or setting never reuses a stale number. Each
batch of results is one transaction: a killed run leaves whole rows or none.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Sequence

from trainfree.errors import TrainfreeError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS architectures (
    arch_id TEXT PRIMARY KEY, space TEXT NOT NULL, canonical TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (fingerprint TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scores (
    arch_id TEXT NOT NULL REFERENCES architectures(arch_id),
    metric TEXT NOT NULL,
    metric_version TEXT NOT NULL,
    fingerprint TEXT NOT NULL REFERENCES settings(fingerprint),
    value REAL,                 -- NULL only for NaN (SQLite has no NaN); +-inf are kept
    status TEXT NOT NULL CHECK (status IN ('ok', 'nonfinite', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    seconds REAL NOT NULL,
    trainfree_version TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (arch_id, metric, metric_version, fingerprint));
CREATE TABLE IF NOT EXISTS names (
    benchmark TEXT NOT NULL, name TEXT NOT NULL, arch_id TEXT NOT NULL,
    PRIMARY KEY (benchmark, name));
"""


def default_store_path() -> Path:
    """``$TRAINFREE_STORE``, else ``$XDG_CACHE_HOME/trainfree/scores.sqlite`` (``~/.cache`` by default)."""
    if os.environ.get("TRAINFREE_STORE"):
        return Path(os.environ["TRAINFREE_STORE"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "trainfree" / "scores.sqlite"


class Store:
    """One SQLite file. Only the driver process writes it; workers send results back."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            with self.conn:
                self.conn.executescript(_SCHEMA)
                row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if row is None:
                    self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) != SCHEMA_VERSION:
                    raise TrainfreeError(f"{self.path}: store schema version {row[0]}, this trainfree reads "
                                         f"version {SCHEMA_VERSION}; use another --store path")
        except sqlite3.DatabaseError as err:
            raise TrainfreeError(f"{self.path}: not a usable trainfree store ({err})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------
    def add_architectures(self, space: str, archs: Iterable[tuple[str, str]]) -> None:
        """(arch_id, canonical JSON) pairs; existing ids are kept."""
        with self.conn:
            self.conn.executemany("INSERT OR IGNORE INTO architectures VALUES (?, ?, ?)",
                                  [(a, space, c) for a, c in archs])

    def add_names(self, benchmark: str, names: Iterable[tuple[str, str]]) -> None:
        """(benchmark name of a record, arch_id): many names may map to one architecture."""
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO names VALUES (?, ?, ?)",
                                  [(benchmark, n, a) for n, a in names])

    def add_settings(self, fingerprint: str, settings: dict) -> None:
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)",
                              (fingerprint, json.dumps(settings, sort_keys=True)))

    def put(self, outcomes: Sequence, versions: dict[str, str], fingerprint: str, trainfree_version: str) -> None:
        """Record outcomes (arch_id, metric, value, status, error, seconds) in one transaction."""
        now = time.time()
        rows = [(o.arch_id, o.metric, versions[o.metric], fingerprint,
                 None if math.isnan(o.value) else o.value, o.status, o.error, o.seconds, trainfree_version, now)
                for o in outcomes]
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # -- reading ---------------------------------------------------------------------------------
    def done(self, metric_versions: dict[str, str], fingerprint: str) -> set[tuple[str, str]]:
        """(arch_id, metric) keys already finished (ok or nonfinite) for these metric versions and settings.

        Failed keys are not done: a rerun tries them again (the error may have been transient or fixed).
        """
        out = set()
        for metric, version in metric_versions.items():
            cur = self.conn.execute("SELECT arch_id FROM scores WHERE metric = ? AND metric_version = ? "
                                    "AND fingerprint = ? AND status != 'failed'", (metric, version, fingerprint))
            out.update((a, metric) for (a,) in cur)
        return out

    def get(self, metric_versions: dict[str, str], fingerprint: str) -> dict[tuple[str, str], tuple]:
        """(arch_id, metric) -> (value, status, error, seconds)."""
        out = {}
        for metric, version in metric_versions.items():
            cur = self.conn.execute("SELECT arch_id, value, status, error, seconds FROM scores WHERE metric = ? "
                                    "AND metric_version = ? AND fingerprint = ?", (metric, version, fingerprint))
            for arch_id, value, status, error, seconds in cur:
                out[(arch_id, metric)] = (math.nan if value is None else value, status, error, seconds)
        return out

    def metric_versions(self, fingerprint: str) -> set[tuple[str, str]]:
        """(metric, version) pairs with scores under ``fingerprint``."""
        cur = self.conn.execute("SELECT DISTINCT metric, metric_version FROM scores WHERE fingerprint = ?", (fingerprint,))
        return set(cur)

    def export_rows(self) -> list[dict]:
        """Every stored score with its benchmark names (one row per name; unnamed scores once)."""
        sql = """
            SELECT s.arch_id, COALESCE(n.benchmark, '') AS benchmark, COALESCE(n.name, '') AS name, a.space,
                   s.metric, s.metric_version, s.fingerprint, s.value, s.status, s.error, s.seconds,
                   s.trainfree_version, st.json AS settings, a.canonical AS architecture
            FROM scores s JOIN architectures a USING (arch_id)
            LEFT JOIN names n USING (arch_id) LEFT JOIN settings st USING (fingerprint)
            ORDER BY benchmark, name, s.arch_id, s.metric, s.fingerprint"""
        cur = self.conn.execute(sql)
        cols = [d[0] for d in cur.description]
        rows = []
        for rec in cur:
            row = dict(zip(cols, rec))
            if row["value"] is None:
                row["value"] = math.nan
            rows.append(row)
        return rows

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
