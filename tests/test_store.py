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
from trainfree.runner import Outcome, score_architectures
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
from trainfree.store import Store
from tests.conftest import LSTM, RNN

TINY = ScoreSettings(size="tiny", device="cpu")


def test_round_trip_keeps_nan_and_inf(tmp_path):
    with Store(tmp_path / "s.db") as store:
        store.add_architectures("nasbench-nlp", [("a", "{}")])
        store.add_settings("fp", {"seed": 0})
        outs = [Outcome("a", "m1", math.nan, "nonfinite", "", 0.1), Outcome("a", "m2", math.inf, "nonfinite", "", 0.1),
                Outcome("a", "m3", -2.5, "ok", "", 0.1), Outcome("a", "m4", math.nan, "failed", "ValueError: x", 0.1)]
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


def test_sigkill_midway_then_resume(tmp_path):
    bench, store_path = tmp_path / "b.csv", tmp_path / "s.db"
    _sample_csv(bench, 130)
    cmd = [sys.executable, "-m", "trainfree", "score", "--benchmark", str(bench), "--metrics", "hidden_cov,params",
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
        assert len(list(csv.DictReader(fh))) == 260  # 130 records x 2 metrics
    assert {r["metric"] for r in rows} == {"hidden_cov", "params"}


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


def test_ctrl_c_stops_cleanly_and_keeps_finished_work(tmp_path):
    bench, store_path = tmp_path / "b.csv", tmp_path / "s.db"
    _sample_csv(bench, 130)
    cmd = [sys.executable, "-m", "trainfree", "score", "--benchmark", str(bench), "--metrics", "hidden_cov",
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
        store.put([Outcome("a", "m", math.nan, "failed", "RuntimeError: x", 0.1),
                   Outcome("a", "n", math.nan, "nonfinite", "", 0.1)], {"m": "1", "n": "1"}, "fp", "0.1.0")
        assert store.done({"m": "1", "n": "1"}, "fp") == {("a", "n")}
