"""Executors give identical values at the same thread count: in-process, process pool, and Ray on a
local instance. Across thread counts BLAS reductions round differently, so values agree to ~1e-7."""
import pytest
import torch

from trainfree.config import ScoreSettings
from trainfree.errors import UnknownName
from trainfree.runner import score_architectures
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
from tests.conftest import LSTM, RNN

TINY = ScoreSettings(size="tiny", batch_size=10, seq_len=20, device="cpu")
ITEMS = [("lstm", parse_recipe(LSTM)), ("rnn", parse_recipe(RNN))]
METRICS = ["hidden_cov", "activation_distance", "params"]


def _values(executor, jobs):
    run = score_architectures("nasbench-nlp", ITEMS, METRICS, TINY, jobs=jobs, executor=executor, chunk_size=1)
    return [(r.name, r.metric, r.value, r.status) for r in run.rows]


@pytest.fixture
def one_thread():
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_process_pool_matches_in_process(one_thread):
    # two workers on two cores run one thread each, like the in-process run here
    local = _values("local", 1)
    assert _values("process", 2) == local


@pytest.mark.slow
def test_thread_count_changes_only_rounding():
    local = _values("local", 1)
    pooled = _values("process", 2)
    for (n1, m1, v1, s1), (n2, m2, v2, s2) in zip(local, pooled):
        assert (n1, m1, s1) == (n2, m2, s2) and v1 == pytest.approx(v2, rel=1e-6)


def test_in_process_threads_apply_for_the_run_and_are_restored():
    import scipy.linalg  # noqa: F401  (both OpenBLAS libraries loaded before the "before" snapshot)
    from threadpoolctl import threadpool_info

    import trainfree.executors as ex

    def pools():
        return sorted((i["internal_api"], i["num_threads"]) for i in threadpool_info())

    def seen():
        return torch.get_num_threads(), pools()

    before, pools_before = torch.get_num_threads(), pools()
    with ex.LocalExecutor(threads=1) as local:
        got = [r for _, r in local.map(seen, [(), ()])]
    assert [n for n, _ in got] == [1, 1] and all(count == 1 for _, p in got for _, count in p)
    assert torch.get_num_threads() == before and pools() == pools_before
    with ex.LocalExecutor() as local:  # no thread count: the caller's own
        assert [n for _, (n, _) in local.map(seen, [()])] == [before]


def test_limit_threads_gives_torch_the_threads_and_every_openblas_one():
    # scipy ships its own OpenBLAS, loaded after the worker starts; unlimited, its idle threads spin
    # and take the cores of torch's threads (and of the other workers)
    import ast
    import subprocess
    import sys

    code = ("import torch; from trainfree.executors import limit_threads; limit_threads(2); "
            "import scipy.linalg; from threadpoolctl import threadpool_info; "
            "print(torch.get_num_threads(), sorted((i['internal_api'], i['num_threads']) for i in threadpool_info()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    torch_threads, pools = out.split(" ", 1)
    pools = ast.literal_eval(pools)
    assert torch_threads == "2"
    blas = [n for api, n in pools if api == "openblas"]  # numpy's and scipy's, with the wheels from PyPI
    assert blas and all(n == 1 for n in blas)
    assert all(n == 2 for api, n in pools if api == "openmp")


@pytest.mark.slow
def test_ray_matches_in_process(one_thread):
    pytest.importorskip("ray", reason="the ray executor needs trainfree[ray]")
    assert _values("ray", 2) == _values("local", 1)


def test_ray_executor_without_ray_names_the_extra(monkeypatch):
    import sys

    from trainfree.errors import MissingExtra

    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra sees
    with pytest.raises(MissingExtra, match=r"pip install 'trainfree\[ray\]'"):
        _values("ray", 2)


def test_unknown_executor():
    with pytest.raises(UnknownName, match="choose from: local, process, ray"):
        _values("slurm", 1)


def _pool_workers(parent: int) -> list[int]:
    """Pids of the spawned pool workers of ``parent`` (not its resource tracker)."""
    import os

    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            out.append(int(pid))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").path.isdir("/proc"), reason="needs /proc to find the workers")
def test_a_dying_worker_gives_a_clear_error_and_keeps_finished_work(tmp_path):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    from tests.test_store import _sample_csv, wait_for_rows

    bench, store = tmp_path / "b.csv", tmp_path / "s.db"
    _sample_csv(bench, 300)
    proc = subprocess.Popen([sys.executable, "-m", "trainfree", "score", "--benchmark", str(bench), "--metrics",
                             "hidden_cov", "--size", "tiny", "--jobs", "2", "--store", str(store), "--output",
                             str(tmp_path / "o.csv"), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    stored = wait_for_rows(proc, store, 1)
    workers = _pool_workers(proc.pid)
    assert proc.poll() is None and workers, "the run ended before a worker could be killed"
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "a worker process died" in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] >= stored > 0
