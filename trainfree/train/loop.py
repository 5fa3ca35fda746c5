"""The training loop: one architecture, one protocol, one seed, up to a budget, validation loss
recorded at every budget point, checkpointed so that a killed run resumes where it stopped.

Resuming restores the weights, the optimiser's moments, torch's and numpy's generators, the data
position and the carried hidden state, so on the CPU (same torch, same thread count) a resumed run
ends bit for bit where an uninterrupted one does. CPU-seconds are this process's CPU time
(``time.process_time``) spent in training steps; evaluation's is counted apart.
"""
from __future__ import annotations

import math
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from trainfree.config import ScoreSettings
from trainfree.errors import Refused, TrainfreeError
from trainfree.files import write_error
from trainfree.train.protocol import Budget, Protocol

CHECKPOINT_FORMAT = 1


@dataclass
class Record:
    """Validation loss once the run reached a budget point."""
    point: float  # the budget point (in the budget's unit)
    val_loss: float
    steps: int
    tokens: int
    cpu_seconds: float  # training CPU time so far
    eval_cpu_seconds: float  # evaluation CPU time so far (this record's included)


@dataclass
class TrainResult:
    arch_id: str
    protocol: Protocol
    seed: int
    budget: Budget
    records: list[Record] = field(default_factory=list)
    train_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, mean train loss since the last)
    status: str = "ok"  # ok, nonfinite (the loss diverged: later points are NaN), failed
    error: str = ""
    resumed_from: int = 0  # the step a checkpoint gave (0: a fresh start)
    model: object = field(default=None, repr=False, compare=False)  # the trained model, with keep_model

    @property
    def final(self) -> Record:
        return self.records[-1]

    @property
    def val_loss(self) -> float:
        return self.records[-1].val_loss if self.records else math.nan


def make_trainer(space, arch, protocol: Protocol, seed: int):
    """The model built under ``seed`` at the protocol's size, and its trainer."""
    settings = ScoreSettings(seed=seed, size=protocol.size, corpus=protocol.corpus, device="cpu")
    model = space.build(arch, settings, "cpu")
    if protocol.trainer == "awd-lstm":
        from trainfree.train.awd import AWDTrainer

        return AWDTrainer(model, protocol, seed)
    if not hasattr(model, "proxy_loss"):
        raise TrainfreeError(f"space {space.name!r}: its models have no proxy_loss (the lm_loss artefact) to train on")
    from trainfree.train.lm import WindowLMTrainer, WordPieceMLMTrainer

    cls = WindowLMTrainer if protocol.trainer == "window-lm" else WordPieceMLMTrainer
    return cls(model, protocol, seed, space)


def learning_rate(protocol: Protocol, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then constant: never a function of the total budget."""
    if protocol.warmup_steps and step < protocol.warmup_steps:
        return protocol.lr * (step + 1) / protocol.warmup_steps
    return protocol.lr


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:300]


def checkpoint_path(folder: Path, arch_id: str, protocol: Protocol, seed: int) -> Path:
    return Path(folder) / f"{arch_id}-{protocol.fingerprint()}-s{seed}.pt"


def _save(path: Path, payload: dict) -> None:
    """Write the checkpoint through a temporary file named by this process (``NAME.tmpPID``): a kill
    mid-write leaves the previous checkpoint whole, and a later run removes the leftover
    (:func:`trainfree.files.remove_stale_temporaries`). A full disk is named as such."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrainfreeError(f"{path.parent}: cannot make the checkpoint folder ({err.strerror or err})") from None
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch reports a short write as a RuntimeError
        tmp.unlink(missing_ok=True)
        raise write_error(path, err, "checkpoint") from None


def _load(path: Path, arch_id: str, protocol: Protocol, seed: int) -> dict | None:
    if not path.exists():
        return None
    try:
        # tensors and plain data only: an object planted in a checkpoint cannot run code when it is read
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise Refused(f"{path}: refused: the checkpoint holds objects other than tensors and plain data, "
                             f"which trainfree never writes ({_first_line(err)}); delete it to train afresh") from None
    except Exception as err:  # a damaged file: say so rather than train from a bad state
        raise TrainfreeError(f"{path}: cannot read the checkpoint ({type(err).__name__}: {_first_line(err)}); delete "
                             f"it to train afresh") from None
    if not isinstance(payload, dict):
        raise TrainfreeError(f"{path}: not a trainfree checkpoint (a {type(payload).__name__}); delete it")
    expected = (CHECKPOINT_FORMAT, arch_id, protocol.fingerprint(), seed)
    got = tuple(payload.get(k) for k in ("format", "arch_id", "protocol", "seed"))
    if got != expected:
        raise TrainfreeError(f"{path}: the checkpoint is of another run ({got[1:]} not {expected[1:]}); delete it")
    return payload


class _Clock:
    """Training CPU time and evaluation CPU time, apart."""

    def __init__(self, train: float = 0.0, evaluation: float = 0.0):
        self.train, self.evaluation = train, evaluation


def train_arch(space, arch, protocol: Protocol, budget: Budget, seed: int = 0,
               checkpoint_dir: str | Path | None = None, checkpoint_every: float = 60.0,
               keep_checkpoint: bool = False, on_progress: Callable[[float, float], None] | None = None,
               after_step: Callable[[int], None] | None = None, curve_every: int = 10,
               keep_model: bool = False) -> TrainResult:
    """Train ``arch`` of ``space`` under ``protocol`` and ``seed`` until ``budget.stop``, evaluating at
    every budget point. With ``checkpoint_dir`` the state is saved every ``checkpoint_every`` CPU-seconds
    of training (and at each budget point) and a run finds and resumes its checkpoint; a finished run
    removes it unless ``keep_checkpoint`` (then a longer budget can continue it later).
    ``on_progress(done, total)`` is in the budget's unit; ``after_step(step)`` runs after every step
    (tests stop runs with it). The global torch generator is left as it was.
    """
    arch_id = space.arch_id(arch)
    result = TrainResult(arch_id, protocol, seed, budget)
    path = checkpoint_path(checkpoint_dir, arch_id, protocol, seed) if checkpoint_dir is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        trainer = make_trainer(space, arch, protocol, seed)
        step, tokens, clock, pending = 0, 0, _Clock(), []
        payload = _load(path, arch_id, protocol, seed) if path is not None else None
        if payload is not None:
            past = {"steps": payload["step"], "tokens": payload["tokens"], "cpu-seconds": payload["cpu"]}[budget.unit]
            recorded = {r["point"] for r in payload["records"]}
            if any(p < past and p not in recorded for p in budget.points):
                payload = None  # a point this budget asks for lies behind the checkpoint: start afresh
        if payload is not None:
            trainer.model.load_state_dict(payload["model"])
            trainer.load(payload["trainer"])
            torch.set_rng_state(payload["torch_rng"])
            step, tokens = payload["step"], payload["tokens"]
            clock = _Clock(payload["cpu"], payload["eval_cpu"])
            result.records = [Record(**r) for r in payload["records"]]
            result.train_curve = [tuple(c) for c in payload["curve"]]
            result.resumed_from = step
        done_points = {r.point for r in result.records}

        def save():
            if path is None:
                return
            _save(path, {"format": CHECKPOINT_FORMAT, "arch_id": arch_id, "protocol": protocol.fingerprint(),
                         "seed": seed, "model": trainer.model.state_dict(), "trainer": trainer.state(),
                         "torch_rng": torch.get_rng_state(), "step": step, "tokens": tokens, "cpu": clock.train,
                         "eval_cpu": clock.evaluation, "records": [vars(r) for r in result.records],
                         "curve": result.train_curve})

        def measure() -> float:
            return {"steps": step, "tokens": tokens, "cpu-seconds": clock.train}[budget.unit]

        last_save = clock.train
        diverged = False
        while True:
            reached = [p for p in budget.points if p not in done_points and (diverged or measure() >= p)]
            for point in reached:
                t0 = time.process_time()
                loss = math.nan if diverged else trainer.evaluate()
                clock.evaluation += time.process_time() - t0
                result.records.append(Record(point, loss, step, tokens, clock.train, clock.evaluation))
                done_points.add(point)
            if reached and not diverged:
                save()
                last_save = clock.train
            if done_points.issuperset(budget.points):
                break
            t0 = time.process_time()
            loss, n = trainer.step(learning_rate(protocol, step))
            clock.train += time.process_time() - t0
            step += 1
            tokens += n
            pending.append(loss)
            if not math.isfinite(loss):
                diverged = True
                result.status = "nonfinite"
            if len(pending) >= curve_every or diverged:
                result.train_curve.append((step, sum(pending) / len(pending)))
                pending = []
            if on_progress is not None:
                on_progress(min(measure(), budget.stop), budget.stop)
            if path is not None and clock.train - last_save >= checkpoint_every:
                save()
                last_save = clock.train
            if after_step is not None:
                after_step(step)
        if any(not math.isfinite(r.val_loss) for r in result.records) and result.status == "ok":
            result.status = "nonfinite"
        if path is not None and not keep_checkpoint:
            path.unlink(missing_ok=True)
        elif path is not None:
            save()
        result.records.sort(key=lambda r: r.point)
        if keep_model:
            result.model = trainer.model
    return result
