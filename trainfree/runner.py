"""The scoring loop: deduplicate architectures, build each once, run its metrics, record outcomes.

Every (architecture, metric) ends as ``ok`` (finite value), ``nonfinite`` (NaN/inf kept as is) or
``failed`` (the error's message); a failure never stops the run.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch

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


@dataclass(frozen=True)
class ScoreRow:
    arch_id: str
    name: str
    metric: str
    value: float
    status: str
    error: str
    seconds: float
    metric_version: str
    fingerprint: str


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


def _init_worker(threads: int) -> None:
    # workers must not fight over cores: limit torch's and numpy's BLAS thread pools
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)


def _score_chunk(space_name: str, archs: list, metric_names: Sequence[str], settings: ScoreSettings):
    from trainfree.spaces import get_space

    space = get_space(space_name)
    return [o for arch in archs for o in score_one(space, arch, metric_names, settings)]


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def score_architectures(space_name: str, items: Iterable[tuple[str, object]], metric_names: Sequence[str],
                        settings: ScoreSettings, jobs: int = 1, chunk_size: int = 4,
                        on_progress: Callable[[int, int], None] | None = None, pool: bool | None = None) -> list[ScoreRow]:
    """Score ``(name, arch)`` items. Architectures with the same id are computed once.

    With ``jobs > 1`` chunks of architectures run in a pool of spawned processes, each limited to
    ``cores // jobs`` torch threads (``pool=True`` forces a pool even for one job). Rows come back
    in input order, one per (item, metric).
    """
    from trainfree.metrics import get_metric
    from trainfree.spaces import get_space

    metrics = [get_metric(m) for m in metric_names]  # unknown names fail before any work
    space = get_space(space_name)
    space.check(settings)  # bad settings fail here, not as one failure per architecture
    items = list(items)
    unique: dict[str, object] = {}
    for _, arch in items:
        unique.setdefault(space.arch_id(arch), arch)
    archs = list(unique.values())
    results: dict[tuple[str, str], Outcome] = {}
    done = 0
    if pool is None:
        pool = jobs > 1
    if not pool:
        for arch in archs:
            for o in score_one(space, arch, metric_names, settings):
                results[(o.arch_id, o.metric)] = o
            done += 1
            if on_progress:
                on_progress(done, len(archs))
    else:
        threads = max(1, default_jobs() // jobs)
        chunks = [archs[i:i + chunk_size] for i in range(0, len(archs), chunk_size)]
        ctx = multiprocessing.get_context("spawn")  # fork after torch threads start can deadlock
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as executor:
            futures = [executor.submit(_score_chunk, space_name, chunk, list(metric_names), settings) for chunk in chunks]
            try:
                for fut, chunk in zip(futures, chunks):
                    for o in fut.result():
                        results[(o.arch_id, o.metric)] = o
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, len(archs))
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    fingerprint = settings.fingerprint()
    rows = []
    for name, arch in items:
        arch_id = space.arch_id(arch)
        for m in metrics:
            o = results[(arch_id, m.name)]
            rows.append(ScoreRow(arch_id, name, m.name, o.value, o.status, o.error, o.seconds, m.version, fingerprint))
    return rows
