"""Scoring one architecture, or a chunk of them: the task every executor runs for the scoring loop.

Every (architecture, metric) ends as ``ok`` (finite value), ``nonfinite`` (NaN/inf kept as is) or
``failed`` (the error's message); a failure never stops the run.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

from trainfree.config import ScoreSettings
from trainfree.records import Score, Status


def score_one(space, arch, metric_names: Sequence[str], settings: ScoreSettings) -> list[Score]:
    """Score one architecture with several metrics sharing one probe (one model, one forward)."""
    from trainfree.metrics import get_metric
    from trainfree.probe import Probe

    arch_id = space.arch_id(arch)
    metrics = [get_metric(n) for n in metric_names]
    expected = frozenset().union(*(m.requires for m in metrics))  # lets a space share passes between artefacts
    probe = Probe(arch, space, settings, settings.resolved_device(), expected)
    out = []
    for name, spec in zip(metric_names, metrics):
        start = time.perf_counter()
        try:
            value = spec(probe)
            status, error = Status.of(value), ""
        except Exception as err:  # a failing metric is recorded, never fatal to the run
            value, status, error = math.nan, Status.FAILED, f"{type(err).__name__}: {err}"
        out.append(Score(arch_id, name, value, status, error, time.perf_counter() - start))
    return out


def score_many(space, chunk: Sequence[tuple[object, Sequence[str]]], settings: ScoreSettings,
               batch: int | None = None) -> list[Score]:
    """Score each (architecture, metric names) of a chunk, in order.

    Where the space offers a batched path for an architecture's metrics (``space.batched``), those
    metrics are computed for several architectures at a time (with the values of the per-architecture
    path); everything else, and a batch whose pass fails, goes through :func:`score_one`. ``batch``
    overrides the architectures per pass (the space's choice for the device).
    """
    from trainfree.metrics import get_metric

    plans: dict[tuple[str, ...], object] = {}
    groups: dict[str, list[int]] = {}
    for i, (_, names) in enumerate(chunk):
        key = tuple(names)
        if key not in plans:
            plans[key] = space.batched([get_metric(n) for n in names], settings)
        plan = plans[key]
        for n in names if plan is not None else ():
            if n in plan.scorers:
                groups.setdefault(n, []).append(i)
    done: dict[tuple[int, str], Score] = {}
    if groups:
        device = settings.resolved_device()
        for name, members in groups.items():
            plan = next(p for p in plans.values() if p is not None and name in p.scorers)
            step = batch or plan.per_pass
            for s in range(0, len(members), step):
                part = members[s: s + step]
                start = time.perf_counter()
                try:
                    values = plan.scorers[name]([chunk[i][0] for i in part], settings, device)
                except Exception:  # noqa: BLE001 - each architecture then gets its own outcome below
                    continue
                seconds = (time.perf_counter() - start) / len(part)
                for i, value in zip(part, values):
                    done[(i, name)] = Score(space.arch_id(chunk[i][0]), name, value, Status.of(value), "", seconds)
    out = []
    for i, (arch, names) in enumerate(chunk):
        rest = [n for n in names if (i, n) not in done]
        single = {s.metric: s for s in score_one(space, arch, rest, settings)} if rest else {}
        out += [done[(i, n)] if (i, n) in done else single[n] for n in names]
    return out


def score_chunk(space, chunk: Sequence[tuple[object, Sequence[str]]], settings: ScoreSettings) -> list[Score]:
    """The executors' task. Across a process boundary the space travels by name and is looked up here;
    in-process it is the space object itself."""
    if isinstance(space, str):
        from trainfree.spaces import get_space

        space = get_space(space)
    return score_many(space, chunk, settings)
