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
    probe = Probe(arch, space, settings, settings.resolved_device())
    outcomes = []
    # metrics that need activation codes go first: their pass also yields the clean layer outputs
    order = sorted(metric_names, key=lambda n: "activations" not in get_metric(n).needs)
    for name in order:
        start = time.perf_counter()
        try:
            value = get_metric(name)(probe)
            status, error = (OK if math.isfinite(value) else NONFINITE), ""
        except Exception as err:  # a failing metric is recorded, never fatal to the run
            value, status, error = math.nan, FAILED, f"{type(err).__name__}: {err}"
        outcomes.append(Outcome(arch_id, name, value, status, error, time.perf_counter() - start))
    return sorted(outcomes, key=lambda o: list(metric_names).index(o.metric))
