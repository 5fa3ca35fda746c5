"""One conformance suite for every executor (local, process pool, Ray): what `map(fn, tasks)` promises
whatever runs the tasks. Scoring and training rely on exactly this."""
import importlib.util
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests import executor_tasks as tasks
from trainfree.executors import WorkerDied, make_executor

ROOT = Path(__file__).resolve().parents[1]
RAY = pytest.param("ray", marks=pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                                    reason="the ray executor needs trainfree[ray]"))
ALL = ["local", "process", RAY]
WORKERS = ["process", RAY]  # the executors with worker processes of their own


@pytest.fixture(autouse=True)
def workers_import_the_tests(monkeypatch):
    # Ray's local workers import `tests.executor_tasks` from the repository root
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ALL)
def test_every_task_comes_back_once_with_its_index_and_workers_serve_several_maps(kind):
    with make_executor(kind, jobs=2, threads=1) as ex:
        first = dict(ex.map(tasks.square, [(i,) for i in range(9)]))
        second = dict(ex.map(tasks.square, [(i,) for i in range(3, 6)]))
    assert first == {i: i * i for i in range(9)}
    assert second == {0: 9, 1: 16, 2: 25}  # indices are positions in this call's task list


@pytest.mark.slow
@pytest.mark.parametrize("kind", ALL)
def test_a_failing_task_raises_its_own_error_and_the_executor_goes_on(kind):
    with make_executor(kind, jobs=2, threads=1) as ex:
        with pytest.raises(ValueError, match="task 2 failed"):
            list(ex.map(tasks.fail_on_two, [(i,) for i in range(5)]))
        assert dict(ex.map(tasks.square, [(3,)])) == {0: 9}  # usable again afterwards


@pytest.mark.slow
@pytest.mark.parametrize("kind", WORKERS)
def test_a_dying_worker_raises_worker_died(kind):
    with make_executor(kind, jobs=2, threads=1) as ex:
        with pytest.raises(WorkerDied, match="a worker process died"):
            list(ex.map(tasks.die_on_one, [(i,) for i in range(4)]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone in all but name
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _started(folder) -> list[int]:
    return [int(p.read_text()) for p in folder.glob("started-*") if p.name != "started-0" and p.read_text()]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to see the workers")
@pytest.mark.parametrize("kind", WORKERS)
def test_a_consumer_that_stops_ends_the_running_tasks(kind, tmp_path):
    with make_executor(kind, jobs=2, threads=1) as ex:
        results = ex.map(tasks.slow, [(i, str(tmp_path)) for i in range(4)])
        for _, value in results:
            assert value == 0  # the quick one; the others take a minute
            break
        deadline = time.monotonic() + 60
        while not _started(tmp_path) and time.monotonic() < deadline:  # a slow one under way
            time.sleep(0.1)
        time.sleep(0.2)  # its pid fully written
        results.close()  # what an interrupt or an error in the consumer does
        started = _started(tmp_path)
        assert started, "no slow task had started"
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in started), "a slow task is still running"


PLUGIN = '''
from trainfree.metrics import metric


@metric("conformance_plugin_metric", higher_is_better=True, requires={"parameters"})
def conformance_plugin_metric(probe):
    """Parameter count (a plug-in for the executor conformance suite)."""
    return float(sum(p.numel() for p in probe.model.parameters()))
'''


@pytest.mark.slow
@pytest.mark.parametrize("kind", ALL)
def test_workers_know_the_plugins_the_driver_loaded(kind, tmp_path):
    # in a subprocess, so that the plug-in never enters this process's registries
    (tmp_path / "conformance_plugin.py").write_text(textwrap.dedent(PLUGIN))
    script = textwrap.dedent(f"""
        from tests import executor_tasks
        from trainfree.executors import make_executor
        from trainfree.registry import load_plugins

        load_plugins(["conformance_plugin"])
        with make_executor({kind!r}, jobs=2, threads=1) as ex:
            print(sorted(v for _, v in ex.map(executor_tasks.metric_name, [("conformance_plugin_metric",)] * 2)))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "['conformance_plugin_metric', 'conformance_plugin_metric']"


@pytest.mark.slow
@pytest.mark.parametrize("kind", WORKERS)
def test_a_plugin_that_fails_in_a_worker_is_named(kind, tmp_path):
    # the driver has the plug-in; the workers see another copy of it that raises while loading
    driver, workers = tmp_path / "driver", tmp_path / "workers"
    driver.mkdir()
    workers.mkdir()
    (driver / "flaky_plugin.py").write_text("X = 1\n")
    (workers / "flaky_plugin.py").write_text("raise RuntimeError('no licence on this node')\n")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(driver)!r})
        from tests import executor_tasks
        from trainfree.errors import TrainfreeError
        from trainfree.executors import make_executor
        from trainfree.registry import load_plugins

        load_plugins(["flaky_plugin"])
        sys.path.remove({str(driver)!r})
        try:
            with make_executor({kind!r}, jobs=1, threads=1) as ex:
                list(ex.map(executor_tasks.square, [(2,)]))
        except TrainfreeError as err:
            print("ERROR", err)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(workers), str(ROOT)]))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("ERROR a worker process could not load the plug-ins") and "flaky_plugin" in line \
        and "RuntimeError: no licence on this node" in line, line
