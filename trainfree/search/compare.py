"""Metric only, training only, two-stage: what each chooses in a benchmark at the same total CPU time.

For a CPU budget C per search, with c_m the metric's CPU-seconds per architecture and c_t the
training's (the mean of the stored runs of the benchmark's architectures under the protocol):
- metric only: a search of floor(C / c_m) architectures (at most the benchmark's), choice by the metric;
- training only: floor(C / c_t) architectures drawn at random (search seed), each trained, choice by
  validation loss;
- two-stage: a search of floor((C - K c_t) / c_m) architectures (at least K), its K best trained,
  choice by validation loss (``trainfree.search.two_stage``).
Every choice is scored by the benchmark's own trained result. Training runs go through the store, so
architectures trained once (a fidelity study) are never trained again.
"""
from __future__ import annotations

import math
import statistics

import numpy as np

from trainfree.errors import TrainfreeError
from trainfree.search.run import arch_targets, lookup, run_search
from trainfree.search.two_stage import verify_top


def _summary(name: str, evs: list[dict], p10: float, sign: float, cpu: list[float], extra: str) -> dict:
    ts = [e["target"] for e in evs]
    return {"method": name, "setting": extra, "searches": len(evs), "target_mean": statistics.fmean(ts),
            "target_sd": statistics.pstdev(ts), "percentile_mean": statistics.fmean(e["percentile"] for e in evs),
            "share_beyond_p10": statistics.fmean(sign * t <= sign * p10 for t in ts),
            "cpu_mean": statistics.fmean(cpu)}


def compare_at_equal_cpu(bench, metric: str, strategy: str, seeds, cpu_budget: float, k: int, train_budget: float,
                         settings, store, metric_cpu: float, unit: str = "steps", protocol: str | None = None,
                         train_seed: int = 0, jobs: int = 1, executor: str | None = None, checkpoint_dir=None,
                         train_pool=None, **protocol_overrides) -> tuple[list[dict], dict]:
    """The three methods over ``seeds`` (see the module docstring). ``train_pool``: the architecture ids
    training only draws from (default every architecture of the benchmark); a seeded uniform sample of
    the benchmark, such as a fidelity study's, keeps the draws uniform and reuses its stored runs."""
    from trainfree.spaces import get_space
    from trainfree.train import Budget, protocol_for
    from trainfree.train.run import best_trained, train_many

    if not metric_cpu > 0 or not cpu_budget > 0:
        raise TrainfreeError(f"the CPU budget and the metric's cost must be positive (got {cpu_budget}, {metric_cpu})")
    space = get_space(bench.space)
    chosen_protocol = protocol_for(space.name, protocol, **protocol_overrides)
    budget = Budget.of(train_budget, unit)
    targets = arch_targets(bench)
    by_id = {}
    for r in bench.records:
        by_id.setdefault(space.arch_id(r.arch), r)
    pool = sorted(by_id)
    draw_from = pool if train_pool is None else sorted(set(train_pool))
    unknown = set(draw_from) - set(by_id)
    if unknown:
        raise TrainfreeError(f"train_pool: {len(unknown)} architecture id(s) are not in benchmark {bench.name!r}, "
                             f"e.g. {sorted(unknown)[0]}")
    values = sorted(targets.values(), reverse=not bench.lower_is_better)
    p10 = values[max(0, math.ceil(0.1 * len(values)) - 1)]
    sign = 1.0 if bench.lower_is_better else -1.0
    # the training cost per architecture: the stored runs of this protocol (all of the pool that is stored)
    stored = store.trainings(chosen_protocol.fingerprint(), train_seed, unit, pool)
    if not draw_from:
        raise TrainfreeError("train_pool is empty")
    costs = [row["cpu_seconds"] + row["eval_cpu_seconds"] for (a, b), row in stored.items() if b == budget.stop]
    if not costs:
        raise TrainfreeError("no stored training of this benchmark's architectures under the protocol and budget: "
                             "train some first (trainfree train, or benchmarks/fidelity.py)")
    train_cpu = statistics.fmean(costs)
    n_metric = min(len(pool), int(cpu_budget // metric_cpu))
    n_train = max(1, int(cpu_budget // train_cpu))
    n_two = min(len(pool), max(k, int((cpu_budget - k * train_cpu) // metric_cpu)))
    kw = dict(store=store, jobs=jobs, executor=executor, checkpoint_dir=checkpoint_dir)
    metric_only, train_only, two_stage = [], [], []
    cpu_m, cpu_t, cpu_2 = [], [], []
    for seed in seeds:
        res = run_search(space.name, metric, strategy, n_metric, seed, settings, benchmark=bench, store=store)
        metric_only.append(res.evaluation())
        cpu_m.append(len(res.trials) * metric_cpu)
        rng = np.random.default_rng(seed)
        picks = [draw_from[i] for i in rng.choice(len(draw_from), size=min(n_train, len(draw_from)), replace=False)]
        run = train_many(space.name, [(a, by_id[a].arch) for a in picks], chosen_protocol, budget, train_seed, **kw)
        train_only.append(lookup(targets, best_trained(run.results).arch_id, bench.lower_is_better))
        cpu_t.append(sum(r.cpu_seconds for r in run.results))
        res2 = run_search(space.name, metric, strategy, n_two, seed, settings, benchmark=bench, store=store)
        v = verify_top(res2, k, train_budget, unit, train_seed, protocol, **kw, **protocol_overrides)
        two_stage.append(v.evaluation())
        cpu_2.append(len(res2.trials) * metric_cpu + v.train_cpu_seconds)
    rows = [_summary("metric only", metric_only, p10, sign, cpu_m, f"{strategy} + {metric}, {n_metric} archs"),
            _summary("training only", train_only, p10, sign, cpu_t, f"{n_train} random archs trained"),
            _summary("two-stage", two_stage, p10, sign, cpu_2, f"{strategy} + {metric}, {n_two} archs, top {k} "
                                                               f"trained")]
    return rows, {"p10": p10, "best": values[0], "train_cpu_per_arch": train_cpu, "metric_cpu_per_arch": metric_cpu,
                  "pool": len(pool), "train_pool": len(draw_from), "protocol": chosen_protocol.name, "budget": budget.label()}
