"""The verbs the command line and notebooks call: score, correlate, analyze."""
from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from typing import Callable, Sequence

from trainfree import __version__
from trainfree.benchmarks import Benchmark, load_benchmark
from trainfree.config import ScoreSettings
from trainfree.errors import InvalidBenchmark, TrainfreeError
from trainfree.evaluation.analysis import Analysis, analyze_benchmark, check_rule_settings
from trainfree.evaluation.correlation import (Correlation, Difference, bootstrap_ci, correlate_values,
                                             paired_difference, topk_precision)
from trainfree.metrics import get_metric
from trainfree.runner import ScoreRow, ScoreRun, score_architectures
from trainfree.scores import ScoreEntry


def provenance(settings: ScoreSettings, metrics: Sequence[str], benchmark: Benchmark | None = None) -> dict:
    """What produced a set of numbers: versions, settings and their fingerprint."""
    import torch

    return {
        "trainfree_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "settings": settings.as_dict(),
        "fingerprint": settings.fingerprint(),
        "metrics": {m: get_metric(m).version for m in metrics},
        "benchmark": None if benchmark is None else {"name": benchmark.name, "source": benchmark.source,
                                                      "records": len(benchmark)},
    }


def score(benchmark: str | Benchmark, metrics: Sequence[str], settings: ScoreSettings | None = None,
          limit: int | None = None, jobs: int = 1, executor: str | None = None, store=None,
          address: str | None = None, on_progress: Callable[[int, int], None] | None = None,
          threads: int | None = None) -> ScoreRun:
    """Score the first ``limit`` architectures of a benchmark with each metric.

    ``store`` (a :class:`trainfree.store.Store`) makes the run resumable and skips stored keys.
    ``jobs`` worker processes run ``threads`` torch threads each (default one; in-process, with
    ``jobs=1``, the caller's own setting).
    Returns a :class:`ScoreRun` (``.rows``, ``.computed``, ``.reused``).
    """
    bench = load_benchmark(benchmark) if not isinstance(benchmark, Benchmark) else benchmark
    if settings is None:
        from trainfree.spaces import get_space

        settings = get_space(bench.space).default_settings()
    bench = bench.head(limit)
    for m in metrics:
        spec = get_metric(m)
        if bench.space not in spec.spaces:
            raise TrainfreeError(f"metric {m!r} does not apply to space {bench.space!r} (it applies to {list(spec.spaces)})")
    items = [(r.name, r.arch) for r in bench.records]
    return score_architectures(bench.space, items, metrics, settings, jobs=jobs, executor=executor, store=store,
                               benchmark=bench.name, address=address, threads=threads, on_progress=on_progress)


@dataclass(frozen=True)
class MetricCorrelation:
    metric: str
    correlation: Correlation
    ci: dict | None = None  # statistic -> Interval (bootstrap)
    topk: dict = field(default_factory=dict)  # k -> precision
    versus: Difference | None = None  # tau minus the baseline's, paired bootstrap

    def as_dict(self) -> dict:
        d = {"metric": self.metric, **self.correlation.as_dict()}
        for stat, interval in (self.ci or {}).items():
            d[f"{stat}_low"], d[f"{stat}_high"] = interval.low, interval.high
        d.update({f"top{k}_precision": p for k, p in self.topk.items()})
        if self.versus is not None:
            d.update({"tau_minus_baseline": self.versus.kendall_tau, "tau_minus_baseline_low": self.versus.low,
                      "tau_minus_baseline_high": self.versus.high})
        return d


def correlate(benchmark: str | Benchmark, scores: Sequence[ScoreEntry | ScoreRow], ci_resamples: int = 0,
              topk: Sequence[int] = (), seed: int = 0, baseline: str | None = None,
              resamples: int = 1000) -> list[MetricCorrelation]:
    """Per metric: tau-b / Spearman / Pearson of its scores against the benchmark target, with
    percentile-bootstrap intervals when ``ci_resamples`` > 0 and top-k precision for each k.
    With a ``baseline`` metric (one of the scores, e.g. ``params``), each metric's tau minus the
    baseline's, with a paired bootstrap interval of ``resamples`` draws.

    Scores join the benchmark on ``name``. A benchmark record without a finite score counts as dropped.
    """
    bench = load_benchmark(benchmark) if not isinstance(benchmark, Benchmark) else benchmark
    by_metric: dict[str, dict[str, float]] = {}
    for s in scores:
        by_metric.setdefault(s.metric, {})[s.name] = s.value if s.status == "ok" else math.nan
    if not by_metric:
        raise InvalidBenchmark("the scores hold no rows")
    names = set(bench.targets())
    if baseline is not None and baseline not in by_metric:
        raise TrainfreeError(f"the baseline {baseline!r} is not among the scored metrics "
                             f"({', '.join(sorted(by_metric))})")
    baseline_higher = get_metric(baseline).higher_is_better if baseline is not None else None
    out = []
    for metric_name, values in by_metric.items():
        spec = get_metric(metric_name)
        matched = [r for r in bench.records if r.name in values]
        if not matched:
            raise InvalidBenchmark(f"no score of metric {metric_name!r} matches a record of benchmark "
                                   f"{bench.name!r} by name ({len(values)} scores, {len(names)} records)")
        vals, targets = [values[r.name] for r in matched], [r.target for r in matched]
        orient = {"higher_is_better": spec.higher_is_better, "target_lower_is_better": bench.lower_is_better}
        corr = correlate_values(vals, targets, **orient)
        ci = bootstrap_ci(vals, targets, resamples=ci_resamples, seed=seed, **orient) if ci_resamples else None
        precision = {k: topk_precision(vals, targets, k, **orient) for k in topk}
        versus = None
        if baseline is not None:
            base = [by_metric[baseline].get(r.name, math.nan) for r in matched]
            versus = paired_difference(vals, base, targets, higher_is_better=spec.higher_is_better,
                                       baseline_higher_is_better=baseline_higher,
                                       target_lower_is_better=bench.lower_is_better, resamples=resamples, seed=seed)
        out.append(MetricCorrelation(metric_name, corr, ci, precision, versus))
    return out


def analyze(benchmark: str | Benchmark, target: str | None = None, alpha: float = 0.01, permutations: int = 999,
            max_conditions: int = 3, min_leaf: int = 5, resamples: int = 100, seed: int = 0) -> Analysis:
    """What a benchmark's design factors (``space.factors``) say about its target: the target by factor
    level, a shrinking rule found by a permutation-tested tree descent (each split must beat the max-T
    permutation null over all candidate splits at ``alpha``; at most ``max_conditions``, each side at
    least ``min_leaf`` architectures), and how often ``resamples`` seeded bootstrap refits choose each
    condition (0: skip). Returns an :class:`~trainfree.evaluation.analysis.Analysis` (``.table``,
    ``.rule``, ``.stability``, ``.summary()``, ``.markdown(command)``).
    """
    if resamples < 0:
        raise TrainfreeError(f"resamples must be 0 (no stability) or positive, got {resamples}")
    check_rule_settings(alpha, permutations, max_conditions, min_leaf)  # before loading anything
    bench = load_benchmark(benchmark, target=target) if not isinstance(benchmark, Benchmark) else benchmark
    return analyze_benchmark(bench, alpha=alpha, permutations=permutations, max_conditions=max_conditions,
                             min_leaf=min_leaf, resamples=resamples, seed=seed)
