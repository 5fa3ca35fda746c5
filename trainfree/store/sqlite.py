"""The results store: SQLite (stdlib), WAL mode, a schema version.

A score is keyed by (architecture id, metric, metric version, settings fingerprint), so a rerun
skips every finished key and a changed definition or setting never reuses a stale number. Each
batch of results is one transaction: a killed run leaves whole rows or none. Searches record their
trials (what was proposed, in which order, when, and its values), keyed by what defines the search.

Only trainfree stores (or new, empty paths) are opened: the file is identified and checked
(``PRAGMA quick_check``) before anything is written to it. The check reads the whole file (seconds
for a million scores), so it is skipped when the file is exactly as trainfree left it after its last
clean close: that close records the file's device, inode, size and mtime inside the file (``meta``
row ``clean_close``, written in place, the mtime then set back), and no write-ahead log is pending; any
write since changes the mtime, a copy the inode (``verify="always"`` checks every time). Nothing is
written beside the store but SQLite's own ``-wal`` and ``-shm`` files while it is open. The schema version is ``PRAGMA
user_version`` (and ``meta.schema_version``, which older trainfree reads); older stores are upgraded
in one transaction on the first writable open.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Sequence

from trainfree.errors import TrainfreeError
from trainfree.records import STATUSES, Status

SCHEMA_VERSION = 4
APPLICATION_ID = 0x54465354  # "TFST" in the file header: this SQLite file is a trainfree store
SQLITE_MAGIC = b"SQLite format 3\x00"
CHUNK = 500  # ids per IN (...) list, well under SQLite's bound on parameters
_STATUS_CHECK = f"CHECK (status IN ({', '.join(repr(s) for s in STATUSES)}))"

#: version 1, the schema of every store written before the version was kept in the file header
_BASE = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS architectures (
    arch_id TEXT PRIMARY KEY, space TEXT NOT NULL, canonical TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS settings (fingerprint TEXT PRIMARY KEY, json TEXT NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS scores (
    arch_id TEXT NOT NULL REFERENCES architectures(arch_id),
    metric TEXT NOT NULL,
    metric_version TEXT NOT NULL,
    fingerprint TEXT NOT NULL REFERENCES settings(fingerprint),
    value REAL,                 -- NULL only for NaN (SQLite has no NaN), +-inf are kept
    status TEXT NOT NULL {_STATUS_CHECK},
    error TEXT NOT NULL DEFAULT '',
    seconds REAL NOT NULL,
    trainfree_version TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (arch_id, metric, metric_version, fingerprint))""",
    """CREATE TABLE IF NOT EXISTS names (
    benchmark TEXT NOT NULL, name TEXT NOT NULL, arch_id TEXT NOT NULL,
    PRIMARY KEY (benchmark, name))""",
)
_V1_TABLES = {"meta", "architectures", "settings", "scores", "names"}

#: version -> the statements (SQL, or a function of the connection) that take a store from that version to
#: the next (each idempotent)
_UPGRADES = {
    1: (  # scores by settings (what `report --store` asks); search trials
        "CREATE INDEX IF NOT EXISTS scores_by_fingerprint ON scores (fingerprint, metric, metric_version)",
        "CREATE TABLE IF NOT EXISTS searches (search_id TEXT PRIMARY KEY, json TEXT NOT NULL, created REAL NOT NULL)",
        """CREATE TABLE IF NOT EXISTS trials (
    search_id TEXT NOT NULL REFERENCES searches(search_id),
    step INTEGER NOT NULL,      -- 0-based order of evaluation
    arch_id TEXT NOT NULL,
    vals TEXT NOT NULL,         -- JSON {metric: value}; NaN and +-inf as JSON's NaN/Infinity
    status TEXT NOT NULL,
    proposed REAL NOT NULL,     -- unix time the search proposed it
    PRIMARY KEY (search_id, step))""",
    ),
    2: (  # short-training results (trainfree.train): one row per budget point a run recorded
        "CREATE TABLE IF NOT EXISTS protocols (fingerprint TEXT PRIMARY KEY, json TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS trainings (
    arch_id TEXT NOT NULL,
    protocol TEXT NOT NULL REFERENCES protocols(fingerprint),
    seed INTEGER NOT NULL,
    unit TEXT NOT NULL,         -- steps, tokens or cpu-seconds
    budget REAL NOT NULL,       -- the budget point, in unit
    val_loss REAL,              -- NULL only for NaN
    status TEXT NOT NULL {_STATUS_CHECK},
    error TEXT NOT NULL DEFAULT '',
    steps INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    cpu_seconds REAL NOT NULL,  -- training CPU time to this point
    eval_cpu_seconds REAL NOT NULL,
    curve TEXT NOT NULL,        -- JSON: validation records and train-loss curve of the run up to this point
    trainfree_version TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (arch_id, protocol, seed, unit, budget))""",
    ),
    3: (  # what a strategy keeps with each trial (NSGA-II: its genes and generation), JSON
        lambda conn: None if "info" in {r[1] for r in conn.execute("PRAGMA table_info(trials)")}
        else conn.execute("ALTER TABLE trials ADD COLUMN info TEXT NOT NULL DEFAULT '{}'"),
    ),
}

_DAMAGED = ("the store is damaged ({problem}); nothing was written to it. Keep a copy, then either copy what is "
            "readable into a new file with the sqlite3 shell (`sqlite3 {path} .recover | sqlite3 recovered.sqlite`; "
            "where .recover fails, .dump with its closing ROLLBACK made a COMMIT) and pass that with --store, or "
            "start afresh with another --store path")


def default_store_path() -> Path:
    """``$TRAINFREE_STORE``, else ``$XDG_CACHE_HOME/trainfree/scores.sqlite`` (``~/.cache`` by default)."""
    if os.environ.get("TRAINFREE_STORE"):
        return Path(os.environ["TRAINFREE_STORE"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "trainfree" / "scores.sqlite"


def _is_new(path: Path) -> bool:
    """True for a missing or empty file; raises for what cannot hold a store."""
    if path.is_dir():
        raise TrainfreeError(f"{path}: is a folder, not a store file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return True
    except NotADirectoryError:
        raise TrainfreeError(f"{path}: cannot be a store: a part of the path above it is a file, not a folder") from None
    except OSError as err:
        raise TrainfreeError(f"{path}: cannot read the store ({err.strerror})") from None
    if not magic:
        return True
    if magic != SQLITE_MAGIC:
        raise TrainfreeError(f"{path}: not a usable trainfree store (not an SQLite file); it was left untouched: "
                             f"give --store a new path or a trainfree store")
    return False


#: characters of the clean-close row: always this long, so that writing it again changes no page count
STAMP_WIDTH = 128


def _file_state(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _legacy_stamp(path: Path) -> Path:
    """Where trainfree before 0.2 kept the clean-close stamp, beside the store (removed at a close)."""
    return path.with_name(path.name + "-checked")


def _chunks(ids: Sequence[str]):
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


class Store:
    """One SQLite file. Only the driver process writes it; workers send results back.

    ``readonly`` opens the file with SQLite's ``mode=ro`` (for export and reports): nothing is
    created, upgraded or written, and a read-only file works.
    """

    def __init__(self, path: str | Path, readonly: bool = False, verify: str = "changed"):
        if verify not in ("changed", "always"):
            raise TrainfreeError(f"verify must be 'changed' or 'always', got {verify!r}")
        self.path = Path(path)
        self.readonly = readonly
        self.verify = verify
        self.checked = False  # quick_check ran (and passed) on this open
        self._clean = False  # the file is known sound: new, checked, or unchanged since a checked close
        new = _is_new(self.path)
        if readonly and new:
            raise TrainfreeError(f"{self.path}: no such store")
        try:
            if readonly:
                self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, timeout=30)
        except (FileExistsError, NotADirectoryError):
            raise TrainfreeError(f"{self.path}: cannot be a store: a part of the path above it is a file, "
                                 f"not a folder") from None
        except (OSError, sqlite3.Error) as err:
            raise TrainfreeError(f"{self.path}: cannot open the store ({err})") from None
        try:
            self.version = 0 if new else self._identify()
            self._clean = True
            if not readonly:
                self._prepare()
            elif self.version == 0:
                raise TrainfreeError(f"{self.path}: an empty SQLite file, no trainfree store yet")
        except sqlite3.OperationalError as err:  # locked, read-only, out of disk: not damage
            self.conn.close()
            raise TrainfreeError(f"{self.path}: cannot use the store ({err})") from None
        except sqlite3.DatabaseError as err:
            self.conn.close()
            raise TrainfreeError(f"{self.path}: " + _DAMAGED.format(problem=err, path=self.path)) from None
        except BaseException:
            self.conn.close()
            raise

    # -- opening ---------------------------------------------------------------------------------
    def _identify(self) -> int:
        """The schema version of an existing SQLite file (0: no tables yet), checked by quick_check;
        anything that is not a trainfree store raises. Reads only."""
        app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self._stamped = app_id == APPLICATION_ID
        if app_id != APPLICATION_ID:
            meta = None
            if _V1_TABLES <= tables:  # a store from before the header was set, or one rebuilt by .recover
                meta = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if meta is not None and str(meta[0]).isdigit():
                version = int(meta[0])
            elif app_id == 0 and version == 0 and not tables:
                version = 0  # an empty SQLite file
            else:
                shown = ", ".join(sorted(tables)[:8]) + (", ..." if len(tables) > 8 else "")
                raise TrainfreeError(f"{self.path}: an SQLite file that is not a trainfree store (tables: "
                                     f"{shown or 'none'}); it was left untouched: give --store a new path")
        if version > SCHEMA_VERSION:
            raise TrainfreeError(f"{self.path}: store schema version {version}, written by a newer trainfree (this "
                                 f"one reads up to version {SCHEMA_VERSION}); upgrade trainfree or use another "
                                 f"--store path")
        if self.verify == "always" or not self._unchanged_since_check():
            problems = [r[0] for r in self.conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise TrainfreeError(f"{self.path}: " + _DAMAGED.format(problem="quick_check: " + "; ".join(problems),
                                                                         path=self.path))
            self.checked = True
        return version

    def _prepare(self) -> None:
        """WAL mode, then create or upgrade the schema in one transaction."""
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        if self.version == SCHEMA_VERSION and getattr(self, "_stamped", False):
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            # another process may have upgraded it meanwhile: read the version again under the lock
            current = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if current < self.version:
                current = self.version
            statements = list(_BASE) if current == 0 else []
            for v in range(max(current, 1), SCHEMA_VERSION):
                statements.extend(_UPGRADES[v])
            for sql in statements:
                sql(self.conn) if callable(sql) else self.conn.execute(sql)
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        self.version = SCHEMA_VERSION

    def _unchanged_since_check(self) -> bool:
        """True when the file is as a clean, checked close left it (reads only)."""
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            if wal.exists() and wal.stat().st_size > 0:
                return False
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'clean_close'").fetchone()
            return row is not None and json.loads(row[0]) == _file_state(os.stat(self.path))
        except (OSError, ValueError, sqlite3.Error):
            return False

    def _stamp(self) -> os.stat_result | None:
        """Record the file's state inside it (a fixed-width row, so that its final write changes no size);
        None where another connection keeps part of it in the write-ahead log."""
        def checkpointed() -> bool:
            return self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0

        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('clean_close', ?)", ("0" * STAMP_WIDTH,))
        if not checkpointed():
            return None
        st = os.stat(self.path)
        with self.conn:
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'clean_close'",
                              (json.dumps(_file_state(st)).ljust(STAMP_WIDTH),))
        return st if checkpointed() else None

    def close(self, sound: bool = True) -> None:
        """Close; a writable store that was sound and is fully checkpointed records its state inside the file,
        so the next open can skip the integrity check."""
        if self.readonly or not self._clean:
            self.conn.close()
            return
        stamp = None
        if sound:
            try:
                stamp = self._stamp()
            except (sqlite3.Error, OSError):
                stamp = None  # no stamp: the next open checks the whole file
        self.conn.close()
        try:
            if stamp is None:
                os.utime(self.path)  # whatever row is in the file no longer matches: the next open checks
            else:
                os.utime(self.path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
                if os.stat(self.path).st_size != stamp.st_size:
                    os.utime(self.path)
            _legacy_stamp(self.path).unlink(missing_ok=True)
        except OSError:
            pass

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # SQLite reporting damage during the session: leave no stamp, so the next open checks
        self.close(sound=not (exc_type is not None and issubclass(exc_type, sqlite3.DatabaseError)))

    # -- writing ---------------------------------------------------------------------------------
    @contextmanager
    def _writing(self):
        """One transaction; a failed write (a full disk, a lock held too long) is one clear error, and
        SQLite rolls the transaction back, so the store keeps whole rows or none."""
        try:
            with self.conn:
                yield
        except sqlite3.OperationalError as err:
            from trainfree.files import write_error

            raise write_error(self.path, err, "store") from None

    def add_architectures(self, space: str, archs: Iterable[tuple[str, str]]) -> None:
        """(arch_id, canonical JSON) pairs; existing ids are kept."""
        with self._writing():
            self.conn.executemany("INSERT OR IGNORE INTO architectures VALUES (?, ?, ?)",
                                  [(a, space, c) for a, c in archs])

    def add_names(self, benchmark: str, names: Iterable[tuple[str, str]]) -> None:
        """(benchmark name of a record, arch_id): many names may map to one architecture."""
        with self._writing():
            self.conn.executemany("INSERT OR REPLACE INTO names VALUES (?, ?, ?)",
                                  [(benchmark, n, a) for n, a in names])

    def add_settings(self, fingerprint: str, settings: dict) -> None:
        with self._writing():
            self.conn.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)",
                              (fingerprint, json.dumps(settings, sort_keys=True)))

    def put(self, outcomes: Sequence, versions: dict[str, str], fingerprint: str, trainfree_version: str) -> None:
        """Record scores (their arch_id, metric, value, status, error, seconds) in one transaction."""
        now = time.time()
        rows = [(o.arch_id, o.metric, versions[o.metric], fingerprint,
                 None if math.isnan(o.value) else o.value, Status(o.status).value, o.error, o.seconds,
                 trainfree_version, now) for o in outcomes]
        with self._writing():
            self.conn.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # -- reading ---------------------------------------------------------------------------------
    def _select(self, columns: str, where: str, metric_versions: dict[str, str], fingerprint: str,
                arch_ids: Iterable[str] | None):
        """Rows of ``scores`` for each metric: of ``arch_ids`` only (through the primary key's index),
        or of every architecture when None."""
        for metric, version in metric_versions.items():
            if arch_ids is None:
                yield metric, self.conn.execute(f"SELECT {columns} FROM scores WHERE metric = ? AND metric_version "
                                                f"= ? AND fingerprint = ?{where}", (metric, version, fingerprint))
                continue
            for chunk in _chunks(sorted(set(arch_ids))):
                marks = ", ".join("?" * len(chunk))
                yield metric, self.conn.execute(
                    f"SELECT {columns} FROM scores WHERE arch_id IN ({marks}) AND metric = ? AND metric_version = ? "
                    f"AND fingerprint = ?{where}", (*chunk, metric, version, fingerprint))

    def done(self, metric_versions: dict[str, str], fingerprint: str,
             arch_ids: Iterable[str] | None = None) -> set[tuple[str, str]]:
        """(arch_id, metric) keys already finished (ok or nonfinite) for these metric versions and settings,
        among ``arch_ids`` (every architecture when None: a whole-table scan).

        Failed keys are not done: a rerun tries them again (the error may have been transient or fixed).
        """
        arch_ids = None if arch_ids is None else list(arch_ids)
        out = set()
        failed = f" AND status != '{Status.FAILED.value}'"
        for metric, cur in self._select("arch_id", failed, metric_versions, fingerprint, arch_ids):
            out.update((a, metric) for (a,) in cur)
        return out

    def get(self, metric_versions: dict[str, str], fingerprint: str,
            arch_ids: Iterable[str] | None = None) -> dict[tuple[str, str], tuple]:
        """(arch_id, metric) -> (value, status, error, seconds), among ``arch_ids`` (all when None)."""
        arch_ids = None if arch_ids is None else list(arch_ids)
        out = {}
        for metric, cur in self._select("arch_id, value, status, error, seconds", "", metric_versions, fingerprint,
                                        arch_ids):
            for arch_id, value, status, error, seconds in cur:
                out[(arch_id, metric)] = (math.nan if value is None else value, Status(status), error, seconds)
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

    # -- short-training results ------------------------------------------------------------------
    def put_trainings(self, protocol_fingerprint: str, protocol: dict, rows: Sequence[dict],
                      trainfree_version: str) -> None:
        """Rows (arch_id, seed, unit, budget, val_loss, status, error, steps, tokens, cpu_seconds,
        eval_cpu_seconds, curve) of one protocol, in one transaction; a key written again is replaced."""
        now = time.time()
        values = [(r["arch_id"], protocol_fingerprint, r["seed"], r["unit"], float(r["budget"]),
                   None if math.isnan(r["val_loss"]) else r["val_loss"], r["status"], r.get("error", ""),
                   r["steps"], r["tokens"], r["cpu_seconds"], r["eval_cpu_seconds"], json.dumps(r["curve"]),
                   trainfree_version, now) for r in rows]
        with self._writing():
            self.conn.execute("INSERT OR IGNORE INTO protocols VALUES (?, ?)",
                              (protocol_fingerprint, json.dumps(protocol, sort_keys=True)))
            self.conn.executemany("INSERT OR REPLACE INTO trainings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  values)

    def trainings(self, protocol_fingerprint: str, seed: int, unit: str,
                  arch_ids: Iterable[str] | None = None) -> dict[tuple[str, float], dict]:
        """(arch_id, budget) -> the stored row, for one protocol, seed and unit (of ``arch_ids`` only,
        or every architecture when None)."""
        if self.version < 3:  # a read-only old store has no trainings table
            return {}
        cols = ("arch_id, budget, val_loss, status, error, steps, tokens, cpu_seconds, eval_cpu_seconds, curve, "
                "trainfree_version")
        where = "protocol = ? AND seed = ? AND unit = ?"
        if arch_ids is None:
            cursors = [self.conn.execute(f"SELECT {cols} FROM trainings WHERE {where}",
                                         (protocol_fingerprint, seed, unit))]
        else:
            cursors = []
            for chunk in _chunks(sorted(set(arch_ids))):
                marks = ", ".join("?" * len(chunk))
                cursors.append(self.conn.execute(f"SELECT {cols} FROM trainings WHERE {where} AND arch_id IN "
                                                 f"({marks})", (protocol_fingerprint, seed, unit, *chunk)))
        out = {}
        names = [c.strip() for c in cols.split(",")]
        for cur in cursors:
            for rec in cur:
                row = dict(zip(names, rec))
                row["val_loss"] = math.nan if row["val_loss"] is None else row["val_loss"]
                row["curve"] = json.loads(row["curve"])
                out[(row["arch_id"], row["budget"])] = row
        return out

    def architectures(self, arch_ids: Iterable[str]) -> dict[str, str]:
        """arch_id -> canonical JSON of each of ``arch_ids`` the store holds."""
        out = {}
        for chunk in _chunks(sorted(set(arch_ids))):
            marks = ", ".join("?" * len(chunk))
            out.update(self.conn.execute(f"SELECT arch_id, canonical FROM architectures WHERE arch_id IN ({marks})",
                                         chunk))
        return out

    def architecture(self, arch_id: str) -> tuple[str, str] | None:
        """(space, canonical JSON) of a stored architecture."""
        row = self.conn.execute("SELECT space, canonical FROM architectures WHERE arch_id = ?", (arch_id,)).fetchone()
        return None if row is None else tuple(row)

    # -- search trials ---------------------------------------------------------------------------
    def add_search(self, search_id: str, identity: dict) -> None:
        """What defines a search (space, metric, strategy, seed, settings, ...), under its id."""
        with self._writing():
            self.conn.execute("INSERT OR IGNORE INTO searches VALUES (?, ?, ?)",
                              (search_id, json.dumps(identity, sort_keys=True), time.time()))

    def put_trials(self, search_id: str, trials: Iterable[tuple[int, str, dict, str, float, dict]]) -> None:
        """(step, arch_id, values, status, proposed, info) rows in one transaction; a step written again
        replaces the old row."""
        rows = [(search_id, step, arch_id, json.dumps(values), str(status), proposed, json.dumps(info))
                for step, arch_id, values, status, proposed, info in trials]
        with self._writing():
            self.conn.executemany("INSERT OR REPLACE INTO trials (search_id, step, arch_id, vals, status, proposed, "
                                  "info) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def drop_trials(self, search_id: str, from_step: int) -> None:
        """Forget the trials from ``from_step`` on (the search no longer proposes them)."""
        with self._writing():
            self.conn.execute("DELETE FROM trials WHERE search_id = ? AND step >= ?", (search_id, from_step))

    def trials(self, search_id: str) -> list[tuple[int, str, dict, str, float, dict]]:
        """The recorded trials of a search, in order: (step, arch_id, values, status, proposed, info)."""
        if self.version < 2:  # a read-only old store has no trials table
            return []
        info = "info" if self.version >= 4 else "'{}'"
        cur = self.conn.execute(f"SELECT step, arch_id, vals, status, proposed, {info} FROM trials WHERE "
                                f"search_id = ? ORDER BY step", (search_id,))
        return [(step, arch_id, json.loads(vals), status, proposed, json.loads(extra))
                for step, arch_id, vals, status, proposed, extra in cur]
