"""Search: strategies within a benchmark and over the generator, Pareto sets, benchmark lookups,
determinism, resume after SIGKILL, and the command line."""
import importlib.util
import json
import math
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from trainfree.config import ScoreSettings
from trainfree.search import Candidates, lookup, run_search
from trainfree.spaces import get_space
from tests.test_store import _sample_csv, kill_when_stored

TINY = ScoreSettings(size="tiny", batch_size=4, seq_len=8, device="cpu")
# nsga2 is optuna's: without the search extra those cases skip, naming it
NEEDS_OPTUNA = pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                                  reason="nsga2 needs optuna: pip install 'trainfree[search]'")
NSGA2 = pytest.param("nsga2", marks=NEEDS_OPTUNA)
STRATEGIES = ["random", "evolution", NSGA2]


@pytest.fixture(scope="module")
def small_ptb(tmp_path_factory):
    from trainfree.benchmarks import load_benchmark

    path = tmp_path_factory.mktemp("b") / "ptb60.csv"
    _sample_csv(path, 60)
    return load_benchmark(str(path))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_search_within_a_benchmark_stays_inside_and_repeats(small_ptb, strategy):
    space = get_space("nasbench-nlp")
    inside = {space.arch_id(r.arch) for r in small_ptb.records}
    options = {} if strategy == "random" else {"population": 6}
    first = run_search("nasbench-nlp", "hidden_cov", strategy, 15, seed=3, settings=TINY, benchmark=small_ptb, **options)
    ids = [t.arch_id for t in first.trials]
    assert len(ids) == 15 == len(set(ids)) and set(ids) <= inside
    again = run_search("nasbench-nlp", "hidden_cov", strategy, 15, seed=3, settings=TINY, benchmark=small_ptb, **options)
    assert [t.arch_id for t in again.trials] == ids
    ev = first.evaluation()
    assert ev["target"] == pytest.approx(np.mean([r.target for r in small_ptb.records
                                                  if space.arch_id(r.arch) == first.chosen().arch_id]))
    per_arch = {}
    for r in small_ptb.records:
        per_arch.setdefault(space.arch_id(r.arch), []).append(r.target)
    losses = [float(np.mean(v)) for v in per_arch.values()]
    assert ev["percentile"] == pytest.approx(100 * sum(v < ev["target"] for v in losses) / len(losses))
    assert ev["regret"] == pytest.approx(ev["target"] - min(losses))


def test_chosen_is_the_best_by_the_metric_direction(small_ptb):
    result = run_search("nasbench-nlp", "hidden_cov", "random", 10, seed=0, settings=TINY, benchmark=small_ptb)
    assert result.chosen().values["hidden_cov"] == max(t.values["hidden_cov"] for t in result.trials)


@pytest.mark.parametrize("strategy", ["random", NSGA2])
def test_pareto_set_is_the_non_dominated_trials(strategy):
    result = run_search("nasbench-nlp", "hidden_cov", strategy, 24, seed=1, settings=TINY, objective="params",
                        **({"population": 8} if strategy == "nsga2" else {}))
    p = result.problem
    front = {t.arch_id for t in p.pareto()}
    assert front
    finite = [t for t in p.trials if math.isfinite(p.fitness(t))]

    def dominates(a, b):
        return p.fitness(a) >= p.fitness(b) and p.cost(a) <= p.cost(b) and (p.fitness(a) > p.fitness(b) or
                                                                            p.cost(a) < p.cost(b))

    for t in finite:
        beaten = any(dominates(o, t) for o in finite)
        assert beaten == (t.arch_id not in front)


def test_evolution_mutates_tournament_winners_of_the_living_population(monkeypatch):
    # Regularized evolution: each parent is the best of 3 random members of the last 10 evaluated trials
    # (the oldest leaves as a child joins). The best of 3 distinct members ranks at least 3rd from the
    # bottom of the 10, and on average ~8th (a parent drawn without selection averages 5.5).
    from trainfree.search.problem import Problem

    evaluated, parents = [], []
    real_evaluate = Problem.evaluate
    space = get_space("nasbench-nlp")
    real_mutate = space.mutate

    def evaluate(self, archs):
        trials = real_evaluate(self, archs)
        evaluated.extend(trials)
        return trials

    def mutate(arch, rng):
        parents.append((space.arch_id(arch), len(evaluated)))
        return real_mutate(arch, rng)

    monkeypatch.setattr(Problem, "evaluate", evaluate)
    monkeypatch.setattr(space, "mutate", mutate)
    result = run_search("nasbench-nlp", "hidden_cov", "evolution", 40, seed=0, settings=TINY, population=10,
                        sample_size=3)
    p = result.problem
    assert len({t.arch_id for t in p.trials}) == 40 and [t.arch_id for t in evaluated] == [t.arch_id for t in p.trials]
    assert len(parents) >= 30
    ranks = []
    for parent_id, count in parents:
        alive = evaluated[count - 10:count]
        assert parent_id in [t.arch_id for t in alive], "the parent is not in the living population"
        fitness = sorted(p.fitness(t) for t in alive)
        parent = next(p.fitness(t) for t in alive if t.arch_id == parent_id)
        assert parent >= fitness[2], "the parent cannot have won a tournament of 3"
        ranks.append(sum(f <= parent for f in fitness))
    assert sum(ranks) / len(ranks) > 7


def test_a_search_starts_its_worker_pool_once(monkeypatch, small_ptb):
    import trainfree.executors as ex

    started = []

    class Counting(ex.ProcessPoolExecutor):
        def __init__(self, *a, **k):
            started.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(ex, "ProcessPoolExecutor", Counting)
    pooled = run_search("nasbench-nlp", "hidden_cov", "random", 24, seed=2, settings=TINY, benchmark=small_ptb,
                        jobs=2, threads=1)  # batches of 8: three batches
    assert started == [1]
    local = run_search("nasbench-nlp", "hidden_cov", "random", 24, seed=2, settings=TINY, benchmark=small_ptb)
    assert [(t.arch_id, t.values) for t in pooled.problem.trials] == [
        (t.arch_id, pytest.approx(t.values, rel=1e-6)) for t in local.problem.trials]


def test_single_children_run_in_process_on_every_jobs_threads(monkeypatch):
    import trainfree.runner as runner
    from trainfree.search.problem import Problem

    calls = []
    real = runner.score_architectures

    def spy(*a, **k):
        calls.append((k["executor"], k["threads"]))
        return real(*a, **{**k, "executor": "local", "jobs": 1, "pool": None})

    monkeypatch.setattr(runner, "score_architectures", spy)
    space = get_space("nasbench-nlp")
    problem = Problem(space, "hidden_cov", TINY, budget=10, jobs=2, executor="process", threads=1)
    archs = [space.sample(np.random.default_rng(i)) for i in range(5)]
    problem.evaluate(archs[:1])  # one child: in-process, on both jobs' threads
    problem.evaluate(archs[1:])  # a batch of four: the workers, one thread each
    assert calls == [("local", 2), ("process", 1)]


def test_nsga2_without_optuna_names_the_extra(monkeypatch):
    from trainfree.errors import MissingExtra

    monkeypatch.setitem(sys.modules, "optuna", None)  # what an install without the extra sees
    with pytest.raises(MissingExtra, match=r"pip install 'trainfree\[search\]'"):
        run_search("nasbench-nlp", "hidden_cov", "nsga2", 4, settings=TINY, population=4)


def test_nearest_candidate():
    space = get_space("nasbench-bert")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(30)]
    cands = Candidates(space, archs)
    assert space.arch_id(cands.nearest(archs[4], set(), rng)) == space.arch_id(archs[4])
    other = cands.nearest(archs[4], {space.arch_id(archs[4])}, rng)
    d = len(space.features(other) ^ space.features(archs[4]))
    assert d > 0 and all(len(space.features(a) ^ space.features(archs[4])) >= d for a in archs
                         if space.arch_id(a) != space.arch_id(archs[4]))


def test_lookup_percentile_and_regret():
    targets = {"a": 4.0, "b": 5.0, "c": 6.0, "d": 7.0}
    assert lookup(targets, "c", lower_is_better=True) == {"target": 6.0, "percentile": 50.0, "regret": 2.0, "best": 4.0}
    assert lookup(targets, "c", lower_is_better=False) == {"target": 6.0, "percentile": 25.0, "regret": 1.0, "best": 7.0}


def test_bad_search_requests_fail_clearly(small_ptb):
    from trainfree.errors import TrainfreeError

    with pytest.raises(TrainfreeError, match="single-objective"):
        run_search("nasbench-nlp", "hidden_cov", "evolution", 5, settings=TINY, objective="params")
    with pytest.raises(TrainfreeError, match="does not apply"):
        run_search("nasbench-nlp", "head_confidence", "random", 5, settings=TINY)
    with pytest.raises(TrainfreeError, match="takes no option population"):
        run_search("nasbench-nlp", "hidden_cov", "random", 5, settings=TINY, population=4)
    with pytest.raises(TrainfreeError, match="exceeds"):
        run_search("nasbench-nlp", "hidden_cov", "random", 10_000, settings=TINY, benchmark=small_ptb)
    proc = subprocess.run([sys.executable, "-m", "trainfree", "search", "--space", "nasbench-bert", "--strategy",
                           "evolution", "--objective", "params", "--no-store"], capture_output=True, text=True)
    assert proc.returncode == 2 and "single-objective" in proc.stderr and "Traceback" not in proc.stderr


def _search_cmd(store, out):
    return [sys.executable, "-m", "trainfree", "search", "--space", "nasbench-nlp", "--strategy", "evolution",
            "--budget", "60", "--search-seed", "7", "--population", "10", "--size", "tiny", "--batch-size", "10",
            "--seq-len", "20", "--jobs", "1", "--store", str(store), "--output", str(out), "--quiet"]


def test_search_killed_midway_resumes_to_the_same_result(tmp_path):
    whole = subprocess.run(_search_cmd(tmp_path / "a.db", tmp_path / "a.json"), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    store = tmp_path / "b.db"
    kill_when_stored(_search_cmd(store, tmp_path / "b.json"), store, 25)
    assert not (tmp_path / "b.json").exists()
    resumed = subprocess.run(_search_cmd(store, tmp_path / "b.json"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert [t["arch_id"] for t in a["trials"]] == [t["arch_id"] for t in b["trials"]]
    assert a["chosen"] == b["chosen"] and a["best"] == b["best"]
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 60  # hidden_cov once per architecture


def test_search_eval_command(tmp_path):
    bench = tmp_path / "ptb40.csv"
    _sample_csv(bench, 40)
    out = tmp_path / "eval.csv"
    proc = subprocess.run([sys.executable, "-m", "trainfree", "search-eval", "--benchmark", str(bench), "--metrics",
                           "hidden_cov,params", "--strategies", "random,evolution", "--seeds", "3", "--budget", "8",
                           "--size", "tiny", "--batch-size", "4", "--seq-len", "8", "--jobs", "1", "--no-store",
                           "--output", str(out), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("strategy,metric,seeds,target_mean") and len(lines) == 1 + 1 + 4
    assert "share_beyond_p10" in lines[0]
    assert "10th percentile" in proc.stdout
