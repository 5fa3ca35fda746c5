"""Scores joined with a benchmark's trained results by architecture name: per-metric correlations,
bootstrap intervals, top-k precision and the paired difference to a baseline metric."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from trainfree.benchmarks import Benchmark, load_benchmark
from trainfree.errors import InvalidBenchmark, TrainfreeError
from trainfree.evaluation.correlation import (Correlation, Difference, bootstrap_ci, correlate_values,
                                             paired_difference, topk_precision)
from trainfree.evaluation.within import WithinCorrelation, group_labels, parse_within, within_correlation
from trainfree.metrics import get_metric

if TYPE_CHECKING:
    from trainfree.records import Score


@dataclass(frozen=True)
class MetricCorrelation:
    metric: str
    correlation: Correlation
    ci: dict | None = None  # statistic -> Interval (bootstrap)
    topk: dict = field(default_factory=dict)  # k -> precision
    versus: Difference | None = None  # tau minus the baseline's, paired bootstrap
    within: WithinCorrelation | None = None  # tau inside groups of shared factors (evaluation.within)

    def as_dict(self) -> dict:
        d = {"metric": self.metric, **self.correlation.as_dict()}
        for stat, interval in (self.ci or {}).items():
            d[f"{stat}_low"], d[f"{stat}_high"] = interval.low, interval.high
        d.update({f"top{k}_precision": p for k, p in self.topk.items()})
        if self.versus is not None:
            d.update({"tau_minus_baseline": self.versus.kendall_tau, "tau_minus_baseline_low": self.versus.low,
                      "tau_minus_baseline_high": self.versus.high})
        if self.within is not None:
            d.update(self.within.as_dict())
        return d


def correlate(benchmark: str | Benchmark, scores: Sequence[Score], ci_resamples: int = 0,
              topk: Sequence[int] = (), seed: int = 0, baseline: str | None = None,
              resamples: int = 1000, within: str | Sequence[str] | None = None,
              ci_statistics: tuple[str, ...] = ("kendall_tau", "spearman", "pearson")) -> list[MetricCorrelation]:
    """Per metric: tau-b / Spearman / Pearson of its scores against the benchmark target, with
    percentile-bootstrap intervals of ``ci_statistics`` when ``ci_resamples`` > 0 and top-k precision for each k.
    With a ``baseline`` metric (one of the scores, e.g. ``params``), each metric's tau minus the
    baseline's, with a paired bootstrap interval of ``resamples`` draws.

    With ``within`` (factor names of the space's ``factors(arch)``, or ``params:N`` for the parameter
    count in N quantile bins), also the size-weighted mean of the tau inside each group of architectures
    sharing those factors, with a bootstrap interval of ``resamples`` draws (and, with a baseline, its
    difference to the baseline's): see :mod:`trainfree.evaluation.within`.

    Scores join the benchmark on ``name``. A benchmark record without a finite score counts as dropped.
    """
    bench = load_benchmark(benchmark) if not isinstance(benchmark, Benchmark) else benchmark
    if not scores:
        raise InvalidBenchmark("the scores hold no rows")
    names = set(bench.targets())
    check_scores(scores, names)
    by_metric: dict[str, dict[str, float]] = {}
    for s in scores:
        by_metric.setdefault(s.metric, {})[s.name] = s.value if s.status == "ok" else math.nan
    from trainfree.metrics.combo import is_combo, refuse_in_sample

    for metric_name in by_metric:  # a combination's tau on the runs it was fitted on is refused
        if is_combo(metric_name):
            refuse_in_sample(metric_name, bench, by_metric[metric_name])
    if baseline is not None and baseline not in by_metric:
        raise TrainfreeError(f"the baseline {baseline!r} is not among the scored metrics "
                             f"({', '.join(sorted(by_metric))})")
    baseline_higher = get_metric(baseline).higher_is_better if baseline is not None else None
    factors = parse_within(within) if within is not None else ()
    labels = {}
    if factors:
        scored = [r for r in bench.records if any(r.name in v for v in by_metric.values())]
        labels = dict(zip((r.name for r in scored), group_labels(bench.space, scored, factors, by_metric)))
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
        ci = (bootstrap_ci(vals, targets, resamples=ci_resamples, seed=seed, statistics=ci_statistics, **orient)
              if ci_resamples else None)
        precision = {k: topk_precision(vals, targets, k, **orient) for k in topk}
        versus = None
        if baseline is not None:
            base = [by_metric[baseline].get(r.name, math.nan) for r in matched]
            versus = paired_difference(vals, base, targets, higher_is_better=spec.higher_is_better,
                                       baseline_higher_is_better=baseline_higher,
                                       target_lower_is_better=bench.lower_is_better, resamples=resamples, seed=seed)
        inside = None
        if factors:
            inside = within_correlation(
                vals, targets, [labels[r.name] for r in matched], factors=factors, resamples=resamples, seed=seed,
                baseline=[by_metric[baseline].get(r.name, math.nan) for r in matched] if baseline else None,
                baseline_higher_is_better=bool(baseline_higher), **orient)
        out.append(MetricCorrelation(metric_name, corr, ci, precision, versus, inside))
    return out


def _fingerprints(scores) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in scores:
        fp = getattr(s, "fingerprint", "")
        if fp:
            counts[fp] = counts.get(fp, 0) + 1
    return counts


def check_scores(scores: Sequence[Score], names: set[str] | None = None) -> None:
    """Refuse scores that cannot be correlated as one set: rows under several settings fingerprints
    (e.g. an export holding several model seeds), or one (name, metric) given more than once. Only
    rows whose name is in ``names`` (the benchmark's) count, when given."""
    used = [s for s in scores if names is None or s.name in names]
    fingerprints = _fingerprints(used)
    if len(fingerprints) > 1:
        shown = ", ".join(f"{fp} ({n} rows)" for fp, n in sorted(fingerprints.items(), key=lambda x: -x[1])[:5])
        raise TrainfreeError(f"the scores mix {len(fingerprints)} settings fingerprints: {shown}"
                             f"{', ...' if len(fingerprints) > 5 else ''}; correlate each separately "
                             f"(`trainfree correlate --split`, api.correlate_by_fingerprint) or keep one's rows")
    seen: dict[tuple[str, str], int] = {}
    for s in used:
        seen[(s.name, s.metric)] = seen.get((s.name, s.metric), 0) + 1
    dups = {k: n for k, n in seen.items() if n > 1}
    if dups:
        shown = ", ".join(f"{name!r}/{metric} x{n}" for (name, metric), n in list(dups.items())[:5])
        raise TrainfreeError(f"the scores hold {len(dups)} duplicate (name, metric) entries: {shown}"
                             f"{', ...' if len(dups) > 5 else ''}; each architecture name needs one score per metric "
                             f"(several metric versions or files concatenated?)")


def correlate_by_fingerprint(benchmark: str | Benchmark, scores: Sequence[Score],
                             **options) -> dict[str, list[MetricCorrelation]]:
    """:func:`correlate` on each settings fingerprint's rows separately: fingerprint -> results
    (rows without a fingerprint are grouped under "")."""
    groups: dict[str, list] = {}
    for s in scores:
        groups.setdefault(getattr(s, "fingerprint", ""), []).append(s)
    return {fp: correlate(benchmark, rows, **options) for fp, rows in sorted(groups.items())}
