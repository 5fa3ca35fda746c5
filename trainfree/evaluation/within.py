"""Size-controlled correlations: Kendall tau inside groups of architectures that share design factors
(e.g. NAS-Bench-BERT's layers x hidden size) or a binned parameter count, averaged over the groups.

A metric that only tracks size ranks the groups well and the members of a group at random: its global
tau is high and its within-group tau near zero. So the within-group tau says what a metric knows
beyond the factors grouped on.

The mean weighs each group by its number of architectures (with finite values). Groups with fewer
than MIN_GROUP of them are skipped and counted; so are groups where the metric or the target is
constant (tau-b undefined), counted apart. Intervals are percentile bootstraps that resample
architectures within each group (so every group keeps its size); the difference to a baseline uses
the same resamples for both metrics.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from trainfree.errors import TrainfreeError
from trainfree.evaluation.correlation import _percentile_interval
from trainfree.records import orient

#: a group needs this many architectures with finite values to give a tau
MIN_GROUP = 3
#: metrics a ``NAME:N`` factor may bin (``params`` falls back to ``decoder_params`` when only that was scored)
SIZE_METRICS = ("params", "decoder_params", "nonembedding_params")


@dataclass(frozen=True)
class GroupTau:
    group: tuple
    n: int
    kendall_tau: float  # NaN when the group was skipped or tau-b is undefined in it


@dataclass(frozen=True)
class WithinCorrelation:
    """A metric's size-weighted mean within-group tau, its bootstrap interval, and (with a baseline)
    the difference to the baseline's with a paired interval."""

    factors: tuple[str, ...]
    n: int  # architectures in the groups used
    groups: int  # groups used
    skipped: int  # groups with fewer than MIN_GROUP finite architectures
    undefined: int  # groups where the metric or the target is constant
    kendall_tau: float
    low: float
    high: float
    per_group: tuple[GroupTau, ...] = ()
    minus_baseline: float | None = None
    minus_baseline_low: float | None = None
    minus_baseline_high: float | None = None

    def as_dict(self) -> dict:
        d = {"within_tau": self.kendall_tau, "within_low": self.low, "within_high": self.high,
             "within_n": self.n, "within_groups": self.groups, "within_skipped": self.skipped,
             "within_undefined": self.undefined}
        if self.minus_baseline is not None:
            d.update({"within_minus_baseline": self.minus_baseline, "within_minus_baseline_low": self.minus_baseline_low,
                      "within_minus_baseline_high": self.minus_baseline_high})
        return d


def _tau(v: np.ndarray, t: np.ndarray) -> float:
    if len(v) < MIN_GROUP or np.ptp(v) == 0 or np.ptp(t) == 0:
        return math.nan
    return float(stats.kendalltau(v, t).statistic)


#: resamples per batch of the weighted tau (a batch holds resamples x n counts)
_BATCH_CELLS = 4_000_000


def resampled_taus_b(v: np.ndarray, t: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Kendall tau-b of ``v[p]`` against ``t[p]`` for each row ``p`` of ``picks`` (resamples x n indices
    into v and t), NaN where a resampled row is constant: scipy's statistic, exactly. A resample is a
    count per original architecture (w), so its concordant-minus-discordant pairs are w'Sw/2 with S the
    n x n matrix of sign products, and its tied pairs come from the counts per distinct value: one
    matrix product per batch, where scipy.stats.kendalltau takes one resample per call and an n x n
    sign array per resample cost minutes on the 1,000-architecture groups of NAS-Bench-NLP."""
    n = len(v)
    sign = np.sign(v[:, None] - v[None, :]) * np.sign(t[:, None] - t[None, :])
    _, v_code = np.unique(v, return_inverse=True)
    _, t_code = np.unique(t, return_inverse=True)
    pairs = n * (n - 1) / 2
    out = np.empty(len(picks))
    step = max(1, _BATCH_CELLS // max(1, n))
    for lo in range(0, len(picks), step):
        p = picks[lo:lo + step]
        rows = np.repeat(np.arange(len(p)) * n, p.shape[1])
        w = _counts(rows + p.ravel(), len(p), n)
        score = np.einsum("ij,ij->i", w @ sign, w) / 2
        tied = [_tied_pairs(p, code) for code in (v_code, t_code)]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo:lo + step] = score / np.sqrt((pairs - tied[0]) * (pairs - tied[1]))
    out[~np.isfinite(out)] = np.nan
    return out


def _counts(flat: np.ndarray, rows: int, width: int) -> np.ndarray:
    return np.bincount(flat, minlength=rows * width).reshape(rows, width).astype(np.float64)


def _tied_pairs(picks: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Pairs sharing a value in each resample: the sum over distinct values of c(c-1)/2."""
    width = int(codes.max()) + 1
    c = _counts(np.repeat(np.arange(len(picks)) * width, picks.shape[1]) + codes[picks.ravel()], len(picks), width)
    return (c * (c - 1) / 2).sum(axis=1)


def _draws(v, t, idx: list[np.ndarray], rng, resamples: int) -> np.ndarray:
    """Within-group taus of ``resamples`` stratified resamples: resamples x groups (NaN where a
    resampled group is constant). Every group draws its rows from ``rng`` in turn."""
    picks = [rng.integers(0, len(i), (resamples, len(i))) for i in idx]
    return (np.stack([resampled_taus_b(v[i], t[i], p) for i, p in zip(idx, picks)], axis=1) if picks
            else np.empty((resamples, 0)))


def _weighted_rows(taus: np.ndarray, weights: np.ndarray) -> np.ndarray:
    ok = np.isfinite(taus)
    w = np.where(ok, weights, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, taus, 0.0) @ weights / w.sum(axis=1) if taus.shape[1] else np.full(len(taus), np.nan)


def _weighted(taus: np.ndarray, weights: np.ndarray) -> float:
    ok = np.isfinite(taus)
    return float(np.average(taus[ok], weights=weights[ok])) if ok.any() else math.nan


def _groups(labels: Sequence, keep: np.ndarray) -> tuple[list[tuple], list[np.ndarray], int]:
    """Index arrays of the kept architectures by label (unlabelled ones, None, are left out), and
    how many groups were too small."""
    by: dict = {}
    for i in np.flatnonzero(keep):
        if labels[i] is not None:
            by.setdefault(labels[i], []).append(i)
    names = sorted(by, key=str)
    big = [g for g in names if len(by[g]) >= MIN_GROUP]
    return big, [np.asarray(by[g]) for g in big], len(names) - len(big)


def within_correlation(values, targets, labels: Sequence, *, higher_is_better: bool, target_lower_is_better: bool,
                       factors: Sequence[str] = (), baseline=None, baseline_higher_is_better: bool = True,
                       resamples: int = 1000, level: float = 0.95, seed: int = 0) -> WithinCorrelation:
    """The within-group tau of ``values`` against ``targets``, architectures grouped by ``labels``
    (hashable, one per architecture; None leaves it out). Signed so that positive = ranks
    better-trained architectures higher. With ``baseline`` values, also the weighted within tau
    minus the baseline's on the architectures both scored, over the groups where both are defined."""
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if not (v.shape == t.shape == (len(labels),)):
        raise ValueError(f"expected values, targets and labels of one length, got {v.shape}, {t.shape}, {len(labels)}")
    v, t = orient(v, higher_is_better), orient(t, not target_lower_is_better)
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names, idx, skipped = _groups(labels, np.isfinite(v) & np.isfinite(t))
        taus = np.array([_tau(v[i], t[i]) for i in idx])
        sizes = np.array([len(i) for i in idx], dtype=np.float64)
        used = np.isfinite(taus)
        point = _weighted(taus, sizes)
        kept = [i for i, u in zip(idx, used) if u]
        draws = _weighted_rows(_draws(v, t, kept, rng, resamples), sizes[used]) if kept else []
        interval = _percentile_interval(draws, level)
        per_group = tuple(GroupTau(g, len(i), float(x)) for g, i, x in zip(names, idx, taus))
        out = dict(factors=tuple(factors), n=int(sizes[used].sum()), groups=int(used.sum()), skipped=skipped,
                   undefined=int((~used).sum()), kendall_tau=point, low=interval.low, high=interval.high,
                   per_group=per_group)
        if baseline is not None:
            out.update(_paired(v, t, orient(np.asarray(baseline, dtype=np.float64), baseline_higher_is_better),
                               labels, resamples, level, np.random.default_rng(seed)))
    return WithinCorrelation(**out)


def _paired(v, t, b, labels, resamples: int, level: float, rng) -> dict:
    """Weighted within tau of v minus that of b on the architectures where both (and t) are finite,
    over the groups where both taus are defined, with the same resampled architectures for both."""
    _, idx, _ = _groups(labels, np.isfinite(v) & np.isfinite(b) & np.isfinite(t))
    both = [i for i in idx if math.isfinite(_tau(v[i], t[i])) and math.isfinite(_tau(b[i], t[i]))]
    if not both:
        return {"minus_baseline": math.nan, "minus_baseline_low": math.nan, "minus_baseline_high": math.nan}
    sizes = np.array([len(i) for i in both], dtype=np.float64)

    point = (_weighted(np.array([_tau(v[i], t[i]) for i in both]), sizes)
             - _weighted(np.array([_tau(b[i], t[i]) for i in both]), sizes))
    # the same generator state for both: identical resampled architectures
    state = rng.bit_generator.state
    ours = _weighted_rows(_draws(v, t, both, rng, resamples), sizes)
    rng.bit_generator.state = state
    draws = ours - _weighted_rows(_draws(b, t, both, rng, resamples), sizes)
    interval = _percentile_interval(draws, level)
    return {"minus_baseline": point, "minus_baseline_low": interval.low, "minus_baseline_high": interval.high}


def parse_within(within: str | Sequence[str]) -> tuple[str, ...]:
    """``"num_layers,hidden_size"`` or a list of names -> a tuple of factor specs (not yet checked)."""
    names = [w.strip() for w in (within.split(",") if isinstance(within, str) else within) if str(w).strip()]
    if not names:
        raise TrainfreeError("--within needs at least one factor name (e.g. num_layers,hidden_size or params:4)")
    if len(set(names)) < len(names):
        raise TrainfreeError(f"--within names a factor twice: {','.join(names)}")
    return tuple(names)


def _bins(spec: str, by_metric: Mapping[str, Mapping[str, float]], names: Sequence[str]) -> list:
    """Quantile-bin labels of a ``METRIC:N`` spec for the architectures ``names`` (None where the
    metric is not finite)."""
    metric, _, count = spec.partition(":")
    if metric not in SIZE_METRICS:
        raise TrainfreeError(f"--within {spec!r}: only a size metric can be binned ({', '.join(SIZE_METRICS)}), "
                             f"e.g. params:4")
    try:
        bins = int(count)
    except ValueError:
        bins = 0
    if bins < 2:
        raise TrainfreeError(f"--within {spec!r}: expected a bin count of at least 2 after the colon, e.g. params:4")
    if metric == "params" and "params" not in by_metric and "decoder_params" in by_metric:
        metric = "decoder_params"
    if metric not in by_metric:
        raise TrainfreeError(f"--within {spec!r}: the scores hold no {metric!r} to bin by "
                             f"(scored: {', '.join(sorted(by_metric))}); score it too")
    x = np.array([by_metric[metric].get(n, math.nan) for n in names], dtype=np.float64)
    finite = x[np.isfinite(x)]
    if not len(finite):
        return [None] * len(names)
    inner = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    return [int(np.searchsorted(inner, xi, side="right")) if math.isfinite(xi) else None for xi in x]


def group_labels(space_name: str, records, within: Sequence[str],
                 by_metric: Mapping[str, Mapping[str, float]]) -> list[tuple | None]:
    """One label per record: its values of the ``within`` factors (``space.factors(arch)``, or a
    quantile bin of a size metric's scores for ``params:N``); None when a bin's score is missing."""
    from trainfree.registry import did_you_mean
    from trainfree.spaces import get_space

    space = get_space(space_name)
    facts = [space.factors(r.arch) for r in records]
    valid = sorted(facts[0]) if facts else []
    columns = []
    for spec in within:
        if ":" in spec:
            columns.append(_bins(spec, by_metric, [r.name for r in records]))
        elif spec in valid:
            columns.append([f[spec] for f in facts])
        else:
            raise TrainfreeError(f"--within: unknown factor {spec!r} for space {space_name!r}"
                                 f"{did_you_mean(spec, valid + ['params:N'])}; choose from: {', '.join(valid)}, "
                                 f"or params:N (the parameter count in N quantile bins)")
    return [None if any(c[i] is None for c in columns) else tuple(c[i] for c in columns) for i in range(len(records))]
