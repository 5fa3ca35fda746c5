"""Scoring one architecture, or a chunk of them: the task every executor runs for the scoring loop.

Every (architecture, metric) ends as ``ok`` (finite value), ``nonfinite`` (NaN/inf kept as is) or
``failed`` (the error's message); a failure never stops the run.
"""
from __future__ import annotations

import math
import os
import time
from typing import Sequence

from trainfree.config import ScoreSettings
from trainfree.records import Score, Status


def available_memory(device) -> int | None:
    """Bytes free for a new model on ``device``: a GPU's free memory, or the machine's available memory
    (Linux's MemAvailable, which counts reclaimable caches); None where it cannot be told."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


#: the share of the available memory one architecture's probe may take
MEMORY_SHARE = 0.9


def full_float32(device) -> None:
    """Turn TF32 off for CUDA matmuls and convolutions before scoring on ``device``: on Ampere and later GPUs
    cuDNN convolutions default to TF32 (10-bit mantissa), which moves float32 metric values by ~1e-3, so a
    GPU score would not be the CPU's to rounding. A process-wide torch setting, as a scoring process needs."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


#: artefacts read off the architecture, with no model built
ARCH_ONLY = frozenset({"shape", "cell_graph"})


def memory_refusals(space, arch, metrics, settings: ScoreSettings, device) -> dict[str, str]:
    """metric name -> why it does not fit in memory, for those of ``metrics`` that do not (the space's
    estimate, without gradients for forward-only metrics, against the memory available now). Metrics that
    build no model pass: those reading the architecture alone (``ARCH_ONLY`` artefacts), and parameter counts
    where the space counts without building."""
    metrics = [m for m in metrics if not (m.requires <= ARCH_ONLY or (
        m.counts_only and getattr(space, "counts_without_building", False)))]
    estimates = {}
    for backward in sorted({m.backward for m in metrics}):
        estimate = space.memory_estimate(arch, settings, backward)
        if estimate is not None:
            estimates[backward] = estimate
    if not estimates:
        return {}
    free = available_memory(device)
    if free is None:
        return {}
    out = {}
    for m in metrics:
        estimate = estimates.get(m.backward)
        if estimate is not None and estimate.total > MEMORY_SHARE * free:
            out[m.name] = (f"MemoryError: not enough memory: this architecture needs {estimate.describe()}"
                           f"{' with gradients' if m.backward else ''} at batch {settings.batch_size} x "
                           f"{settings.seq_len}, and {free / (1 << 30):.2f} GiB are available on "
                           f"{getattr(device, 'type', device)}; use a smaller --batch-size or --seq-len"
                           + ("" if not m.backward else ", or forward-only metrics"))
    return out


def score_one(space, arch, metric_names: Sequence[str], settings: ScoreSettings) -> list[Score]:
    """Score one architecture with several metrics sharing one probe (one model, one forward). Metrics
    the probe would not fit in memory for are refused before the model is built."""
    from trainfree.metrics import get_metric
    from trainfree.probe import Probe

    arch_id = space.arch_id(arch)
    metrics = [get_metric(n) for n in metric_names]
    device = settings.resolved_device()
    full_float32(device)
    refused = memory_refusals(space, arch, metrics, settings, device)
    expected = frozenset().union(*(m.requires for m in metrics))  # lets a space share passes between artefacts
    probe = Probe(arch, space, settings, device, expected)
    out = []
    for name, spec in zip(metric_names, metrics):
        if name in refused:
            out.append(Score(arch_id, name, math.nan, Status.FAILED, refused[name], 0.0))
            continue
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
        full_float32(device)
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
