"""Search strategies. Each is ``strategy(problem, seed, **options)``: it proposes architectures,
evaluates them through ``problem.evaluate`` until the budget is spent, and draws every random
choice from generators seeded by ``seed``, so a rerun proposes the same architectures in the same
order and, with the store, resumes where an interrupted run stopped.
"""
from __future__ import annotations

import math

import numpy as np

from trainfree.errors import MissingExtra, TrainfreeError
from trainfree.registry import Registry
from trainfree.search.problem import Problem

STRATEGIES: Registry = Registry("search strategy")
#: proposals allowed per unit of budget before a strategy gives up finding new architectures
PATIENCE = 50


def strategy(name: str, multi_objective: bool):
    def register(fn):
        fn.multi_objective = multi_objective
        STRATEGIES.add(name, fn)
        return fn

    return register


def _batch(problem: Problem) -> int:
    return max(1, 4 * problem.jobs)


@strategy("random", multi_objective=True)
def random_search(problem: Problem, seed: int) -> None:
    """Uniform samples from the space's generator (or from the benchmark's architectures), in batches."""
    rng = np.random.default_rng(seed)
    if problem.candidates is not None:
        order = rng.permutation(len(problem.candidates))
        archs = [problem.candidates.archs[i] for i in order]
        for i in range(0, len(archs), _batch(problem)):
            problem.evaluate(archs[i:i + _batch(problem)])
        return
    proposals = 0
    while not problem.done:
        batch = []
        while len(batch) < _batch(problem) and proposals < PATIENCE * problem.budget:
            arch = problem.space.sample(rng)
            proposals += 1
            if problem.seen(arch) is None:
                batch.append(arch)
        if not batch:
            raise TrainfreeError(f"random search found only {len(problem.trials)} distinct architectures")
        problem.evaluate(batch)


@strategy("evolution", multi_objective=False)
def evolution(problem: Problem, seed: int, population: int = 20, sample_size: int = 5) -> None:
    """Regularized (aging) evolution (Real et al., AAAI 2019): a random initial population; then the
    best of ``sample_size`` random members is mutated, the child joins and the oldest member leaves.
    Within a benchmark, each child is replaced by its nearest not yet evaluated benchmark architecture."""
    rng = np.random.default_rng(seed)
    population = min(population, problem.budget)
    sample_size = min(sample_size, population)
    if problem.candidates is not None:
        first = [problem.candidates.archs[i] for i in rng.choice(len(problem.candidates), population, replace=False)]
    else:
        first, ids = [], set()
        while len(first) < population:
            arch = problem.space.sample(rng)
            if problem.space.arch_id(arch) not in ids:
                ids.add(problem.space.arch_id(arch))
                first.append(arch)
    alive = list(problem.evaluate(first))
    proposals = 0
    while not problem.done:
        if proposals >= PATIENCE * problem.budget:
            raise TrainfreeError(f"evolution found only {len(problem.trials)} distinct architectures")
        contenders = [alive[i] for i in rng.choice(len(alive), sample_size, replace=False)]
        parent = max(contenders, key=lambda t: (problem.fitness(t), -t.step))
        child = problem.space.mutate(parent.arch, rng)
        proposals += 1
        if problem.candidates is not None:
            child = problem.candidates.nearest(child, problem.evaluated_ids, rng)
            if child is None:
                return
        if problem.seen(child) is not None:
            continue
        alive.append(problem.evaluate([child])[0])
        alive.pop(0)


@strategy("nsga2", multi_objective=True)
def nsga2(problem: Problem, seed: int, population: int = 20) -> None:
    """optuna's NSGA-II over the space's gene encoding (every gene vector decodes to a valid
    architecture): maximise the metric and, with an objective, minimise the cost. Within a benchmark,
    each decoded architecture is replaced by its nearest not yet evaluated benchmark architecture."""
    try:
        import optuna
    except ImportError:
        raise MissingExtra("the nsga2 strategy needs optuna: pip install 'trainfree[search]'") from None
    from trainfree.spaces.choices import GENE_RANGE

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize"] + (["minimize"] if problem.objective else [])
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(directions=directions, sampler=sampler)
    rng = np.random.default_rng(seed)
    asked = 0
    while not problem.done:
        if asked >= PATIENCE * problem.budget:
            raise TrainfreeError(f"nsga2 found only {len(problem.trials)} distinct architectures")
        trials, archs, taken = [], [], set()
        for _ in range(population):
            trial = study.ask()
            asked += 1
            arch = problem.space.decode([trial.suggest_int(f"g{i}", 0, GENE_RANGE - 1)
                                         for i in range(problem.space.n_genes)])
            if problem.candidates is not None:
                arch = problem.candidates.nearest(arch, problem.evaluated_ids | taken, rng)
                if arch is None:  # every benchmark architecture is taken
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    continue
            taken.add(problem.space.arch_id(arch))
            trials.append(trial)
            archs.append(arch)
        results = problem.evaluate(archs)
        for trial, result in zip(trials, results):
            values = [problem.fitness(result)] + ([problem.cost(result)] if problem.objective else [])
            if all(math.isfinite(v) for v in values):
                study.tell(trial, values)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
