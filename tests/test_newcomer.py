"""A newcomer's first hour: the README runs as written, long commands show progress in logs, interrupts
keep work and leave no process behind, and the CLI refuses what it cannot do.

The README's quickstart runs with the documented quick substitution of benchmarks/quickstart_times.py
(``QUICK``/``QUICK_MODELS``: small --limit/--budget/--seeds, tiny models on short inputs, in-process);
the API snippet runs as a script with ``limit=100`` made ``limit=3``, ``resamples=100`` made 5 and
``ScoreSettings()`` made tiny
(``SNIPPET_SUBSTITUTION``); nothing else of either changes.
"""
import csv
import importlib.util
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from trainfree.cli import build_parser, main
from trainfree.errors import InvalidBenchmark, UnknownName

ROOT = Path(__file__).resolve().parent.parent
SNIPPET_SUBSTITUTION = {"limit=100": "limit=3", "resamples=100": "resamples=5",
                        "ScoreSettings()": 'ScoreSettings(size="tiny", batch_size=4, seq_len=16, device="cpu")'}


def _quickstart():
    spec = importlib.util.spec_from_file_location("quickstart_times", ROOT / "benchmarks" / "quickstart_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))


@pytest.mark.slow
def test_readme_quickstart_runs_as_written(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("optuna")
    qs = _quickstart()
    lines = qs.quickstart_lines(ROOT / "docs" / "quickstart.md")
    assert len(lines) >= 10 and all(line.startswith("trainfree ") for line in lines)
    assert any("nsga2" in line and "--output" in line for line in lines)  # its result is kept, not only shown
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINFREE_STORE", str(tmp_path / "store.sqlite"))
    for line in lines:
        command = qs.quick(line)
        assert main(shlex.split(command)[1:]) == 0, command
    out = capsys.readouterr().out
    assert "wrote report.html" in out and (tmp_path / "nsga2.json").exists() and (tmp_path / "lts.csv").exists()


@pytest.mark.slow
def test_readme_api_snippet_runs_as_a_script(tmp_path):
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8").split("## Python API", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "jobs=2" in snippet  # worker processes: the script must be import-safe
    for old, new in SNIPPET_SUBSTITUTION.items():
        assert old in snippet
        snippet = snippet.replace(old, new)
    (tmp_path / "snippet.py").write_text(snippet)
    proc = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "hidden_cov" in proc.stdout and "params" in proc.stdout


def test_plain_progress_lines_when_not_a_terminal():
    from trainfree.cli._common import Progress

    stream = io.StringIO()  # not a terminal, like a log file, nohup or CI
    progress = Progress(SimpleNamespace(quiet=False), every=3600.0, stream=stream)
    for done in range(0, 21):
        progress(done, 20)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "scoring: 20 architectures to go"
    assert [line.split()[1] for line in lines[1:]] == [f"{k}/20" for k in range(2, 21, 2)]  # every tenth
    assert "arch/s" in lines[1] and "ETA" in lines[1] and "(100%)" in lines[-1] and "ETA" not in lines[-1]
    quiet = io.StringIO()
    progress = Progress(SimpleNamespace(quiet=True), stream=quiet)
    for done in range(0, 21):
        progress(done, 20)
    assert quiet.getvalue() == ""


def test_progress_lines_every_few_seconds():
    from trainfree.cli._common import Progress

    stream = io.StringIO()
    progress = Progress(SimpleNamespace(quiet=False), every=0.0, stream=stream)  # a line at every call
    for done in (0, 1, 2):
        progress(done, 1000)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "scoring: 1000 architectures to go"
    assert [line.split()[1] for line in lines[1:]] == ["1/1000", "2/1000"]


@pytest.fixture
def broken_metric():
    from trainfree.metrics import METRICS, metric

    @metric("broken_test", higher_is_better=True, requires={"parameters"})
    def broken(probe):
        """Always fails."""
        raise RuntimeError("broken on purpose")

    yield "broken_test"
    METRICS._items.pop("broken_test")


def test_a_run_whose_every_row_failed_exits_nonzero(tmp_path, broken_metric, capsys):
    args = ["score", "--benchmark", "nasbench-nlp-ptb", "--metrics", broken_metric, "--limit", "3", "--size", "tiny",
            "--jobs", "1", "--no-store", "--output", str(tmp_path / "s.csv")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "all 3 scores failed" in err and "broken on purpose" in err
    assert "scoring: 3/3 (100%)" in err  # stderr is not a terminal here: plain progress lines
    assert main(args + ["--quiet"]) == 1 and "scoring:" not in capsys.readouterr().err


def test_flags_are_taken_only_by_their_exact_names(capsys):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert not parser.allow_abbrev and all(not p.allow_abbrev for p in subparsers.choices.values())
    with pytest.raises(SystemExit) as exit_:
        main(["score", "--benchmark", "nasbench-nlp-ptb", "--metric", "hidden_cov", "--output", "x.csv"])
    assert exit_.value.code == 2 and "unknown option --metric (did you mean '--metrics'" in capsys.readouterr().err


def test_did_you_mean():
    from trainfree.benchmarks import load_benchmark
    from trainfree.metrics import get_metric
    from trainfree.search.strategies import STRATEGIES
    from trainfree.spaces import get_space

    with pytest.raises(UnknownName, match=r"did you mean 'hidden_cov'"):
        get_metric("hiden_cov")
    with pytest.raises(UnknownName, match=r"did you mean 'nasbench-nlp'"):
        get_space("nasbench_nlp")
    with pytest.raises(UnknownName, match=r"did you mean 'evolution'"):
        STRATEGIES.get("evolutoin")
    with pytest.raises(InvalidBenchmark, match=r"did you mean 'nasbench-nlp-ptb'"):
        load_benchmark("nasbench-nlp-pt")
    with pytest.raises(InvalidBenchmark, match=r"did you mean 'random_GPT2_wt103'"):
        load_benchmark("lts:random_GPT2_wt10")
    with pytest.raises(UnknownName) as err:
        get_metric("zzzzzz")
    assert "did you mean" not in str(err.value) and "choose from" in str(err.value)


def _scores_csv(path, names, fingerprints):
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["arch_id", "name", "metric", "value", "status", "error", "seconds", "metric_version",
                      "fingerprint"])
        for fp, offset in fingerprints:
            for i, name in enumerate(names):
                out.writerow(["", name, "params", float(i * i % 7 + offset), "ok", "", "0.1", "1", fp])


def test_correlate_refuses_mixed_fingerprints_and_splits_them(tmp_path, capsys, ptb):
    names = [r.name for r in ptb.records[:30]]
    mixed = tmp_path / "mixed.csv"
    _scores_csv(mixed, names, [("aaaaaaaaaaaa", 0.0), ("bbbbbbbbbbbb", 0.5)])
    assert main(["correlate", "--benchmark", "nasbench-nlp-ptb", "--scores", str(mixed)]) == 2
    err = capsys.readouterr().err
    assert "mix 2 settings fingerprints" in err and "aaaaaaaaaaaa (30 rows)" in err and "--split" in err
    assert main(["correlate", "--benchmark", "nasbench-nlp-ptb", "--scores", str(mixed), "--split",
                 "--output", str(tmp_path / "c.csv")]) == 0
    out = capsys.readouterr().out
    assert "settings fingerprint aaaaaaaaaaaa" in out and "settings fingerprint bbbbbbbbbbbb" in out
    with open(tmp_path / "c.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["fingerprint"], r["n"]) for r in rows] == [("aaaaaaaaaaaa", "30"), ("bbbbbbbbbbbb", "30")]
    doubled = tmp_path / "doubled.csv"
    _scores_csv(doubled, names, [("aaaaaaaaaaaa", 0.0), ("aaaaaaaaaaaa", 0.0)])
    assert main(["correlate", "--benchmark", "nasbench-nlp-ptb", "--scores", str(doubled)]) == 2
    assert "30 (name, metric) pair(s) given more than once" in capsys.readouterr().err  # read_scores says so
    from trainfree import api
    from trainfree.errors import TrainfreeError
    from trainfree.records import Score, Status

    with pytest.raises(TrainfreeError, match="1 duplicate"):  # entries built in Python: api.correlate says so
        api.correlate(ptb, [Score("", "params", 1.0, Status.OK, name=names[0])] * 2)


def test_report_refuses_mixed_fingerprints(ptb):
    from trainfree import api
    from trainfree.errors import TrainfreeError
    from trainfree.records import Score, Status

    head = ptb.head(20)
    scores = [Score("", "params", float(i), Status.OK, name=r.name, fingerprint=fp) for fp in ("f1", "f2")
              for i, r in enumerate(head.records)]
    with pytest.raises(TrainfreeError, match="mix 2 settings fingerprints"):
        api.report(head, scores, {}, resamples=10)


def test_metrics_listing_and_export_columns(tmp_path, capsys):
    from trainfree.runner import score_architectures
    from trainfree.config import ScoreSettings
    from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
    from trainfree.store import Store
    from tests.conftest import RNN

    assert main(["metrics", "--space", "nasbench-nlp"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["name", "better", "version", "requires", "spaces"]
    assert "after one warm-up; a measurement" in " ".join(out)  # latency's description in full
    with Store(tmp_path / "s.db") as store:
        score_architectures("nasbench-nlp", [("a", parse_recipe(RNN))], ["params"], ScoreSettings(size="tiny"),
                            store=store, benchmark="b")
    assert main(["export", "--store", str(tmp_path / "s.db"), "--output", str(tmp_path / "e.csv")]) == 0
    with open(tmp_path / "e.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    from trainfree.spaces import get_space

    assert get_space("nasbench-nlp").arch_id(parse_recipe(row["architecture"])) == row["arch_id"]


# --- interrupts and dead drivers -------------------------------------------------------------------

DRIVER = '''
"""`trainfree score` whose metric is quick for a worker's first two architectures, then ten minutes."""
import sys
import time

from trainfree.metrics import metric

_calls = []


@metric("slow_test", higher_is_better=True, requires={"parameters"})
def slow_test(probe):
    """Slow after two calls."""
    _calls.append(1)
    if len(_calls) > 2:
        time.sleep(600)
    return float(len(_calls))


if __name__ == "__main__":  # the spawned workers import this file too, and so register the metric
    from trainfree.cli import main

    sys.exit(main(sys.argv[1:]))
'''


def _start_slow_driver(tmp_path):
    """A `score --jobs 2` driver whose two workers have each finished two architectures and now sit in a
    ten-minute metric; returns (process, stderr path, store path, every descendant's pid)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("finding child processes needs /proc")
    (tmp_path / "driver.py").write_text(DRIVER)
    store, err = tmp_path / "s.sqlite", tmp_path / "err.txt"
    cmd = [sys.executable, "driver.py", "score", "--benchmark", "nasbench-nlp-ptb", "--metrics", "slow_test",
           "--limit", "20", "--size", "tiny", "--jobs", "2", "--store", str(store), "--output", "o.csv"]
    with open(err, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=fh)
    deadline = time.monotonic() + 240
    while "scoring: 4/20" not in err.read_text():  # the plain progress line (stderr is a file)
        assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
        time.sleep(0.3)
    time.sleep(0.5)  # both workers are inside the slow call now
    kids = _descendants(proc.pid)
    assert len(kids) >= 2
    return proc, err, store, kids


def _stat(pid: int):
    """(state, parent pid) from /proc, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (command)"
    return fields[0], int(fields[1])


def _descendants(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, parent in parents.items() if parent in frontier]
        found += kids
        frontier = kids
    return found


def _gone(pids, within: float) -> list[int]:
    """The pids still alive (zombies count as gone) after up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        alive = [p for p in pids if (stat := _stat(p)) is not None and stat[0] != "Z"]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _stored(store) -> int:
    import sqlite3

    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_a_slow_metric_keeps_work_and_leaves_no_process(tmp_path, signum):
    proc, err, store, kids = _start_slow_driver(tmp_path)
    proc.send_signal(signum)
    # the workers sit in a ten-minute call: an exit well before it means they were ended, not awaited
    proc.wait(timeout=120)
    assert proc.returncode == 128 + signum, err.read_text()
    assert _gone(kids, 10) == []
    assert _stored(store) == 4  # every finished architecture, the last ones committed on the way out
    text = err.read_text()
    assert "rerun to resume" in text and "Traceback" not in text


@pytest.mark.slow
def test_sigkill_of_the_driver_leaves_no_worker(tmp_path):
    proc, err, store, kids = _start_slow_driver(tmp_path)
    proc.kill()
    proc.wait(timeout=10)
    assert _gone(kids, 10) == []


def test_a_worker_watching_its_parent_exits_without_prctl(tmp_path):
    # the portable fallback alone: a parent that dies without a word, a child that must notice
    if not Path("/proc/self/stat").exists():
        pytest.skip("checking the process needs /proc")
    parent = textwrap.dedent("""
        import os, subprocess, sys, time
        child = ("import time; from trainfree.executors import die_with_parent; "
                 f"die_with_parent({os.getpid()}, use_prctl=False, poll=0.2); time.sleep(120)")
        p = subprocess.Popen([sys.executable, "-c", child])
        print(p.pid, flush=True)
        time.sleep(2)
        os._exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", parent], env=_env(), capture_output=True, text=True, timeout=120)
    pid = int(out.stdout.split()[0])
    assert _gone([pid], 60) == [], "the orphaned child is still running"


@pytest.mark.parametrize("with_store", [False, True])
def test_a_dead_worker_message_mentions_a_store_only_when_one_is_used(tmp_path, monkeypatch, with_store):
    import trainfree.executors as ex
    from trainfree.config import ScoreSettings
    from trainfree.runner import score_architectures
    from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
    from trainfree.store import Store
    from tests.conftest import RNN

    def dies(self, fn, tasks):
        raise ex.WorkerDied(ex.DIED)
        yield  # a generator, like the executors' map

    monkeypatch.setattr(ex.LocalExecutor, "map", dies)
    store = Store(tmp_path / "s.db") if with_store else None
    with pytest.raises(ex.WorkerDied) as err:
        score_architectures("nasbench-nlp", [("a", parse_recipe(RNN))], ["params"], ScoreSettings(size="tiny"),
                            store=store)
    assert ("kept in the store" in str(err.value)) == with_store
    assert ("no store was used" in str(err.value)) != with_store


def _readme_sessions() -> list[tuple[str, list[str]]]:
    """The README's "Three commands": each ``$ `` command with the output lines shown under it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("## Three commands", 1)[1].split("\n## ", 1)[0]
    sessions = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                sessions.append((line[2:], []))
            else:
                sessions[-1][1].append(line)
    return sessions


def test_readme_first_screen_installs_and_scores():
    head = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:40]
    assert any("pip install" in line for line in head) and any("pytest -q" in line for line in head)
    score = next(i for i, line in enumerate(head) if line.startswith("$ trainfree score "))
    assert head[score + 1].startswith("400 scores for 200 architectures")  # its output, within the 40 lines
    assert [c.split()[1] for c, _ in _readme_sessions()] == ["score", "correlate", "search", "export-config"]


def test_readme_links_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", text)
    assert len(links) > 10
    missing = [link for link in links if not ((ROOT / link).exists() or (ROOT / "docs" / link).exists())]
    assert not missing


@pytest.mark.slow
def test_readme_commands_print_what_the_readme_shows(tmp_path):
    """Each command of the README's three runs as written, on a fresh store; every line the README shows
    under it is printed, in order ("..." stands for lines left out)."""
    pytest.importorskip("transformers")
    env = dict(_env(), TRAINFREE_STORE=str(tmp_path / "store.sqlite"))
    for command, shown in _readme_sessions():
        words = shlex.split(command)
        proc = subprocess.run([sys.executable, "-m", "trainfree", *words[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (command, proc.stderr)
        printed = [line.rstrip() for line in proc.stdout.splitlines()]
        at = 0
        for line in shown:
            if line == "...":
                continue
            assert line.rstrip() in printed[at:], (command, line, proc.stdout)
            at = printed.index(line.rstrip(), at) + 1
