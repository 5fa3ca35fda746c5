"""What a search works against, and what it has seen.

A :class:`Problem` is only what defines the search: a space, a metric to maximise in its registered
direction, an optional cost to minimise, a budget of distinct architectures, the settings, and
(optionally) the architectures of a benchmark to stay within. A :class:`History` is the trials so far,
in order: strategies read it to propose (``ask``), and the search loop (:mod:`trainfree.search.run`)
alone adds to it, stores it and reads it back on resume.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from trainfree.config import ScoreSettings
from trainfree.errors import TrainfreeError
from trainfree.records import Status


@dataclass
class Trial:
    step: int  # 0-based order of evaluation
    arch_id: str
    arch: object
    values: dict[str, float]  # metric (and objective) -> value; NaN when failed
    status: Status  # ok, or the first non-ok status of its scores
    info: dict = field(default_factory=dict)  # what the strategy attached to its proposal (NSGA-II: genes)


class Candidates:
    """A fixed set of architectures (a benchmark's) and the nearest-neighbour map onto it."""

    def __init__(self, space, archs: Sequence[object]):
        self.space = space
        unique: dict[str, object] = {}
        for arch in archs:
            unique.setdefault(space.arch_id(arch), arch)
        self.ids = list(unique)
        self.archs = list(unique.values())
        self.features = [space.features(a) for a in self.archs]
        self.index = {a: i for i, a in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def unseen(self, seen) -> list[int]:
        """Indices of the candidates whose ids are not in ``seen``, in order."""
        return [i for i, a in enumerate(self.ids) if a not in seen]

    def nearest(self, arch, exclude: set[str], rng: np.random.Generator) -> object | None:
        """The candidate closest to ``arch`` (itself when present) outside ``exclude``; ties at random."""
        arch_id = self.space.arch_id(arch)
        if arch_id in self.index and arch_id not in exclude:
            return arch
        feats = self.space.features(arch)
        best, best_d = [], math.inf
        for i, f in enumerate(self.features):
            if self.ids[i] in exclude:
                continue
            d = len(feats ^ f)
            if d < best_d:
                best, best_d = [i], d
            elif d == best_d:
                best.append(i)
        return self.archs[best[int(rng.integers(len(best)))]] if best else None


@dataclass
class Problem:
    space: object
    metric: str
    settings: ScoreSettings
    budget: int
    objective: str | None = None  # a cost to minimise (multi-objective), e.g. params or latency
    candidates: Candidates | None = None

    def __post_init__(self):
        from trainfree.metrics.base import check_applies, get_metric

        self.metric_spec = get_metric(self.metric)
        check_applies(self.metric_spec, self.space)  # what scoring checks: the space provides its artefacts
        self.objective_spec = None
        if self.objective is not None:
            self.objective_spec = get_metric(self.objective)
            try:
                check_applies(self.objective_spec, self.space)
            except TrainfreeError as err:
                raise TrainfreeError(f"objective: {err}") from None
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 1:
            raise TrainfreeError(f"budget must be a positive integer, got {self.budget!r}")
        if self.candidates is not None and self.budget > len(self.candidates):
            raise TrainfreeError(f"budget {self.budget} exceeds the benchmark's {len(self.candidates)} distinct "
                                 f"architectures")

    @property
    def metrics(self) -> list[str]:
        return [self.metric] + ([self.objective] if self.objective and self.objective != self.metric else [])

    def fitness(self, trial: Trial) -> float:
        """The metric in its better-is-higher direction; non-finite values rank last."""
        v = trial.values[self.metric]
        return self.metric_spec.orient(v) if math.isfinite(v) else -math.inf

    def cost(self, trial: Trial) -> float:
        v = trial.values[self.objective]
        return v if math.isfinite(v) else math.inf


class History:
    """The trials of a search so far, in evaluation order, each of a distinct architecture."""

    def __init__(self, problem: Problem, trials: Sequence[Trial] = ()):
        self.problem = problem
        self.trials: list[Trial] = []
        self._by_id: dict[str, Trial] = {}
        for t in trials:
            self.add(t)

    def add(self, trial: Trial) -> None:
        if trial.arch_id in self._by_id:
            raise TrainfreeError(f"architecture {trial.arch_id} is in the search history twice")
        self.trials.append(trial)
        self._by_id[trial.arch_id] = trial

    def __len__(self) -> int:
        return len(self.trials)

    def seen(self, arch) -> Trial | None:
        return self._by_id.get(self.problem.space.arch_id(arch))

    @property
    def ids(self) -> set[str]:
        return set(self._by_id)

    def best(self, k: int = 1) -> list[Trial]:
        p = self.problem
        return sorted(self.trials, key=lambda t: (-p.fitness(t), t.step))[:k]

    def pareto(self) -> list[Trial]:
        """Trials no other trial beats on both the metric (higher fitness) and the cost (lower)."""
        p = self.problem
        if p.objective is None:
            return self.best(1)
        pts = [(p.fitness(t), p.cost(t), t) for t in self.trials if math.isfinite(p.fitness(t))]
        front = [t for f, c, t in pts
                 if not any((f2 >= f and c2 <= c) and (f2 > f or c2 < c) for f2, c2, _ in pts)]
        return sorted(front, key=lambda t: p.cost(t))
