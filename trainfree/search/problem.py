"""What a search strategy works against: a space, a metric to maximise in its registered direction,
an optional cost to minimise, a budget of distinct architectures, and (optionally) the
architectures of a benchmark to stay within.

Scores go through the scoring loop and its store, so a rerun of the same search (same seed) gets
every value it already computed back from the store and continues from where it stopped: the
strategies are deterministic functions of the seed and the values they see. With a store, each
trial is also recorded under the search's id; a rerun takes the values of the trials it proposes
again, in the same order, from that record without going through the scoring loop at all.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from trainfree.config import ScoreSettings
from trainfree.errors import TrainfreeError


@dataclass
class Trial:
    step: int  # 0-based order of evaluation
    arch_id: str
    arch: object
    values: dict[str, float]  # metric (and objective) -> value; NaN when non-finite or failed
    status: str  # "ok", or the first non-ok status of its scores


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


class BudgetSpent(Exception):
    """Raised inside a strategy when the budget of distinct evaluations is used up."""


@dataclass
class Problem:
    space: object
    metric: str
    settings: ScoreSettings
    budget: int
    objective: str | None = None  # a cost to minimise (multi-objective), e.g. params or latency
    candidates: Candidates | None = None
    store: object = None
    jobs: int = 1
    executor: str | None = None
    address: str | None = None
    on_progress: object = None
    threads: int | None = None
    pool: object = None  # workers kept up for the whole search (trainfree.executors.session)
    trials: list[Trial] = field(default_factory=list)
    _seen: dict[str, Trial] = field(default_factory=dict)
    search_id: str | None = None  # the key of this search's recorded trials in the store
    _record: list = field(default_factory=list)  # recorded (step, arch_id, values, status, proposed)

    def __post_init__(self):
        from trainfree.metrics import get_metric
        from trainfree.runner import check_applies

        self.metric_spec = get_metric(self.metric)
        check_applies(self.metric_spec, self.space.name)  # what scoring checks: the space provides its artefacts
        if self.objective is not None:
            try:
                check_applies(get_metric(self.objective), self.space.name)
            except TrainfreeError as err:
                raise TrainfreeError(f"objective: {err}") from None
        if self.budget < 1:
            raise TrainfreeError(f"budget must be at least 1, got {self.budget}")
        if self.candidates is not None and self.budget > len(self.candidates):
            raise TrainfreeError(f"budget {self.budget} exceeds the benchmark's {len(self.candidates)} distinct "
                                 f"architectures")

    def resume(self, search_id: str, identity: dict) -> None:
        """Record this search's trials in the store under ``search_id``, and replay those a killed or
        finished run of it recorded."""
        self.search_id = search_id
        self.store.add_search(search_id, identity)
        self._record = self.store.trials(search_id)

    def _replay(self, step: int, arch_id: str):
        """The recorded values of ``step`` when the run proposes the same architecture there; a run that
        goes another way forgets the record from that step on. Failed trials are scored again (the
        scoring loop retries failed keys)."""
        if step >= len(self._record):
            return None
        _, recorded_id, values, status, _ = self._record[step]
        if recorded_id != arch_id:
            self.store.drop_trials(self.search_id, step)
            del self._record[step:]
            return None
        return None if status == "failed" else (values, status)

    @property
    def metrics(self) -> list[str]:
        return [self.metric] + ([self.objective] if self.objective and self.objective != self.metric else [])

    @property
    def done(self) -> bool:
        return len(self.trials) >= self.budget

    def seen(self, arch) -> Trial | None:
        return self._seen.get(self.space.arch_id(arch))

    @property
    def evaluated_ids(self) -> set[str]:
        return set(self._seen)

    def fitness(self, trial: Trial) -> float:
        """The metric in its better-is-higher direction; non-finite values rank last."""
        v = trial.values[self.metric]
        if not math.isfinite(v):
            return -math.inf
        return v if self.metric_spec.higher_is_better else -v

    def cost(self, trial: Trial) -> float:
        v = trial.values[self.objective]
        return v if math.isfinite(v) else math.inf

    def evaluate(self, archs: Sequence[object]) -> list[Trial]:
        """Trials for ``archs`` in order. New architectures use up budget, in order; when it runs out
        the ones evaluated so far are recorded and :class:`BudgetSpent` is raised."""
        from trainfree.runner import score_architectures

        fresh: dict[str, object] = {}
        for arch in archs:
            arch_id = self.space.arch_id(arch)
            if arch_id not in self._seen and arch_id not in fresh:
                fresh[arch_id] = arch
        room = self.budget - len(self.trials)
        spent = len(fresh) > room
        fresh = dict(list(fresh.items())[:room])
        replayed = {}
        if self._record:
            for i, arch_id in enumerate(fresh):
                found = self._replay(len(self.trials) + i, arch_id)
                if found is None:
                    break
                replayed[arch_id] = found
        to_score = {a: arch for a, arch in fresh.items() if a not in replayed}
        by_id: dict[str, dict] = {}
        proposed = time.time()
        if to_score:
            # workers pay for a batch, not for evolution's one child at a time: that runs in-process,
            # on the threads of all the jobs (their workers are idle meanwhile)
            small = len(to_score) < 2 * self.jobs
            threads = self.threads
            if small and self.jobs > 1:
                threads = self.jobs * (self.threads or 1)
            run = score_architectures(self.space.name, [(a, arch) for a, arch in to_score.items()], self.metrics,
                                      self.settings, jobs=1 if small else self.jobs,
                                      executor="local" if small else self.executor, store=self.store,
                                      address=self.address, threads=threads, pool=self.pool)
            for row in run.rows:
                by_id.setdefault(row.arch_id, {})[row.metric] = row
        if fresh:
            new = []
            for arch_id, arch in fresh.items():
                if arch_id in replayed:
                    values, status = replayed[arch_id]
                    values = {m: float(values[m]) for m in self.metrics}
                else:
                    rows = by_id[arch_id]
                    values = {m: (r.value if r.status != "failed" else math.nan) for m, r in rows.items()}
                    status = next((r.status for r in rows.values() if r.status != "ok"), "ok")
                    new.append((len(self.trials), arch_id, values, status, proposed))
                trial = Trial(len(self.trials), arch_id, arch, values, status)
                self.trials.append(trial)
                self._seen[arch_id] = trial
            if new and self.search_id is not None:
                self.store.put_trials(self.search_id, new)
            if self.on_progress:
                self.on_progress(len(self.trials), self.budget)
        if spent:
            raise BudgetSpent
        return [self._seen[self.space.arch_id(a)] for a in archs]

    def best(self, k: int = 1) -> list[Trial]:
        return sorted(self.trials, key=lambda t: (-self.fitness(t), t.step))[:k]

    def pareto(self) -> list[Trial]:
        """Trials no other trial beats on both the metric (higher fitness) and the cost (lower)."""
        if self.objective is None:
            return self.best(1)
        pts = [(self.fitness(t), self.cost(t), t) for t in self.trials if math.isfinite(self.fitness(t))]
        front = [t for f, c, t in pts
                 if not any((f2 >= f and c2 <= c) and (f2 > f or c2 < c) for f2, c2, _ in pts)]
        return sorted(front, key=lambda t: self.cost(t))
