"""The scoring loop: deduplicate architectures, skip stored keys, score the rest on an executor, record
every result.

Every (architecture, metric) ends as a :class:`~trainfree.records.Score` whose status is ``ok`` (finite
value), ``nonfinite`` (NaN/inf kept as is) or ``failed`` (the error's message); a failure never stops
the run. Scoring one architecture lives in :mod:`trainfree.outcomes`, the task the executor runs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from trainfree.config import ScoreSettings
from trainfree.records import Score, Status


@dataclass
class ScoreRun:
    rows: list[Score]
    computed: int  # (architecture, metric) keys computed by this run
    reused: int  # keys found in the store
    shipped: int = 0  # keys taken from the shipped suite (trainfree.store.shipped)


def resolve_space(space):
    """A space object from a space object or a registered name (the name is looked up once, here)."""
    if isinstance(space, str):
        from trainfree.spaces import get_space

        return get_space(space)
    return space


def score_architectures(space, items: Iterable[tuple[str, object]], metric_names: Sequence[str],
                        settings: ScoreSettings, jobs: int = 1, executor=None,
                        chunk_size: int | None = None, store=None, benchmark: str | None = None,
                        address: str | None = None, threads: int | None = None,
                        on_progress: Callable[[int, int], None] | None = None,
                        sink: Callable[[Score], None] | None = None, shipped: bool = True) -> ScoreRun:
    """Score ``(name, arch)`` items of ``space`` (a space object, or a registered name); one row per
    (item, metric), in input order.

    With a ``sink``, each row goes to ``sink(row)`` as soon as it and every row before it are known,
    while the run goes on, and ``ScoreRun.rows`` stays empty: the driver holds no list of rows, only
    the values of architectures finished ahead of the first unfinished one (a CSV written as it goes,
    or rows nobody reads, cost memory independent of the benchmark's length).

    Architectures with the same id are computed once. With a ``store``, keys it already holds are
    reused and every finished architecture is committed (in a transaction at most a second after it
    arrives, and on Ctrl-C, SIGTERM or an error before the error goes on), so an interrupted run resumes
    where it stopped. ``executor`` is an open :class:`trainfree.executors.Executor` (a search keeps one
    up for all its batches) or a kind: ``local`` (in-process), ``process`` (a pool of ``jobs`` spawned
    processes, the default when ``jobs > 1``) or ``ray``. ``threads`` is each worker's torch thread count:
    one per worker process by default, the caller's own setting in-process. ``chunk_size`` architectures
    go to a worker at a time: by default one (so each finished architecture is stored within a second),
    or what the space's batched path asks for (``space.batched``). With ``shipped``, keys the shipped
    suite holds under the same fingerprint and metric versions are taken from it (and copied to the store).
    """
    space = resolve_space(space)
    from trainfree.metrics.combo import is_combo

    if any(is_combo(m) for m in metric_names):
        run = _score_with_combos(space, items, metric_names, settings, jobs=jobs, executor=executor,
                                 chunk_size=chunk_size, store=store, benchmark=benchmark, address=address,
                                 threads=threads, on_progress=on_progress, shipped=shipped)
        if sink is None:
            return run
        for row in run.rows:  # a combination needs all its components first: its rows come at the end
            sink(row)
        return ScoreRun([], run.computed, run.reused, run.shipped)
    from trainfree import __version__
    from trainfree.executors import WorkerDied, executing
    from trainfree.metrics.base import check_applies, get_metric
    from trainfree.outcomes import score_chunk

    metrics = [get_metric(m) for m in metric_names]  # unknown names fail before any work
    versions = {m.name: m.key_version for m in metrics}
    for m in metrics:
        check_applies(m, space)
    space.check(settings)  # bad settings fail here, not as one failure per architecture
    fingerprint = space.fingerprint(settings)
    items = list(items)
    unique: dict[str, object] = {}
    for _, arch in items:
        unique.setdefault(space.arch_id(arch), arch)

    if store is not None:
        store.add_architectures(space.name, [(a, space.canonical_json(arch)) for a, arch in unique.items()])
        store.add_settings(fingerprint, space.identity(settings))
        if benchmark:
            store.add_names(benchmark, [(name, space.arch_id(arch)) for name, arch in items])
        done = store.done(versions, fingerprint, unique)
    else:
        done = set()
    found = {}
    if shipped:
        from trainfree.store.shipped import lookup

        found = {k: v for k, v in lookup(fingerprint, versions, unique).items() if k not in done}
        if found and store is not None:  # then the store serves them like its own
            for version in {v[4] for v in found.values()}:
                store.put([Score(a, m, *v[:4]) for (a, m), v in found.items() if v[4] == version], versions,
                          fingerprint, version)
        done |= set(found)
    todo = [(arch, [m for m in metric_names if (a, m) not in done]) for a, arch in unique.items()]
    todo = [(arch, ms) for arch, ms in todo if ms]
    reused = sum(1 for a in unique for m in metric_names if (a, m) in done) - len(found)

    if chunk_size is None:
        plan = space.batched(metrics, settings)
        chunk_size = plan.chunk if plan is not None else 1
    chunks = [todo[i:i + chunk_size] for i in range(0, len(todo), chunk_size)]
    finished, unsaved, saved_at = 0, [], time.monotonic()

    def save():
        nonlocal unsaved, saved_at
        if store is not None and unsaved:
            store.put(unsaved, versions, fingerprint, __version__)
        unsaved, saved_at = [], time.monotonic()

    computed = sum(len(ms) for _, ms in todo)
    del todo
    rows: list[Score] = []
    if store is not None:
        read = lambda ids: store.get(versions, fingerprint, ids)  # noqa: E731
    elif found:
        read = lambda ids: {k: v[:4] for k, v in found.items() if k[0] in set(ids)}  # noqa: E731
    else:
        read = None
    emit = _Emitter(items, [space.arch_id(arch) for _, arch in items], metrics, versions, fingerprint,
                    sink or rows.append, read, done)
    total = sum(len(c) for c in chunks)
    if on_progress:
        on_progress(0, total)
    sent: list = []  # the chunks handed to the executor, by its task index
    counts = {"computed": computed, "reused": reused, "shipped": len(found)}

    def feed(target):
        """The chunks as workers free up; with a store, less the keys another run sharing it finished
        meanwhile (their values are read from the store instead of computed again)."""
        nonlocal finished
        for chunk in chunks:
            if store is not None:
                size = len(chunk)
                chunk = _drop_finished(store, space, chunk, versions, fingerprint, done, emit, counts)
                if not chunk:  # every key of it finished elsewhere
                    finished += size
                    if on_progress:
                        on_progress(finished, total)
                    continue
            sent.append(chunk)
            yield target, chunk, settings

    try:
        with executing(executor, jobs, threads, address) as ex:
            # the space object in this process; its name across a process boundary
            target = space if ex.kind == "local" else space.name
            for index, scores in ex.map(score_chunk, feed(target)):
                unsaved.extend(scores)
                if time.monotonic() - saved_at >= 1.0:  # one transaction a second, not one per architecture
                    save()
                emit.add(scores)  # INSERT OR REPLACE: what the store now holds for these keys
                finished += len(sent[index])
                sent[index] = None  # its architectures are referenced by the items only
                if on_progress:
                    on_progress(finished, total)
    except WorkerDied as err:
        kept = ("what finished is kept in the store: rerun to resume" if store is not None
                else "no store was used, so nothing was kept (pass a store to keep finished work)")
        raise WorkerDied(f"{err} while scoring; {kept}; with fewer jobs if memory ran out") from None
    finally:
        save()
    emit.finish()
    return ScoreRun(rows, counts["computed"], counts["reused"], counts["shipped"])


def _drop_finished(store, space, chunk, versions, fingerprint, done, emit, counts) -> list:
    """``chunk`` less the keys the store holds now but did not when the run started (another run sharing the
    store finished them): their stored values go to the emitter, and they count as reused."""
    ids = [space.arch_id(arch) for arch, _ in chunk]
    now = store.done(versions, fingerprint, ids) - done
    if not now:
        return chunk
    done |= now
    values = store.get(versions, fingerprint, [a for a, _ in now])
    emit.add([Score(a, m, *values[(a, m)]) for a, m in sorted(now)])
    counts["computed"] -= len(now)
    counts["reused"] += len(now)
    out = []
    for (arch, names), arch_id in zip(chunk, ids):
        names = [m for m in names if (arch_id, m) not in now]
        if names:
            out.append((arch, names))
    return out


class _Emitter:
    """Rows in input order as soon as they are known: the values of finished architectures wait here
    until every item before theirs is out, and are dropped after their last item. Keys reused from the
    store are read from it a block of architectures at a time, as the cursor reaches them."""

    BLOCK = 256

    def __init__(self, items, ids, metrics, versions, fingerprint, sink, read_store, done):
        self.items, self.ids, self.metrics, self.fingerprint, self.sink = items, ids, metrics, fingerprint, sink
        self.versions = versions
        self.read_store, self.done = read_store, done
        self.names = {m.name for m in metrics}  # a metric named twice is one key
        self.last = {arch_id: i for i, arch_id in enumerate(ids)}  # an architecture's last item
        self.values: dict[str, dict[str, tuple]] = {}
        self.cursor = 0
        self.fetched = 0  # items whose reused keys have been read from the store

    def add(self, scores: Sequence[Score]) -> None:
        for o in scores:
            self.values.setdefault(o.arch_id, {})[o.metric] = (o.value, o.status, o.error, o.seconds)
        self._flush()

    def _known(self, arch_id: str) -> dict | None:
        got = self.values.get(arch_id, {})
        if len(got) < len(self.names) and self.read_store is not None and self.cursor >= self.fetched:
            self._read_block()
            got = self.values.get(arch_id, {})
        return got if len(got) == len(self.names) else None

    def _read_block(self) -> None:
        """The reused keys of the next BLOCK architectures from the cursor on."""
        wanted, i = {}, self.cursor
        while i < len(self.ids) and len(wanted) < self.BLOCK:
            arch_id = self.ids[i]
            if any((arch_id, m.name) in self.done for m in self.metrics):
                wanted[arch_id] = None
            i += 1
        self.fetched = i
        for (arch_id, metric), value in (self.read_store(list(wanted)) if wanted else {}).items():
            if (arch_id, metric) in self.done:
                self.values.setdefault(arch_id, {}).setdefault(metric, value)

    def _flush(self) -> None:
        while self.cursor < len(self.ids):
            arch_id = self.ids[self.cursor]
            got = self._known(arch_id)
            if got is None:
                return
            name = self.items[self.cursor][0]
            for m in self.metrics:
                value, status, error, seconds = got[m.name]
                self.sink(Score(arch_id, m.name, value, Status(status), error, seconds, name, self.versions[m.name],
                                self.fingerprint))
            if self.last[arch_id] == self.cursor:
                del self.values[arch_id]
            self.cursor += 1

    def finish(self) -> None:
        self._flush()
        if self.cursor < len(self.ids):  # an executor that lost work without an error
            raise RuntimeError(f"scoring ended with {len(self.ids) - self.cursor} of {len(self.ids)} items unscored")


def _score_with_combos(space, items, metric_names: Sequence[str], settings: ScoreSettings, **options) -> ScoreRun:
    """Score ``combo:PATH`` metrics: their components are scored like any metric (reused from the store
    or computed and stored), then each model is applied to them; the combination's own values are not
    stored (they are cheap to recompute). A failed component fails the combination, a NaN one makes it NaN."""
    import math

    from trainfree.metrics import combo

    fingerprint = space.fingerprint(settings)
    combos = [m for m in dict.fromkeys(metric_names) if combo.is_combo(m)]
    parts = {}
    for name in combos:
        combo.check_model_fits(name, space.name, fingerprint)
        parts[name] = [spec.name for spec in combo.components(name)]
    plain = list(dict.fromkeys([m for m in metric_names if not combo.is_combo(m)]
                               + [c for name in combos for c in parts[name]]))
    items = list(items)
    run = score_architectures(space, items, plain, settings, **options)
    per_item = [run.rows[i * len(plain):(i + 1) * len(plain)] for i in range(len(items))]
    values = {}
    for name in combos:
        table = [[next(r for r in rows if r.metric == c) for c in parts[name]] for rows in per_item]
        predicted = combo.apply(name, [[math.nan if r.status is Status.FAILED else r.value for r in row]
                                       for row in table])
        values[name] = list(zip(table, predicted))
    version = {name: combo.load(name)[1] for name in combos}
    out = []
    for i, rows in enumerate(per_item):
        by_metric = {r.metric: r for r in rows}
        first = rows[0]
        for m in metric_names:
            if not combo.is_combo(m):
                out.append(by_metric[m])
                continue
            row, value = values[m][i]
            failed = next((r for r in row if r.status is Status.FAILED), None)
            seconds = sum(r.seconds for r in row)
            common = dict(arch_id=first.arch_id, metric=m, seconds=seconds, name=first.name, metric_version=version[m],
                          fingerprint=fingerprint)
            if failed is not None:
                out.append(Score(value=math.nan, status=Status.FAILED,
                                 error=f"component {failed.metric} failed: {failed.error}", **common))
            else:
                out.append(Score(value=value, status=Status.of(value), **common))
    return ScoreRun(out, run.computed, run.reused, run.shipped)
