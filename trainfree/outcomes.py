"""Scoring one architecture: the unit of work every executor runs and the runner collects.

Every (architecture, metric) ends as ``ok`` (finite value), ``nonfinite`` (NaN/inf kept as is) or
``failed`` (the error's message); a failure never stops the run.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

from trainfree.config import ScoreSettings

OK, NONFINITE, FAILED = "ok", "nonfinite", "failed"


@dataclass(frozen=True)
class Outcome:
    arch_id: str
    metric: str
    value: float
    status: str
    error: str
    seconds: float


def score_one(space, arch, metric_names: Sequence[str], settings: ScoreSettings) -> list[Outcome]:
    """Score one architecture with several metrics sharing one probe (one model, one forward)."""
    from trainfree.metrics import Probe, get_metric

    arch_id = space.arch_id(arch)
    metrics = [get_metric(n) for n in metric_names]
    expected = frozenset().union(*(m.requires for m in metrics))  # lets a space share passes between artefacts
    probe = Probe(arch, space, settings, settings.resolved_device(), expected)
    outcomes = []
    for name, spec in zip(metric_names, metrics):
        start = time.perf_counter()
        try:
            value = spec(probe)
            status, error = (OK if math.isfinite(value) else NONFINITE), ""
        except Exception as err:  # a failing metric is recorded, never fatal to the run
            value, status, error = math.nan, FAILED, f"{type(err).__name__}: {err}"
        outcomes.append(Outcome(arch_id, name, value, status, error, time.perf_counter() - start))
    return outcomes


def score_many(space, chunk: Sequence[tuple[object, Sequence[str]]], settings: ScoreSettings,
               batch: int | None = None) -> list[Outcome]:
    """Score each (architecture, metric names) of a chunk, in order.

    Where an architecture's only metric that needs a forward pass has a batched path
    (``trainfree.metrics.rnn_batch``), it and the architecture's other metrics with one (``params``)
    are computed for several architectures at a time (the values are those of the per-architecture
    path); everything else, and a batch whose pass fails, goes through :func:`score_one`. ``batch`` overrides the architectures per pass (the device's default).
    """
    from trainfree.metrics import get_metric
    from trainfree.metrics.rnn_batch import BATCHED, SPACE, batch_size

    batched = BATCHED if space.name == SPACE else {}
    groups: dict[str, list[int]] = {}
    for i, (_, names) in enumerate(chunk):
        forward = [n for n in names if "forward" in get_metric(n).needs]
        if len(forward) == 1 and forward[0] in batched:  # else one probe serves all its metrics best
            for n in names:
                if n in batched:
                    groups.setdefault(n, []).append(i)
    done: dict[tuple[int, str], Outcome] = {}
    if groups:
        from trainfree.spaces.nasbench_nlp.batched import layer_widths
        from trainfree.spaces.nasbench_nlp.lm import get_size

        device = settings.resolved_device()
        step = batch or batch_size(device, layer_widths(get_size(settings.size))[1])
        for name, members in groups.items():
            for s in range(0, len(members), step):
                part = members[s: s + step]
                start = time.perf_counter()
                try:
                    values = batched[name]([chunk[i][0] for i in part], settings, device)
                except Exception:  # noqa: BLE001 - each architecture then gets its own outcome below
                    continue
                seconds = (time.perf_counter() - start) / len(part)
                for i, value in zip(part, values):
                    status = OK if math.isfinite(value) else NONFINITE
                    done[(i, name)] = Outcome(space.arch_id(chunk[i][0]), name, value, status, "", seconds)
    out = []
    for i, (arch, names) in enumerate(chunk):
        rest = [n for n in names if (i, n) not in done]
        single = {o.metric: o for o in score_one(space, arch, rest, settings)} if rest else {}
        out += [done[(i, n)] if (i, n) in done else single[n] for n in names]
    return out
