"""What the suite computes on each benchmark: every registered metric that applies to its space (aliases
once, under their own name), at the benchmark's default settings, on every distinct architecture; the
costly ones (``COSTLY``: measured at seconds per architecture) on a seeded subset of ``SUBSET[space]``
distinct architectures where the benchmark has more.

Costs behind ``COSTLY`` (one thread, per architecture): the paper's Jacobian and gradient metrics on a
NAS-Bench-NLP cell together about 49 s (grasp 18 s, zico 7 s); the NAS-Bench-BERT gradient metrics
together about 34 s (grasp 17 s, zico 5 s, grad_norm 4 s, fisher 3 s, the synaptic diversities 3.6 s: the
``seconds`` the suite's store records);
on LTS decoders ``zico`` 9.0 s and ``grasp`` 5.6 s, against 0.5-1.6 s for every other decoder metric
(``python benchmarks/metric_costs.py``). ``state_grad_rate`` takes a backward pass of layer 1 only, about
0.3 s per NAS-Bench-NLP cell, so it runs on every cell.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: metrics left out, and why
EXCLUDED = {"latency": "a timing of the machine it runs on, not a property of the architecture"}
#: space -> metrics run on a subset (None: every metric that needs a backward pass)
COSTLY: dict[str, set | None] = {"nasbench-nlp": None, "nasbench-bert": None, "decoder": {"zico", "grasp"}}
#: space -> metrics with a backward pass that are cheap enough for every architecture
CHEAP = {"nasbench-nlp": {"state_grad_rate", "state_grad_edge"}}
#: space -> distinct architectures a costly metric runs on, per benchmark
SUBSET = {"nasbench-nlp": 100, "nasbench-bert": 30, "decoder": 20}
#: benchmark -> its own subset size, where the space's would cost too much (WikiText-2: the backward
#: set's 49 s per cell on 100 cells is 80 CPU-minutes)
SUBSET_OF_BENCHMARK = {"nasbench-nlp-wikitext2": 30}
#: space -> the size baseline of the leaderboard, and the factors its within-group tau groups on
BASELINE = {"nasbench-nlp": "params", "nasbench-bert": "params", "decoder": "nonembedding_params",
            "gemstones": "nonembedding_params"}
WITHIN = {"nasbench-nlp": ("params:5",), "nasbench-bert": ("num_layers", "hidden_size"), "decoder": ("n_layer",),
          "gemstones": ("size_group",)}
#: the seed of every subset (a benchmark's subset is a function of its architecture ids and this seed)
SUBSET_SEED = 0


@dataclass(frozen=True)
class Task:
    """One metric on one benchmark: the architecture ids it runs on, and whether that is all of them."""

    metric: str
    arch_ids: tuple[str, ...]
    coverage: str  # "all" or "subset"


def suite_metrics(space) -> list[str]:
    """Every registered metric (no alias, nothing in EXCLUDED, no combination model) that applies to the space."""
    from trainfree.metrics import METRICS

    return [m.name for m in METRICS if m.alias_of is None and m.name not in EXCLUDED and m.applies_to(space)]


def is_costly(space, metric: str) -> bool:
    from trainfree.metrics import get_metric

    if space.name not in COSTLY:
        return False
    chosen = COSTLY[space.name]
    if chosen is None:
        return get_metric(metric).backward and metric not in CHEAP.get(space.name, ())
    return metric in chosen


def subset(arch_ids, size: int, seed: int = SUBSET_SEED) -> tuple[str, ...]:
    """``size`` of the distinct ``arch_ids`` drawn under ``seed`` (all of them when there are no more),
    in sorted order: the draw depends on the set of ids, not on their order."""
    ids = sorted(set(arch_ids))
    if len(ids) <= size:
        return tuple(ids)
    picked = np.random.default_rng(seed).choice(len(ids), size=size, replace=False)
    return tuple(ids[i] for i in sorted(picked))


def plan(bench, metrics=None, seed: int = SUBSET_SEED) -> list[Task]:
    """The suite's tasks on a benchmark: ``metrics`` (default: :func:`suite_metrics`) in registry order."""
    from trainfree.metrics.base import check_applies, get_metric
    from trainfree.spaces import get_space

    space = get_space(bench.space)
    names = list(metrics) if metrics is not None else suite_metrics(space)
    for name in names:
        check_applies(get_metric(name), space)
    ids = list(dict.fromkeys(space.arch_id(r.arch) for r in bench.records))
    small = subset(ids, SUBSET_OF_BENCHMARK.get(bench.name, SUBSET.get(space.name, len(ids))), seed)
    return [Task(m, small, "subset") if is_costly(space, m) and len(small) < len(ids) else Task(m, tuple(ids), "all")
            for m in names]
