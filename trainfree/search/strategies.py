"""Search strategies, ask/tell style: ``strategy.ask(history, rng, n)`` proposes up to ``n`` architectures.

A strategy keeps no state between calls: what it proposes is a function of the history (the trials so
far, :class:`~trainfree.search.problem.History`), the generator it is handed and its options. The
search loop (:mod:`trainfree.search.run`) owns the budget, the evaluation, the store and resume, and
hands each call a generator seeded by (search seed, trials so far, attempt), so a rerun or a resumed
run proposes the same architectures in the same order. Proposals the history already holds are
dropped by the loop; a strategy need not avoid them.

A strategy of your own: subclass :class:`Strategy`, set ``name`` (and ``multi_objective``), take its
options as keyword arguments of ``__init__`` (stored in ``self.options``: they enter the search's
identity), implement ``ask``, and ``register_strategy(YourStrategy)``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from trainfree.errors import MissingExtra, TrainfreeError
from trainfree.registry import Registry


@dataclass
class Proposal:
    """An architecture to evaluate, and what the strategy wants kept with its trial (``Trial.info``)."""
    arch: object
    info: dict = field(default_factory=dict)


class Strategy:
    """Proposes architectures from the history. Subclasses set ``name`` and implement :meth:`ask`."""

    name = ""
    #: whether it can search a metric against a cost (``objective``)
    multi_objective = False

    def __init__(self, **options):
        if options:
            raise TrainfreeError(f"strategy {self.name!r} takes no option {', '.join(sorted(options))}")
        self.options: dict = {}

    def batch(self, history) -> int:
        """How many proposals the loop asks for next."""
        return 1

    def exhausted(self, history) -> bool:
        """True when there is nothing left to propose (a grid gone through): the search then ends, short of
        its budget, without an error."""
        return False

    def size(self, problem) -> int | None:
        """How many architectures it can propose at most, when it knows (a grid); None otherwise."""
        return None

    def ask(self, history, rng: np.random.Generator, n: int) -> list[Proposal]:
        raise NotImplementedError


STRATEGIES: Registry[type] = Registry("search strategy")
#: the keyword arguments of a search that are not a strategy's options (a misspelt one is suggested)
SEARCH_OPTIONS = ("objective", "budget", "search_seed", "settings", "benchmark", "store", "jobs", "executor",
                  "address", "threads", "on_progress", "metric", "strategy")


def register_strategy(cls: type) -> type:
    STRATEGIES.add(cls.name, cls)
    return cls


def make_strategy(name: str, **options) -> Strategy:
    """The strategy ``name`` with ``options``; an option it does not take is named with those it does."""
    cls = STRATEGIES.get(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "options")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        from trainfree.registry import did_you_mean

        hint = did_you_mean(unknown[0], accepted + list(SEARCH_OPTIONS))
        raise TrainfreeError(f"strategy {name!r} takes no option {', '.join(unknown)}{hint}"
                             + (f" (it takes: {', '.join(sorted(accepted))})" if accepted else ""))
    return cls(**options)


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrainfreeError(f"{name} must be a positive integer, got {value!r}")
    return value


def _unseen_candidates(history, rng: np.random.Generator, n: int) -> list[Proposal]:
    """Up to ``n`` of the benchmark's architectures the history lacks, drawn uniformly without replacement."""
    cands = history.problem.candidates
    unseen = cands.unseen(history.ids)
    picked = rng.choice(len(unseen), min(n, len(unseen)), replace=False) if unseen else []
    return [Proposal(cands.archs[unseen[int(i)]]) for i in picked]


@register_strategy
class RandomSearch(Strategy):
    """Uniform samples from the space's generator (or from the benchmark's architectures), ``batch`` at a time."""

    name = "random"
    multi_objective = True

    def __init__(self, batch: int = 16):
        self.options = {"batch": _positive("batch", batch)}

    def batch(self, history) -> int:
        return self.options["batch"]

    def ask(self, history, rng, n):
        if history.problem.candidates is not None:
            return _unseen_candidates(history, rng, n)
        return [Proposal(history.problem.space.sample(rng)) for _ in range(n)]


@register_strategy
class Evolution(Strategy):
    """Regularized (aging) evolution (Real et al., AAAI 2019): a random initial population of
    ``population``; then the best of ``sample_size`` random members of the living population (the last
    ``population`` trials) is mutated, one child at a time. Within a benchmark, each child is replaced
    by its nearest not yet evaluated benchmark architecture."""

    name = "evolution"

    def __init__(self, population: int = 20, sample_size: int = 5):
        self.options = {"population": _positive("population", population),
                        "sample_size": _positive("sample_size", sample_size)}

    def _sizes(self, history) -> tuple[int, int]:
        population = min(self.options["population"], history.problem.budget)
        return population, min(self.options["sample_size"], population)

    def batch(self, history) -> int:
        population, _ = self._sizes(history)
        return max(1, population - len(history)) if len(history) < population else 1

    def ask(self, history, rng, n):
        problem = history.problem
        population, sample_size = self._sizes(history)
        if len(history) < population:  # the initial population, drawn at random
            if problem.candidates is not None:
                return _unseen_candidates(history, rng, n)
            return [Proposal(problem.space.sample(rng)) for _ in range(n)]
        alive = history.trials[-population:]
        contenders = [alive[i] for i in rng.choice(len(alive), sample_size, replace=False)]
        parent = max(contenders, key=lambda t: (problem.fitness(t), -t.step))
        child = problem.space.mutate(parent.arch, rng)
        if problem.candidates is not None:
            child = problem.candidates.nearest(child, history.ids, rng)
            if child is None:
                return []
        return [Proposal(child, {"parent": parent.arch_id})]


@register_strategy
class NSGA2(Strategy):
    """optuna's NSGA-II over the space's gene encoding (every gene vector decodes to a valid
    architecture): maximise the metric and, with an objective, minimise the cost. Each call rebuilds an
    in-memory optuna study from the history (each trial's genes and generation are kept in its
    ``info``), asks it for a generation's remaining members, and decodes them. Within a benchmark, each
    decoded architecture is replaced by its nearest not yet evaluated benchmark architecture."""

    name = "nsga2"
    multi_objective = True

    def __init__(self, population: int = 20):
        self.options = {"population": _positive("population", population)}

    def batch(self, history) -> int:
        return self.options["population"]

    def ask(self, history, rng, n):
        try:
            import optuna
        except ImportError:
            raise MissingExtra("the nsga2 strategy needs optuna: pip install 'trainfree[search]'") from None
        from optuna.distributions import IntDistribution

        from trainfree.spaces.choices import GENE_RANGE

        problem = history.problem
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.NSGAIISampler(population_size=self.options["population"],
                                                seed=int(rng.integers(2 ** 31)))
        key = sampler._get_generation_key()
        directions = ["maximize"] + (["minimize"] if problem.objective else [])
        study = optuna.create_study(directions=directions, sampler=sampler)
        genes = [f"g{i}" for i in range(problem.space.n_genes)]
        dist = {g: IntDistribution(0, GENE_RANGE - 1) for g in genes}
        for t in history.trials:
            if "genes" not in t.info:
                continue
            values = [problem.fitness(t)] + ([problem.cost(t)] if problem.objective else [])
            finite = all(np.isfinite(values))
            study.add_trial(optuna.trial.create_trial(
                params=dict(zip(genes, t.info["genes"])), distributions=dist,
                values=values if finite else None,
                state=optuna.trial.TrialState.COMPLETE if finite else optuna.trial.TrialState.FAIL,
                system_attrs={key: t.info["generation"]}))
        out, taken = [], set(history.ids)
        for _ in range(n):
            trial = study.ask()
            vector = [trial.suggest_int(g, 0, GENE_RANGE - 1) for g in genes]
            arch = problem.space.decode(vector)
            if problem.candidates is not None:
                arch = problem.candidates.nearest(arch, taken, rng)
                if arch is None:  # every benchmark architecture is taken
                    break
            taken.add(problem.space.arch_id(arch))
            generation = study.trials[trial.number].system_attrs[key]  # set as the sampler sampled it
            out.append(Proposal(arch, {"genes": vector, "generation": generation}))
        return out


#: bytes per value of an inference dtype (weights and the key/value cache)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1}
#: architectures a grid may go through (the space's choices multiplied out, before constraints)
MAX_GRID = 200_000


@register_strategy
class Grid(Strategy):
    """Every architecture of a config space (or every benchmark architecture) that meets the budget, in
    the space's enumeration order, ``batch`` at a time: ``max_params`` parameters, and ``max_memory`` GiB
    for the weights plus the key/value cache of ``context`` tokens at batch 1, in ``dtype``."""

    name = "grid"
    multi_objective = True

    def __init__(self, max_params: float | None = None, max_memory: float | None = None, context: int | None = None,
                 dtype: str = "bfloat16", batch: int = 32):
        for key, value in (("max_params", max_params), ("max_memory", max_memory)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not value > 0 or value != value):
                raise TrainfreeError(f"{key} must be a positive number, got {value!r}")
        if max_memory is not None and context is None:
            raise TrainfreeError("max_memory counts the key/value cache too: give the context (tokens) as well")
        if context is not None:
            _positive("context", context)
        if dtype not in DTYPE_BYTES:
            raise TrainfreeError(f"dtype {dtype!r}: choose from {', '.join(DTYPE_BYTES)}")
        self.options = {"max_params": max_params, "max_memory": max_memory, "context": context, "dtype": dtype,
                        "batch": _positive("batch", batch)}
        self._points: tuple | None = None  # (problem, its points): a pure function of them, computed once

    def batch(self, history) -> int:
        return self.options["batch"]

    def fits(self, space, arch) -> bool:
        o = self.options
        if o["max_params"] is None and o["max_memory"] is None:
            return True
        size = space.footprint(arch)
        if o["max_params"] is not None and size["params"] > o["max_params"]:
            return False
        if o["max_memory"] is not None:
            bytes_ = DTYPE_BYTES[o["dtype"]] * (size["params"] + size["kv_per_token"] * o["context"])
            if bytes_ > o["max_memory"] * 2 ** 30:
                return False
        return True

    def points(self, problem) -> list:
        """The architectures the grid goes through, in order."""
        if self._points is None or self._points[0] is not problem:
            space = problem.space
            if problem.candidates is not None:
                archs = problem.candidates.archs
            else:
                size = space.grid_size()
                if size is None:
                    space.enumerate()  # raises, naming the space
                if size > MAX_GRID:
                    raise TrainfreeError(f"space {space.name!r} has {size:,} combinations of its choices, more than "
                                         f"a grid goes through ({MAX_GRID:,}); narrow its choices, or search it with "
                                         f"random, evolution or nsga2")
                archs = space.enumerate()
            points = [a for a in archs if self.fits(space, a)]
            if not points:
                raise TrainfreeError(f"no architecture of space {space.name!r} meets the budget ({self.budget_text()})")
            self._points = (problem, points)
        return self._points[1]

    def budget_text(self) -> str:
        o = self.options
        parts = ([f"at most {o['max_params']:.4g} parameters"] if o["max_params"] is not None else []) + (
            [f"at most {o['max_memory']:g} GiB of {o['dtype']} weights and key/value cache for {o['context']} tokens"]
            if o["max_memory"] is not None else [])
        return ", ".join(parts) or "no budget"

    def size(self, problem) -> int:
        return len(self.points(problem))

    def exhausted(self, history) -> bool:
        return all(history.seen(a) is not None for a in self.points(history.problem))

    def ask(self, history, rng, n):
        return [Proposal(a) for a in self.points(history.problem) if history.seen(a) is None][:n]
