"""The scoring loop: deduplicate architectures, build each once, run its metrics, record outcomes.

Every (architecture, metric) ends as ``ok`` (finite value), ``nonfinite`` (NaN/inf kept as is) or
``failed`` (the error's message); a failure never stops the run.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

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


@dataclass
class ScoreRun:
    rows: list[ScoreRow]
    computed: int  # (architecture, metric) keys computed by this run
    reused: int  # keys found in the store


def score_architectures(space_name: str, items: Iterable[tuple[str, object]], metric_names: Sequence[str],
                        settings: ScoreSettings, jobs: int = 1, executor: str | None = None,
                        chunk_size: int | None = None, store=None, benchmark: str | None = None,
                        address: str | None = None, threads: int | None = None,
                        on_progress: Callable[[int, int], None] | None = None, pool=None) -> ScoreRun:
    """Score ``(name, arch)`` items; one row per (item, metric), in input order.

    Architectures with the same id are computed once. With a ``store``, keys it already holds are
    reused and every finished chunk is committed as it arrives, so an interrupted run resumes where it
    stopped. ``executor`` is ``local`` (in-process), ``process`` (a pool of ``jobs`` spawned processes,
    the default when ``jobs > 1``) or ``ray``. ``threads`` is each worker's torch thread count:
    one per worker process by default, the caller's own setting in-process. ``pool`` (from
    :func:`trainfree.executors.session`) runs the process executor on workers that are already up.
    ``chunk_size`` architectures go to a worker at a time: by default 4, or two batched passes'
    worth where the space has a batched path (``score_many``).
    """
    from trainfree import __version__
    from trainfree.executors import run_chunks
    from trainfree.metrics import get_metric
    from trainfree.spaces import get_space

    metrics = [get_metric(m) for m in metric_names]  # unknown names fail before any work
    versions = {m.name: m.version for m in metrics}
    space = get_space(space_name)
    space.check(settings)  # bad settings fail here, not as one failure per architecture
    fingerprint = settings.fingerprint()
    items = list(items)
    unique: dict[str, object] = {}
    for _, arch in items:
        unique.setdefault(space.arch_id(arch), arch)

    results: dict[tuple[str, str], tuple] = {}
    if store is not None:
        store.add_architectures(space_name, [(a, space.canonical_json(arch)) for a, arch in unique.items()])
        store.add_settings(fingerprint, settings.identity())
        if benchmark:
            store.add_names(benchmark, [(name, space.arch_id(arch)) for name, arch in items])
        done = store.done(versions, fingerprint)
    else:
        done = set()
    todo = [(arch, [m for m in metric_names if (a, m) not in done]) for a, arch in unique.items()]
    todo = [(arch, ms) for arch, ms in todo if ms]
    reused = sum(1 for a in unique for m in metric_names if (a, m) in done)

    executor = executor or ("process" if jobs > 1 else "local")
    if chunk_size is None:
        from trainfree.metrics.rnn_batch import SPACE, batch_size

        chunk_size = max(4, 2 * batch_size(settings.resolved_device())) if space_name == SPACE else 4
        # (on CPU 4, as ever: a worker's chunk is its unit of balance; on a GPU two batched passes)
    chunks = [todo[i:i + chunk_size] for i in range(0, len(todo), chunk_size)]
    finished = 0
    for index, outcomes in run_chunks(executor, space_name, chunks, settings, jobs, address, threads, pool):
        if store is not None:
            store.put(outcomes, versions, fingerprint, __version__)
        for o in outcomes:
            results[(o.arch_id, o.metric)] = (o.value, o.status, o.error, o.seconds)
        finished += len(chunks[index])
        if on_progress:
            on_progress(finished, len(todo))
    computed = sum(len(ms) for _, ms in todo)
    if store is not None:
        results = store.get(versions, fingerprint)  # the store is the one source of truth

    rows = []
    for name, arch in items:
        arch_id = space.arch_id(arch)
        for m in metrics:
            value, status, error, seconds = results[(arch_id, m.name)]
            rows.append(ScoreRow(arch_id, name, m.name, value, status, error, seconds, m.version, fingerprint))
    return ScoreRun(rows, computed, reused)
