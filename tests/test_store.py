"""The results store: keys, NaN/inf, resume after SIGKILL, deduplication, export."""
import csv
import gzip
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from trainfree.config import ScoreSettings
from trainfree.data import data_path
from trainfree.errors import TrainfreeError
from trainfree.records import Score
from trainfree.runner import score_architectures
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
from trainfree.store import Store
from tests.conftest import LSTM, RNN

TINY = ScoreSettings(size="tiny", device="cpu")


def test_round_trip_keeps_nan_and_inf(tmp_path):
    with Store(tmp_path / "s.db") as store:
        store.add_architectures("nasbench-nlp", [("a", "{}")])
        store.add_settings("fp", {"seed": 0})
        outs = [Score("a", "m1", math.nan, "nonfinite", "", 0.1), Score("a", "m2", math.inf, "nonfinite", "", 0.1),
                Score("a", "m3", -2.5, "ok", "", 0.1), Score("a", "m4", math.nan, "failed", "ValueError: x", 0.1)]
        store.put(outs, {"m1": "1", "m2": "1", "m3": "1", "m4": "1"}, "fp", "0.1.0")
        got = store.get({"m1": "1", "m2": "1", "m3": "1", "m4": "1"}, "fp")
        assert math.isnan(got[("a", "m1")][0]) and got[("a", "m2")][0] == math.inf
        assert got[("a", "m3")][:2] == (-2.5, "ok") and got[("a", "m4")][2] == "ValueError: x"
        # another metric version or settings fingerprint is another key
        assert store.done({"m3": "2"}, "fp") == set() and store.done({"m3": "1"}, "other") == set()


def test_rerun_reuses_and_dedups(tmp_path):
    items = [("a", parse_recipe(LSTM)), ("b", parse_recipe(RNN)), ("c", parse_recipe(LSTM))]  # a, c: same id
    with Store(tmp_path / "s.db") as store:
        first = score_architectures("nasbench-nlp", items, ["hidden_cov", "params"], TINY, store=store, benchmark="x")
        assert (first.computed, first.reused) == (4, 0)  # 2 distinct architectures x 2 metrics
        rows = {(r.name, r.metric): r.value for r in first.rows}
        assert rows[("a", "hidden_cov")] == rows[("c", "hidden_cov")]
        second = score_architectures("nasbench-nlp", items, ["hidden_cov", "params", "hidden_cov_l2"], TINY,
                                     store=store, benchmark="x")
        assert (second.computed, second.reused) == (2, 4)
        assert store.count() == 6
        names = {r["name"] for r in store.export_rows()}
        assert names == {"a", "b", "c"}


def test_bad_store_file(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(TrainfreeError, match="not a usable trainfree store"):
        Store(bad)


def test_shipped_ptb_sample_with_repeats_is_computed_once_per_recipe(ptb, tmp_path):
    records = ptb.records[:400]
    distinct = {r.arch.arch_id for r in records}
    assert len(distinct) < len(records)  # the benchmark repeats recipes
    with Store(tmp_path / "s.db") as store:
        run = score_architectures("nasbench-nlp", [(r.name, r.arch) for r in records], ["params"], TINY, store=store)
    assert run.computed == len(distinct) and len(run.rows) == len(records)


def _sample_csv(path, n):
    with gzip.open(str(data_path("nasbench_nlp", "ptb_results.csv.gz")), "rt", newline="") as src:
        rows = list(csv.reader(src))
    with open(path, "w", newline="") as dst:
        csv.writer(dst).writerows(rows[: n + 1])


def wait_for_rows(proc, store_path, rows: int, timeout: float = 120) -> int:
    """Poll the store until it holds ``rows`` scores or ``proc`` ends; the count last seen."""
    deadline, stored = time.time() + timeout, 0
    while time.time() < deadline and proc.poll() is None and stored < rows:
        time.sleep(0.05)
        if store_path.exists():
            try:
                with sqlite3.connect(store_path, timeout=1) as conn:
                    stored = conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
            except sqlite3.OperationalError:
                continue
    return stored


def kill_when_stored(cmd, store_path, rows: int) -> None:
    """Run ``cmd`` and SIGKILL it (its whole process group) once the store holds ``rows`` scores."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    wait_for_rows(proc, store_path, rows)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_sigkill_midway_then_resume(tmp_path):
    bench, store_path = tmp_path / "b.csv", tmp_path / "s.db"
    _sample_csv(bench, 400)  # long enough to be killed midway: tiny cells score fast, and in batches
    cmd = [sys.executable, "-m", "trainfree", "score", "--benchmark", str(bench), "--metrics", "hidden_cov_l2,params",
           "--size", "tiny", "--batch-size", "10", "--seq-len", "20", "--jobs", "1", "--store", str(store_path), "--output", str(tmp_path / "o.csv"), "--quiet"]
    kill_when_stored(cmd, store_path, 40)
    assert not (tmp_path / "o.csv").exists()  # no half-written output

    with sqlite3.connect(store_path) as conn:
        before = conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    assert before >= 40
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with Store(store_path) as store:
        total = store.count()
        rows = store.export_rows()
    distinct_keys = total
    assert f"computed {distinct_keys - before}, reused {before}" in done.stdout  # only the missing keys
    with sqlite3.connect(store_path) as conn:
        dupes = conn.execute("SELECT COUNT(*) FROM (SELECT arch_id, metric, metric_version, fingerprint, COUNT(*) c "
                             "FROM scores GROUP BY 1, 2, 3, 4 HAVING c > 1)").fetchone()[0]
        partial = conn.execute("SELECT COUNT(*) FROM scores WHERE status IS NULL OR seconds IS NULL OR "
                               "(status = 'ok' AND value IS NULL)").fetchone()[0]
    assert dupes == 0 and partial == 0
    with open(tmp_path / "o.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 800  # 400 records x 2 metrics
    assert {r["metric"] for r in rows} == {"hidden_cov_l2", "params"}


@pytest.mark.slow
def test_export_csv_and_parquet(tmp_path):
    store_path = tmp_path / "s.db"
    with Store(store_path) as store:
        score_architectures("nasbench-nlp", [("a", parse_recipe(RNN))], ["params"], TINY, store=store, benchmark="b")
    out = tmp_path / "e.csv"
    proc = subprocess.run([sys.executable, "-m", "trainfree", "export", "--store", str(store_path), "--output", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["name"] == "a" and float(rows[0]["value"]) == 172816
    pq_out = tmp_path / "e.parquet"
    proc = subprocess.run([sys.executable, "-m", "trainfree", "export", "--store", str(store_path), "--format",
                           "parquet", "--output", str(pq_out)], capture_output=True, text=True)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert proc.returncode == 2 and "pip install 'trainfree[parquet]'" in proc.stderr
    else:
        assert proc.returncode == 0 and pq.read_table(pq_out).num_rows == 1


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_keeps_finished_work(tmp_path):
    bench, store_path = tmp_path / "b.csv", tmp_path / "s.db"
    _sample_csv(bench, 400)  # long enough to be interrupted midway
    cmd = [sys.executable, "-m", "trainfree", "score", "--benchmark", str(bench), "--metrics", "hidden_cov_l2",
           "--size", "tiny", "--batch-size", "10", "--seq-len", "20", "--jobs", "2", "--store", str(store_path),
           "--output", str(tmp_path / "o.csv"), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(store_path, timeout=1) as conn:
                if conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] >= 8:
                    break
        except sqlite3.OperationalError:
            continue
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the whole foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "rerun to resume" in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()
    with Store(store_path) as store:
        kept = store.count()
    assert kept >= 8
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and f"reused {kept}" in done.stdout


def test_failed_keys_are_retried(tmp_path):
    with Store(tmp_path / "s.db") as store:
        store.add_architectures("nasbench-nlp", [("a", "{}")])
        store.add_settings("fp", {})
        store.put([Score("a", "m", math.nan, "failed", "RuntimeError: x", 0.1),
                   Score("a", "n", math.nan, "nonfinite", "", 0.1)], {"m": "1", "n": "1"}, "fp", "0.1.0")
        assert store.done({"m": "1", "n": "1"}, "fp") == {("a", "n")}


# -- queries touch only the architectures asked for ------------------------------------------------
def _filled(path, n=300):
    store = Store(path)
    store.add_architectures("nasbench-nlp", [(f"a{i}", "{}") for i in range(n)])
    store.add_settings("fp", {})
    store.put([Score(f"a{i}", m, float(i), "ok", "", 0.1) for i in range(n) for m in ("m", "n")],
              {"m": "1", "n": "1"}, "fp", "0.1.0")
    return store


def _plans(store, call):
    """The query plans of every statement on ``scores`` that ``call`` runs."""
    statements = []
    store.conn.set_trace_callback(statements.append)  # SQL with its parameters bound
    try:
        call()
    finally:
        store.conn.set_trace_callback(None)
    return [" | ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql))
            for sql in statements if "FROM scores" in sql]


def test_done_and_get_search_the_index_for_the_ids_asked(tmp_path):
    with _filled(tmp_path / "s.db", n=1200) as store:
        ids = ["a3", "a7", "missing"]
        for call in (lambda: store.done({"m": "1", "n": "1"}, "fp", ids), lambda: store.get({"m": "1"}, "fp", ids)):
            plans = _plans(store, call)
            assert plans and all("SEARCH scores USING INDEX" in p and "SCAN" not in p for p in plans), plans
        assert store.done({"m": "1", "n": "1"}, "fp", ids) == {(a, m) for a in ("a3", "a7") for m in "mn"}
        assert store.get({"m": "1"}, "fp", ids) == {("a3", "m"): (3.0, "ok", "", 0.1), ("a7", "m"): (7.0, "ok", "", 0.1)}
        many = [f"a{i}" for i in range(1200)]  # more ids than one IN list holds
        assert len(store.get({"m": "1"}, "fp", many)) == 1200
        everything = _plans(store, lambda: store.done({"m": "1"}, "fp"))  # every architecture: by settings
        assert everything and all("scores_by_fingerprint" in p for p in everything), everything
        plans = _plans(store, lambda: store.metric_versions("fp"))
        assert plans and all("SCAN scores" not in p for p in plans)


def test_the_runner_asks_the_store_for_its_architectures_only(tmp_path):
    with _filled(tmp_path / "s.db") as store:
        plans = _plans(store, lambda: score_architectures("nasbench-nlp", [("r", parse_recipe(RNN))], ["params"], TINY,
                                                          store=store))
        assert plans and not any("SCAN scores" in p for p in plans), plans


# -- schema version and the upgrade from version 1 ---------------------------------------------------
#: the schema every store had before version 2 (trainfree 0.1 wrote it with meta.schema_version = 1)
SCHEMA_1 = """
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
TABLES_1 = ("architectures", "settings", "scores", "names")


def _schema_1_store(path, wal=True):
    """A store as trainfree 0.1 wrote it: version 1 schema, WAL, rows of every kind (NaN, inf, failed)."""
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    with conn:
        conn.executescript(SCHEMA_1)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.executemany("INSERT INTO architectures VALUES (?, 'nasbench-nlp', ?)",
                         [(f"a{i}", f'{{"i": {i}}}') for i in range(50)])
        conn.execute("INSERT INTO settings VALUES ('fp', '{\"seed\": 0}')")
        rows = [(f"a{i}", m, "1", "fp", v, s, e, 0.5, "0.1.0", 1.7e9 + i)
                for i in range(50) for m, v, s, e in (("params", float(i), "ok", ""), ("c", None, "nonfinite", ""),
                                                      ("d", math.inf, "nonfinite", ""), ("f", None, "failed", "X: y"))]
        conn.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO names VALUES ('b', ?, ?)", [(f"n{i}", f"a{i % 40}") for i in range(50)])
    conn.close()


def _rows(path):
    with sqlite3.connect(path) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}"), key=repr) for t in TABLES_1}


def test_upgrade_from_schema_1_keeps_every_row(tmp_path):
    from trainfree.store import SCHEMA_VERSION

    old = tmp_path / "old.sqlite"
    _schema_1_store(old)
    before = _rows(old)
    assert sum(map(len, before.values())) == 50 + 1 + 200 + 50
    with Store(old) as store:
        assert store.version == SCHEMA_VERSION == 4
        got = store.get({"params": "1", "c": "1", "d": "1", "f": "1"}, "fp", ["a3"])
        assert got[("a3", "params")][0] == 3.0 and math.isnan(got[("a3", "c")][0]) and got[("a3", "d")][0] == math.inf
        assert got[("a3", "f")][1:3] == ("failed", "X: y")
        assert store.done({"params": "1", "f": "1"}, "fp", ["a3"]) == {("a3", "params")}
    assert _rows(old) == before  # every row kept, unchanged
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"trials", "searches", "scores_by_fingerprint", "trainings", "protocols"} <= tables
        assert "info" in {r[1] for r in conn.execute("PRAGMA table_info(trials)")}
    with Store(old) as store:  # a second open finds it current
        assert store.version == 4 and store.count() == 200


def test_newer_schema_is_refused(tmp_path):
    with Store(tmp_path / "s.db"):
        pass
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(TrainfreeError, match="schema version 99, written by a newer trainfree"):
        Store(tmp_path / "s.db")


# -- only trainfree stores are opened, checked first, read-only where only read ----------------------
def _digest(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path):
    other = tmp_path / "other_app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.close()
    before = _digest(other)
    with pytest.raises(TrainfreeError, match="an SQLite file that is not a trainfree store \\(tables: users\\)"):
        Store(other)
    proc = subprocess.run([sys.executable, "-m", "trainfree", "export", "--store", str(other), "--output",
                           str(tmp_path / "e.csv")], capture_output=True, text=True)
    assert proc.returncode == 2 and "not a trainfree store" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _digest(other) == before and sorted(p.name for p in tmp_path.iterdir()) == ["other_app.db"]
    with sqlite3.connect(other) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    text = tmp_path / "notes.db"
    text.write_text("not sqlite " * 50)
    with pytest.raises(TrainfreeError, match="not a usable trainfree store"):
        Store(text)
    assert text.read_text() == "not sqlite " * 50
    empty = tmp_path / "empty.db"  # an empty path is a new store
    empty.touch()
    with Store(empty) as store:
        assert store.count() == 0


def test_a_damaged_store_is_not_written_and_the_error_says_what_to_do(tmp_path):
    path = tmp_path / "s.db"
    _filled(path, n=2000).close()
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # a damaged last page
        fh.seek(size - 4096)
        fh.write(b"\xde\xad\xbe\xef" * 1024)
    before = _digest(path)
    for readonly in (False, True):
        with pytest.raises(TrainfreeError) as info:
            Store(path, readonly=readonly)
        message = str(info.value)
        assert "s.db: the store is damaged" in message and "nothing was written to it" in message
        assert ".recover" in message and "another --store path" in message and "\n" not in message
    wal = tmp_path / "s.db-wal"  # reading a WAL-mode file may leave an empty log beside it
    assert _digest(path) == before and (not wal.exists() or wal.stat().st_size == 0)


def test_store_under_a_regular_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainfreeError, match="a part of the path above it is a file, not a folder"):
        Store(tmp_path / "file" / "s.sqlite")
    with pytest.raises(TrainfreeError, match="is a folder"):
        Store(tmp_path)


def _record_connects(monkeypatch):
    calls = []
    real = sqlite3.connect

    def connect(database, *args, **kwargs):
        calls.append((str(database), kwargs.get("uri", False)))
        return real(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    return calls


def test_export_opens_the_store_read_only(tmp_path, monkeypatch):
    from trainfree import api

    old = tmp_path / "old.sqlite"
    _schema_1_store(old, wal=False)
    os.chmod(old, 0o444)
    before = _digest(old)
    calls = _record_connects(monkeypatch)
    n = api.export(old, tmp_path / "e.csv")
    assert n == 4 * (50 + 10)  # 4 metrics x (50 names + the 10 architectures no name points to)
    assert calls == [(old.resolve().as_uri() + "?mode=ro", True)]
    assert _digest(old) == before and os.stat(old).st_mode & 0o777 == 0o444  # not upgraded, nor put in WAL
    with Store(old, readonly=True) as store:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.conn.execute("DELETE FROM scores")
        assert store.trials("any") == []
    with pytest.raises(TrainfreeError, match="no such store"):
        Store(tmp_path / "missing.sqlite", readonly=True)


def test_report_reads_the_store_read_only(tmp_path, monkeypatch):
    from trainfree import api
    from trainfree.cli import main
    from tests.test_report import TINY as REPORT_TINY

    bench = tmp_path / "ptb8.csv"
    _sample_csv(bench, 8)
    with Store(tmp_path / "s.db") as store:
        api.score(str(bench), ["params"], REPORT_TINY, store=store)
    calls = _record_connects(monkeypatch)
    rc = main(["report", "--benchmark", str(bench), "--store", str(tmp_path / "s.db"), "--resamples", "20",
               "--output", str(tmp_path / "r.html"), "--size", "tiny", "--batch-size", "4", "--seq-len", "8"])
    assert rc == 0 and calls == [((tmp_path / "s.db").resolve().as_uri() + "?mode=ro", True)]


# -- search trials ---------------------------------------------------------------------------------
SEARCH_TINY = ScoreSettings(size="tiny", device="cpu", batch_size=4, seq_len=8)


def _search(store):
    from trainfree.search import run_search

    return run_search("nasbench-nlp", "hidden_cov", "evolution", 10, 3, SEARCH_TINY, store=store, population=4)


def _same(a, b):
    import json

    return json.dumps(a.as_dict(), sort_keys=True) == json.dumps(b.as_dict(), sort_keys=True)  # NaN == NaN here


def test_search_trials_are_recorded_and_a_rerun_reads_them_back(tmp_path, monkeypatch):
    import trainfree.runner

    with Store(tmp_path / "s.db") as store:
        first = _search(store)
        sid = first.search_id
        rows = store.trials(sid)
        assert [(s, a, st) for s, a, _, st, _, _ in rows] == [(t.step, t.arch_id, t.status) for t in first.trials]
        assert all(json_equal(v, t.values) for (_, _, v, _, _, _), t in zip(rows, first.trials))
        assert [p for *_, p, _ in rows] == sorted(p for *_, p, _ in rows)
        (identity,) = store.conn.execute("SELECT json FROM searches WHERE search_id = ?", (sid,)).fetchone()
        assert '"strategy": "evolution"' in identity and '"seed": 3' in identity and '"version": 2' in identity

        scored = []
        real = trainfree.runner.score_architectures
        monkeypatch.setattr(trainfree.runner, "score_architectures",
                            lambda space, items, *a, **k: scored.append([i for i, _ in items]) or real(space, items, *a, **k))
        again = _search(store)
        assert _same(again, first) and scored == []  # every trial read back, none through the runner

        # killed after trial 6: the later trials, and their scores, never reached the store
        late = [t.arch_id for t in first.trials[6:]]
        store.drop_trials(sid, 6)
        with store.conn:
            store.conn.executemany("DELETE FROM scores WHERE arch_id = ?", [(a,) for a in late])
        resumed = _search(store)
        assert _same(resumed, first) and sum(scored, []) == late
        assert len(store.trials(sid)) == 10

        # a record naming an architecture the store lacks is refused, naming the trial
        with store.conn:
            store.conn.execute("UPDATE trials SET arch_id = 'elsewhere' WHERE search_id = ? AND step = 4", (sid,))
        with pytest.raises(TrainfreeError, match="trial 4 names architecture elsewhere"):
            _search(store)

        other = trainfree.search.run_search("nasbench-nlp", "hidden_cov", "evolution", 10, 4, SEARCH_TINY, store=store,
                                            population=4)
        assert other.search_id != sid  # another seed is another search


def json_equal(a, b):
    import json

    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_quick_check_runs_unless_the_file_is_as_a_checked_close_left_it(tmp_path):
    path = tmp_path / "s.db"
    _filled(path, n=20).close()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["s.db"]  # nothing beside the store
    with Store(path) as store:
        assert not store.checked  # unchanged since the last clean close
    with Store(path, verify="always") as store:
        assert store.checked
    with sqlite3.connect(path) as conn:  # written by something else: checked again
        conn.execute("INSERT INTO settings VALUES ('x', '{}')")
    conn.close()
    with Store(path) as store:
        assert store.checked
    (tmp_path / "copy.db").write_bytes(path.read_bytes())  # a copy is another file
    with Store(tmp_path / "copy.db") as store:
        assert store.checked
    with pytest.raises(sqlite3.DatabaseError):  # damage reported during a session leaves no stamp
        with Store(path) as store:
            raise sqlite3.DatabaseError("database disk image is malformed")
    with Store(path) as store:
        assert store.checked


def test_store_keys_of_the_built_in_spaces_and_metrics_are_those_of_earlier_versions():
    # an existing store is reused without recomputation only while these stay: a change here is a
    # deliberate version bump (a space's model_version, a metric's version), never a side effect
    from trainfree.metrics.base import metric_versions
    from trainfree.spaces import get_space

    got = {n: (get_space(n).fingerprint(get_space(n).default_settings()),
               get_space(n).fingerprint(get_space(n).tiny_settings()))
           for n in ("nasbench-nlp", "nasbench-bert", "decoder", "hf-llama", "hf-gpt2")}
    assert got == {"nasbench-nlp": ("c2e6e3edffc4", "17215d5a6811"), "nasbench-bert": ("294b8ba574a3", "fc3ff68a810c"),
                   "decoder": ("4ca3d9c241dd", "0bb8f46f91af"), "hf-llama": ("33e50be8f377", "fc3ff68a810c"),
                   "hf-gpt2": ("33e50be8f377", "fc3ff68a810c")}
    versions = metric_versions()
    assert {m: versions.get(m) for m in VERSION_3} == dict.fromkeys(VERSION_3, "3")
    assert {m: versions.get(m) for m in VERSION_2} == dict.fromkeys(VERSION_2, "2")
    assert {m: versions.get(m) for m in VERSION_1} == dict.fromkeys(VERSION_1, "1")


#: the metrics (and aliases) of earlier versions, by their stored version
VERSION_3 = ("lyapunov", "lyapunov_edge")
VERSION_2 = ("state_grad_edge", "state_grad_rate", "synflow")
VERSION_1 = (
    "activation_distance", "attn_params", "bert_activation_distance", "bert_activation_distance_n",
    "bert_jacobian_cosine", "bert_jacobian_cosine_ones", "bert_jacobian_score", "bert_jacobian_score_ones",
    "bert_synaptic_saliency", "bert_synaptic_saliency_n", "bert_synaptic_saliency_ones",
    "bert_synaptic_saliency_ones_n", "decoder_activation_distance", "decoder_hidden_cov", "decoder_hidden_cov_last",
    "decoder_jacob_cov", "decoder_params", "epsinas", "ffn_params", "ffn_pca_dim", "fisher", "grad_norm", "grasp",
    "head_confidence", "head_confidence_n", "head_importance", "head_importance_n", "head_importance_ones",
    "head_importance_ones_n", "head_softmax_confidence", "head_softmax_confidence_n", "hidden_cov", "hidden_cov_l2",
    "hidden_cov_l3", "hidden_cov_last", "hidden_erank", "hidden_synaptic_saliency", "jacob_cosine",
    "jacob_cosine_large_noise", "jacob_cosine_more_noise", "jacob_cosine_small_noise", "jacob_cov",
    "jacob_cov_large_noise", "jacob_cov_more_noise", "jacob_cov_small_noise", "latency", "lpzero_bert",
    "lpzero_gpt2", "nonembedding_params", "params", "snip", "swap",
    "synaptic_diversity", "synaptic_diversity_n", "synaptic_diversity_ones", "synaptic_diversity_ones_n",
    "synaptic_saliency", "synaptic_saliency_csv", "w_pca", "zico")


def test_a_run_sharing_the_store_reuses_what_another_finished_meanwhile(tmp_path, monkeypatch):
    # another run, sharing the store, finishes architectures 3-5 while this one is at its first: this run
    # takes their values from the store when it reaches them instead of computing them again
    from trainfree import outcomes
    from trainfree.records import Score, Status
    from trainfree.spaces import get_space

    space = get_space("nasbench-nlp")
    archs = [space.sample(__import__("numpy").random.default_rng(i)) for i in range(8)]
    items = [(f"a{i}", a) for i, a in enumerate(archs)]
    ids = [space.arch_id(a) for a in archs]
    assert len(set(ids)) == 8
    computed_here = []
    real = outcomes.score_chunk

    with Store(tmp_path / "s.db") as store:
        def chunk_then_the_other_run(target, chunk, settings):
            computed_here.extend(space.arch_id(a) for a, _ in chunk)
            out = real(target, chunk, settings)
            if len(computed_here) == 1:  # the other run stores three architectures meanwhile
                fp = space.fingerprint(TINY)
                store.put([Score(a, "params", 1234.0, Status.OK, "", 0.5) for a in ids[3:6]], {"params": "1"}, fp, "x")
            return out

        monkeypatch.setattr(outcomes, "score_chunk", chunk_then_the_other_run)
        run = score_architectures(space, items, ["params"], TINY, store=store)
    assert computed_here == ids[:3] + ids[6:]
    assert (run.computed, run.reused) == (5, 3)
    values = {r.name: r.value for r in run.rows}
    assert [values[f"a{i}"] for i in range(3, 6)] == [1234.0] * 3 and values["a0"] != 1234.0
