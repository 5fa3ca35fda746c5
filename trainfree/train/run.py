"""Training many architectures: skip what the store holds, one architecture per executor task, the
driver alone writes the store (one row per budget point, keyed by architecture, protocol, seed, unit
and budget), so that nothing is trained twice and a killed run resumes (finished architectures from
the store, the one in flight from its checkpoint)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from trainfree import __version__
from trainfree.errors import DiskFull, Refused
from trainfree.train.loop import TrainResult, train_arch
from trainfree.train.protocol import Budget, Protocol


@dataclass
class Trained:
    """One architecture's stored results at the budget points asked for."""
    name: str
    arch_id: str
    points: dict[float, dict] = field(default_factory=dict)  # budget point -> store row
    reused: bool = False

    @property
    def final(self) -> dict:
        return self.points[max(self.points)]

    @property
    def val_loss(self) -> float:
        return self.final["val_loss"]

    @property
    def status(self) -> str:
        return self.final["status"]

    @property
    def cpu_seconds(self) -> float:
        """Training and evaluation CPU time up to the final point (a stored run: what it cost when trained)."""
        return self.final["cpu_seconds"] + self.final["eval_cpu_seconds"]


def best_trained(results: Sequence[Trained]) -> Trained:
    """The lowest final validation loss; non-finite losses never win, and when all are the first is kept."""
    finite = [r for r in results if math.isfinite(r.val_loss)]
    return min(finite, key=lambda r: r.val_loss) if finite else results[0]


@dataclass
class TrainRun:
    protocol: Protocol
    budget: Budget
    seed: int
    results: list[Trained]
    trained: int = 0
    reused: int = 0


def rows_of(result: TrainResult) -> list[dict]:
    """Store rows, one per recorded point; each carries the run's curve up to that point."""
    rows = []
    for rec in result.records:
        val = [[r.point, r.val_loss, r.steps, r.tokens, r.cpu_seconds] for r in result.records if r.point <= rec.point]
        train = [list(c) for c in result.train_curve if c[0] <= rec.steps]
        status = result.status if result.status == "failed" else ("ok" if math.isfinite(rec.val_loss) else "nonfinite")
        rows.append({"arch_id": result.arch_id, "seed": result.seed, "unit": result.budget.unit, "budget": rec.point,
                     "val_loss": rec.val_loss, "status": status, "error": result.error, "steps": rec.steps,
                     "tokens": rec.tokens, "cpu_seconds": rec.cpu_seconds, "eval_cpu_seconds": rec.eval_cpu_seconds,
                     "curve": {"val": val, "train": train}})
    return rows


def failed_rows(arch_id: str, budget: Budget, seed: int, error: str) -> list[dict]:
    return [{"arch_id": arch_id, "seed": seed, "unit": budget.unit, "budget": p, "val_loss": math.nan,
             "status": "failed", "error": error, "steps": 0, "tokens": 0, "cpu_seconds": 0.0, "eval_cpu_seconds": 0.0,
             "curve": {"val": [], "train": []}} for p in budget.points]


def train_task(space_name: str, arch_json: str, protocol: Protocol, budget: Budget, seed: int,
               checkpoint_dir: str | None, on_step=None, keep_checkpoint: bool = False) -> list[dict]:
    """One architecture, wherever the executor runs it: its store rows (failed rows on an error, so
    that a long run goes on; a TrainfreeError's message or the exception's type and text)."""
    from trainfree.spaces import get_space

    space = get_space(space_name)
    arch = space.from_json(arch_json)
    try:
        result = train_arch(space, arch, protocol, budget, seed, checkpoint_dir=checkpoint_dir, on_progress=on_step,
                            keep_checkpoint=keep_checkpoint)
    except (KeyboardInterrupt, DiskFull, Refused):  # not the architecture's fault: the whole run stops
        raise
    except Exception as err:  # recorded as failed, never fatal to the other architectures
        return failed_rows(space.arch_id(arch), budget, seed, f"{type(err).__name__}: {err}")
    return rows_of(result)


def train_many(space_name: str, items: Sequence[tuple[str, object]], protocol: Protocol, budget: Budget,
               seed: int = 0, store=None, jobs: int = 1, executor: str | None = None, address: str | None = None,
               threads: int | None = None, checkpoint_dir: str | Path | None = None,
               on_progress: Callable[[int, int], None] | None = None,
               on_step: Callable[[float, float], None] | None = None,
               on_result: Callable[[str, list[dict]], None] | None = None,
               keep_checkpoints: bool = False) -> TrainRun:
    """Train each ``(name, architecture)`` not yet in ``store`` at every budget point; returns them all
    (stored ones marked ``reused``). Failed architectures are retried by a rerun. ``on_progress(done,
    total)`` counts architectures; ``on_step(done, stop)``, in the budget's unit, follows the training
    itself when it runs in this process; ``on_result(arch_id, rows)`` sees each architecture's rows as
    it finishes (after they are stored). ``keep_checkpoints`` keeps each finished run's checkpoint in
    ``checkpoint_dir`` so that a later, longer budget continues it instead of starting afresh."""
    from trainfree.spaces import get_space

    space = get_space(space_name)
    fp = protocol.fingerprint()
    ids = [space.arch_id(a) for _, a in items]
    stored = store.trainings(fp, seed, budget.unit, ids) if store is not None else {}
    results, todo = [], {}
    for (name, arch), arch_id in zip(items, ids):
        got = {p: stored[(arch_id, p)] for p in budget.points if (arch_id, p) in stored}
        entry = Trained(name, arch_id, got)
        if len(got) == len(budget.points) and all(r["status"] != "failed" for r in got.values()):
            entry.reused = True
        elif arch_id not in todo:
            todo[arch_id] = arch
        results.append(entry)
    if store is not None:
        store.add_architectures(space.name, [(space.arch_id(a), space.canonical_json(a)) for a in todo.values()])
    if checkpoint_dir is not None:  # checkpoints a killed run was writing
        from trainfree.files import remove_stale_temporaries

        remove_stale_temporaries(Path(checkpoint_dir), r".+\.pt\.tmp(?P<pid>\d+)")
    executor = executor or ("process" if jobs > 1 and len(todo) > 1 else "local")
    local = getattr(executor, "kind", executor) == "local"
    tasks = [(space.name, space.to_json(a), protocol, budget, seed,
              None if checkpoint_dir is None else str(checkpoint_dir), on_step if local else None, keep_checkpoints)
             for a in todo.values()]
    order = list(todo)
    fresh: dict[str, list[dict]] = {}
    done = sum(r.reused for r in results)
    total = len({r.arch_id for r in results})
    if on_progress is not None:
        on_progress(done, total)
    from trainfree.executors import executing

    with executing(executor, jobs, threads, address) as ex:
        for index, rows in ex.map(train_task, tasks):
            arch_id = order[index]
            fresh[arch_id] = rows
            if store is not None:
                store.put_trainings(fp, protocol.identity(), rows, __version__)
            if on_result is not None:
                on_result(arch_id, rows)
            done += 1
            if on_progress is not None:
                on_progress(done, total)
    for entry in results:
        if entry.arch_id in fresh:
            entry.points = {r["budget"]: r for r in fresh[entry.arch_id] if r["budget"] in budget.points}
    return TrainRun(protocol, budget, seed, results, trained=len(fresh), reused=sum(r.reused for r in results))
