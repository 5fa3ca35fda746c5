"""Two-stage search: a training-free search proposes, its K best (by the metric) are short-trained, and
the choice is the one with the lowest validation loss after training. Trained results come from the
store when there (``trainfree.train``), so a rerun, or a fidelity study on the same architectures,
costs nothing more. Within a benchmark the choice's trained result is looked up as for any search."""
from __future__ import annotations

from dataclasses import dataclass

from trainfree.errors import TrainfreeError
from trainfree.search.run import SearchResult, arch_targets, lookup


@dataclass
class Verified:
    search: SearchResult
    k: int
    run: object  # trainfree.train.run.TrainRun of the K
    chosen_arch_id: str
    chosen_val_loss: float

    @property
    def train_cpu_seconds(self) -> float:
        """Training and evaluation CPU time of the K (stored runs count what they cost when trained)."""
        return sum(r.cpu_seconds for r in self.run.results)

    def evaluation(self) -> dict | None:
        bench = self.search.benchmark
        if bench is None:
            return None
        return lookup(arch_targets(bench), self.chosen_arch_id, bench.lower_is_better)

    def as_dict(self) -> dict:
        out = {"verify_top": self.k, "protocol": self.run.protocol.identity(),
               "protocol_fingerprint": self.run.protocol.fingerprint(), "budget": {
                   "unit": self.run.budget.unit, "points": list(self.run.budget.points)},
               "train_seed": self.run.seed, "train_cpu_seconds": self.train_cpu_seconds,
               "trained": [{"arch_id": r.arch_id, "val_loss": r.val_loss, "status": r.status, "reused": r.reused}
                           for r in self.run.results],
               "chosen": {"arch_id": self.chosen_arch_id, "val_loss": self.chosen_val_loss}}
        ev = self.evaluation()
        if ev is not None:
            out["evaluation"] = ev
        return out


def verify_top(result: SearchResult, k: int, budget: float, unit: str = "steps", seed: int = 0,
               protocol: str | None = None, store=None, jobs: int = 1, executor: str | None = None,
               address: str | None = None, threads: int | None = None, checkpoint_dir=None, on_progress=None,
               **protocol_overrides) -> Verified:
    """Short-train the ``k`` best trials of ``result`` and choose the lowest final validation loss
    (non-finite losses never win; when all are, the metric's best is kept)."""
    from trainfree.train import Budget, protocol_for
    from trainfree.train.run import best_trained, train_many

    if k < 1:
        raise TrainfreeError(f"--verify-top must be at least 1, got {k}")
    space = result.problem.space
    top = result.best(k)
    chosen_protocol = protocol_for(space.name, protocol, **protocol_overrides)
    run = train_many(space.name, [(t.arch_id, t.arch) for t in top], chosen_protocol, Budget.of(budget, unit),
                     seed, store=store, jobs=jobs, executor=executor, address=address, threads=threads,
                     checkpoint_dir=checkpoint_dir, on_progress=on_progress)
    best = best_trained(run.results)
    return Verified(result, k, run, best.arch_id, best.val_loss)
