"""Run a search and, within a benchmark, look up what it chose."""
from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import dataclass

import numpy as np

from trainfree.config import ScoreSettings
from trainfree.errors import TrainfreeError
from trainfree.search.problem import BudgetSpent, Candidates, Problem, Trial
from trainfree.search.strategies import STRATEGIES


@dataclass
class SearchResult:
    problem: Problem
    strategy: str
    seed: int
    benchmark: object = None  # a Benchmark when the search stayed within one

    @property
    def trials(self) -> list[Trial]:
        return self.problem.trials

    def chosen(self) -> Trial:
        """What the search returns: the best trial by the metric."""
        return self.problem.best(1)[0]

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
            return {"step": t.step, "arch_id": t.arch_id, "values": t.values, "status": t.status,
                    "arch": space.to_json(t.arch)}

        out = {"space": space.name, "strategy": self.strategy, "seed": self.seed, "budget": p.budget,
               "metric": p.metric, "metric_higher_is_better": p.metric_spec.higher_is_better,
               "objective": p.objective, "chosen": trial(self.chosen()),
               "best": [trial(t) for t in p.best(10)], "pareto": [trial(t) for t in p.pareto()] if p.objective else [],
               "trials": [trial(t) for t in p.trials]}
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


def search_identity(problem: Problem, strategy: str, seed: int, options: dict, benchmark=None) -> dict:
    """Everything that decides which architectures a search proposes and the values it sees."""
    from trainfree.metrics import get_metric

    identity = {"space": problem.space.name, "strategy": strategy, "seed": seed, "budget": problem.budget,
                "options": options, "metrics": {m: get_metric(m).version for m in problem.metrics},
                "metric": problem.metric, "objective": problem.objective,
                "settings": problem.space.fingerprint(problem.settings), "benchmark": None}
    if problem.candidates is not None:  # the candidates, in order (ties are broken by position)
        digest = hashlib.sha256("\n".join(problem.candidates.ids).encode()).hexdigest()[:16]
        identity["benchmark"] = {"name": benchmark.name if benchmark is not None else None, "candidates": digest}
    return identity


def search_key(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def run_search(space_name: str, metric: str, strategy: str = "random", budget: int = 100, seed: int = 0,
               settings: ScoreSettings | None = None, objective: str | None = None, benchmark=None,
               store=None, jobs: int = 1, executor: str | None = None, address: str | None = None,
               on_progress=None, threads: int | None = None, **options) -> SearchResult:
    """Search ``space_name`` for architectures the ``metric`` ranks best (and, with an ``objective``,
    cheapest). ``benchmark`` (a Benchmark of that space) keeps the search within its architectures."""
    from trainfree.executors import session
    from trainfree.spaces import get_space

    space = get_space(space_name)
    fn = STRATEGIES.get(strategy)
    if objective and not fn.multi_objective:
        raise TrainfreeError(f"strategy {strategy!r} is single-objective; use nsga2 or random with --objective")
    import inspect

    accepted = set(inspect.signature(fn).parameters) - {"problem", "seed"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TrainfreeError(f"strategy {strategy!r} takes no option {', '.join(unknown)}"
                             + (f" (it takes: {', '.join(sorted(accepted))})" if accepted else ""))
    candidates = None
    if benchmark is not None:
        if benchmark.space != space_name:
            raise TrainfreeError(f"benchmark {benchmark.name} holds {benchmark.space} architectures, not {space_name}")
        candidates = Candidates(space, [r.arch for r in benchmark.records if math.isfinite(r.target)])
    settings = settings or space.default_settings()
    executor = executor or ("process" if jobs > 1 else "local")
    problem = Problem(space, metric, settings, budget, objective, candidates, store, jobs, executor, address,
                      on_progress, threads)
    if store is not None:
        identity = search_identity(problem, strategy, seed, options, benchmark)
        problem.resume(search_key(identity), identity)
    if on_progress:
        on_progress(len(problem.trials), budget)  # the start, so that the rate counts from here
    with session(executor, jobs, threads, address) as pool:
        problem.pool = pool
        try:
            fn(problem, seed, **options)
        except BudgetSpent:
            pass
    if not problem.trials:
        raise TrainfreeError("the search evaluated no architecture")
    return SearchResult(problem, strategy, seed, benchmark)


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
    rows = [{"strategy": "random choice", "metric": "-", "seeds": len(targets), "target_mean": statistics.fmean(
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
            rows.append({"strategy": strategy, "metric": metric, "seeds": len(seeds), "target_mean": statistics.fmean(ts),
                         "target_sd": statistics.pstdev(ts),
                         "percentile_mean": statistics.fmean(e["percentile"] for e in evs),
                         "percentile_median": statistics.median(e["percentile"] for e in evs),
                         "share_beyond_p10": statistics.fmean(sign * t <= sign * p10 for t in ts),
                         "regret_mean": statistics.fmean(e["regret"] for e in evs)})
    return rows, {"distinct_architectures": len(targets), "best": values[0], "p10": p10}
