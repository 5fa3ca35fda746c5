"""The search loop: one loop owns the budget, the evaluation, the store and resume; strategies only propose.

Each round asks the strategy (:mod:`trainfree.search.strategies`) for proposals with a generator seeded
by (search seed, trials so far, attempt), keeps those the history lacks (up to the budget), scores them
through the scoring loop and its store, and records them as trials under the search's id. A resumed run
(the same search: same identity) reads its recorded trials back into the history and goes on from
there, so it ends where an uninterrupted run does. Within a benchmark, the choice's trained result is
looked up.
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from trainfree.config import ScoreSettings
from trainfree.errors import TrainfreeError
from trainfree.records import Status
from trainfree.search.problem import Candidates, History, Problem, Trial
from trainfree.search.strategies import Proposal, make_strategy

#: changes whenever the same identity would propose other architectures (2: ask/tell strategies)
SEARCH_VERSION = 2
#: fruitless asks in a row (every proposal already evaluated) before a search stops short of its budget
PATIENCE = 50


@dataclass
class SearchResult:
    problem: Problem
    history: History
    strategy: str
    seed: int
    benchmark: object = None  # a Benchmark when the search stayed within one
    options: dict | None = None
    search_id: str | None = None  # the key of its recorded trials in the store
    notes: list = field(default_factory=list)  # how the metric was chosen, warnings (trainfree.api.search)

    @property
    def trials(self) -> list[Trial]:
        return self.history.trials

    def best(self, k: int = 1) -> list[Trial]:
        return self.history.best(k)

    def pareto(self) -> list[Trial]:
        return self.history.pareto()

    def chosen(self) -> Trial:
        """What the search returns: the best trial by the metric."""
        return self.history.best(1)[0]

    def evaluation(self) -> dict | None:
        """The chosen architecture's trained result: target, percentile (share of the benchmark's
        distinct architectures that trained better, 0 = the best) and regret against the best."""
        if self.benchmark is None:
            return None
        targets = arch_targets(self.benchmark)
        return lookup(targets, self.chosen().arch_id, self.benchmark.lower_is_better)

    def as_dict(self) -> dict:
        space = self.problem.space
        p = self.problem

        def trial(t: Trial) -> dict:
            return {"step": t.step, "arch_id": t.arch_id, "shape": space.describe(t.arch), "values": t.values,
                    "status": str(t.status), "arch": space.to_json(t.arch)}

        out = {"space": space.name, "strategy": self.strategy, "options": self.options or {}, "seed": self.seed,
               "notes": list(self.notes),
               "search_version": SEARCH_VERSION, "budget": p.budget,
               "metric": p.metric, "metric_higher_is_better": p.metric_spec.higher_is_better,
               "objective": p.objective, "chosen": trial(self.chosen()),
               "best": [trial(t) for t in self.best(10)], "pareto": [trial(t) for t in self.pareto()] if p.objective else [],
               "trials": [trial(t) for t in self.trials]}
        if self.benchmark is not None:
            out["benchmark"] = self.benchmark.name
            out["evaluation"] = self.evaluation()
        return out


def arch_targets(benchmark) -> dict[str, float]:
    """Mean trained target per distinct architecture (repeated runs of one recipe averaged)."""
    from trainfree.spaces import get_space

    space = get_space(benchmark.space)
    sums: dict[str, list[float]] = {}
    for r in benchmark.records:
        if math.isfinite(r.target):
            sums.setdefault(space.arch_id(r.arch), []).append(r.target)
    return {a: sum(v) / len(v) for a, v in sums.items()}


def lookup(targets: dict[str, float], arch_id: str, lower_is_better: bool) -> dict:
    values = np.array(list(targets.values()))
    sign = 1.0 if lower_is_better else -1.0  # sign * target: lower is better
    target = targets.get(arch_id, math.nan)
    best = float(values.min() if lower_is_better else values.max())
    if not math.isfinite(target):
        return {"target": math.nan, "percentile": math.nan, "regret": math.nan, "best": best}
    better = float(np.mean(sign * values < sign * target))
    return {"target": target, "percentile": 100.0 * better, "regret": sign * (target - best), "best": best}


def search_identity(problem: Problem, strategy, seed: int, benchmark=None) -> dict:
    """Everything that decides which architectures a search proposes and the values it sees."""
    identity = {"version": SEARCH_VERSION, "space": problem.space.name, "strategy": strategy.name, "seed": seed,
                "budget": problem.budget, "options": strategy.options,
                "metrics": {m: spec.key_version for m, spec in _specs(problem).items()},
                "metric": problem.metric, "objective": problem.objective,
                "settings": problem.space.fingerprint(problem.settings), "benchmark": None}
    if problem.candidates is not None:  # the candidates, in order (ties are broken by position)
        digest = hashlib.sha256("\n".join(problem.candidates.ids).encode()).hexdigest()[:16]
        identity["benchmark"] = {"name": benchmark.name if benchmark is not None else None, "candidates": digest}
    return identity


def _specs(problem: Problem) -> dict:
    specs = {problem.metric: problem.metric_spec}
    if problem.objective_spec is not None:
        specs[problem.objective] = problem.objective_spec
    return specs


def search_key(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


class _Evaluator:
    """Scores proposals through the scoring loop and its store: a batch on the executor kept up for the
    whole search, a batch too small for it (evolution's one child) in-process on every job's threads."""

    def __init__(self, problem: Problem, store, executor, jobs: int, threads: int | None, address: str | None):
        self.problem, self.store, self.executor = problem, store, executor
        self.jobs, self.threads, self.address = jobs, threads, address
        self.first_error = ""  # of the metric, for the message when nothing could be chosen

    def __call__(self, archs: list) -> dict[str, tuple[dict, Status]]:
        from trainfree.runner import score_architectures

        p = self.problem
        small = len(archs) < 2 * self.jobs
        threads = self.jobs * (self.threads or 1) if small and self.jobs > 1 else self.threads
        run = score_architectures(p.space, [(p.space.arch_id(a), a) for a in archs], p.metrics, p.settings,
                                  jobs=1 if small else self.jobs, executor="local" if small else self.executor,
                                  store=self.store, address=self.address, threads=threads)
        by_id: dict[str, dict] = {}
        for row in run.rows:
            by_id.setdefault(row.arch_id, {})[row.metric] = row
            if row.metric == p.metric and row.error and not self.first_error:
                self.first_error = row.error
        out = {}
        for arch_id, rows in by_id.items():
            values = {m: (r.value if r.status is not Status.FAILED else math.nan) for m, r in rows.items()}
            status = next((r.status for r in rows.values() if r.status is not Status.OK), Status.OK)
            out[arch_id] = (values, status)
        return out


def _read_back(store, search_id: str, problem: Problem) -> list[Trial]:
    """The trials a killed or finished run of this search recorded, with their architectures."""
    recorded = store.trials(search_id)
    archs = store.architectures([arch_id for _, arch_id, *_ in recorded])
    trials = []
    for step, arch_id, values, status, _, info in recorded:
        if arch_id not in archs:
            raise TrainfreeError(f"{store.path}: search {search_id}: trial {step} names architecture {arch_id}, "
                                 f"which the store does not hold")
        arch = problem.space.from_json(archs[arch_id], where=f"{store.path}: architecture {arch_id}")
        trials.append(Trial(step, arch_id, arch, {m: float(values[m]) for m in problem.metrics}, Status(status), info))
    return trials


def run_search(space, metric: str, strategy: str = "random", budget: int = 100, seed: int = 0,
               settings: ScoreSettings | None = None, objective: str | None = None, benchmark=None,
               store=None, jobs: int = 1, executor=None, address: str | None = None,
               on_progress=None, threads: int | None = None, **options) -> SearchResult:
    """Search ``space`` (an object or a registered name) for architectures the ``metric`` ranks best (and,
    with an ``objective``, cheapest), evaluating ``budget`` distinct ones. ``benchmark`` (a Benchmark of
    that space) keeps the search within its architectures. ``options`` go to the strategy (population,
    sample_size, batch). With a ``store`` the trials are recorded, and a rerun resumes."""
    from trainfree.executors import executing
    from trainfree.runner import resolve_space

    space = resolve_space(space)
    chosen = make_strategy(strategy, **options)
    if objective and not chosen.multi_objective:
        raise TrainfreeError(f"strategy {strategy!r} is single-objective; use nsga2 or random with --objective")
    candidates = None
    if benchmark is not None:
        if benchmark.space != space.name:
            raise TrainfreeError(f"benchmark {benchmark.name} holds {benchmark.space} architectures, not {space.name}")
        candidates = Candidates(space, [r.arch for r in benchmark.records if math.isfinite(r.target)])
    settings = settings or space.default_settings()
    problem = Problem(space, metric, settings, budget, objective, candidates)
    history = History(problem)
    search_id = None
    if store is not None:
        identity = search_identity(problem, chosen, seed, benchmark)
        search_id = search_key(identity)
        store.add_search(search_id, identity)
        for t in _read_back(store, search_id, problem):
            history.add(t)
    size = chosen.size(problem)
    total = budget if size is None else min(budget, size)  # a grid's progress counts its points
    if on_progress:
        on_progress(len(history), total)  # the start, so that the rate counts from here
    with executing(executor, jobs, threads, address) as ex:
        evaluate = _Evaluator(problem, store, ex, jobs, threads, address)
        attempt = 0
        while len(history) < budget and not chosen.exhausted(history):
            rng = np.random.default_rng([seed, len(history), attempt])
            fresh: dict[str, Proposal] = {}
            for proposal in chosen.ask(history, rng, chosen.batch(history)):
                arch_id = space.arch_id(proposal.arch)
                if history.seen(proposal.arch) is None and arch_id not in fresh:
                    fresh[arch_id] = proposal
            fresh = dict(list(fresh.items())[:budget - len(history)])
            if not fresh:
                attempt += 1
                if attempt >= PATIENCE:
                    raise TrainfreeError(f"{strategy} search found only {len(history)} distinct architectures of "
                                         f"space {space.name!r} (budget {budget}): {PATIENCE} rounds in a row "
                                         f"proposed only architectures already evaluated")
                continue
            attempt = 0
            proposed = time.time()
            scored = evaluate([p.arch for p in fresh.values()])
            new = []
            for arch_id, proposal in fresh.items():
                values, status = scored[arch_id]
                # the canonical form, as a resumed run reads it back: strategies then see the same history
                arch = space.from_json(space.canonical_json(proposal.arch))
                trial = Trial(len(history), arch_id, arch, values, status, proposal.info)
                history.add(trial)
                new.append((trial.step, arch_id, values, status, proposed, proposal.info))
            if store is not None:
                store.put_trials(search_id, new)
            if on_progress:
                on_progress(len(history), total)
    if not any(t.status is not Status.FAILED and math.isfinite(problem.fitness(t)) for t in history.trials):
        failed = sum(t.status is Status.FAILED for t in history.trials)
        raise TrainfreeError(f"none of the {len(history)} architectures evaluated has a finite {metric} ({failed} "
                             f"failed, {len(history) - failed} non-finite): nothing to choose from"
                             + (f"; the first error: {evaluate.first_error}" if evaluate.first_error else ""))
    return SearchResult(problem, history, strategy, seed, benchmark, chosen.options, search_id)


def search_eval(bench, metrics, strategies, seeds, budget, settings, store, jobs=1, executor=None, on_progress=None,
                threads=None, address=None, on_search_progress=None):
    """Rows of (strategy, metric) -> the chosen architectures' targets over ``seeds`` searches (mean, sd,
    mean and median percentile, share of searches whose choice is at least as good as the benchmark's
    10th percentile, mean regret), plus the expectation of a uniformly random choice. Every benchmark architecture is scored first, in one
    parallel pass through the store, so the searches read their values back instead of recomputing.
    ``on_progress(done, total)`` follows that pass (architectures), ``on_search_progress(done, total)``
    the searches (evaluations: searches x budget)."""
    from trainfree.runner import score_architectures

    score_architectures(bench.space, [(r.name, r.arch) for r in bench.records], list(dict.fromkeys(metrics)), settings,
                        jobs=jobs, executor=executor, store=store, benchmark=bench.name, on_progress=on_progress,
                        threads=threads, address=address, sink=lambda row: None)  # the searches read the store
    targets = arch_targets(bench)
    values = sorted(targets.values(), reverse=not bench.lower_is_better)  # best first
    all_lookups = [lookup(targets, a, bench.lower_is_better) for a in targets]
    rows = [{"strategy": "random choice", "metric": "-", "searches": "-", "target_mean": statistics.fmean(
        targets.values()), "target_sd": statistics.pstdev(targets.values()), "percentile_mean": statistics.fmean(
        r["percentile"] for r in all_lookups), "regret_mean": statistics.fmean(r["regret"] for r in all_lookups)}]
    p10 = values[max(0, math.ceil(0.1 * len(values)) - 1)]
    sign = 1.0 if bench.lower_is_better else -1.0
    rows[0]["percentile_median"] = statistics.median(r["percentile"] for r in all_lookups)
    rows[0]["share_beyond_p10"] = statistics.fmean(sign * t <= sign * p10 for t in targets.values())
    total, base = len(metrics) * len(strategies) * len(seeds) * budget, 0

    def one_search(metric, strategy, seed):
        nonlocal base
        progress = None if on_search_progress is None else (lambda done, _budget: on_search_progress(base + done, total))
        result = run_search(bench.space, metric, strategy, budget, seed, settings, benchmark=bench, store=store,
                            jobs=1, executor="local", on_progress=progress)
        base += budget
        if on_search_progress is not None:
            on_search_progress(base, total)  # also where a search stopped short of its budget
        return result.evaluation()

    if on_search_progress is not None:
        on_search_progress(0, total)
    for metric in metrics:
        for strategy in strategies:
            evs = [one_search(metric, strategy, seed) for seed in seeds]
            ts = [e["target"] for e in evs]
            rows.append({"strategy": strategy, "metric": metric, "searches": len(seeds), "target_mean": statistics.fmean(ts),
                         "target_sd": statistics.pstdev(ts),
                         "percentile_mean": statistics.fmean(e["percentile"] for e in evs),
                         "percentile_median": statistics.median(e["percentile"] for e in evs),
                         "share_beyond_p10": statistics.fmean(sign * t <= sign * p10 for t in ts),
                         "regret_mean": statistics.fmean(e["regret"] for e in evs)})
    return rows, {"distinct_architectures": len(targets), "best": values[0], "p10": p10}
