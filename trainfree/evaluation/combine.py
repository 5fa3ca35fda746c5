"""``trainfree combine``: fit a combination of metric values on one benchmark, judged by nested,
grouped cross-validation only.

Inputs are rank-transformed with transforms fitted on the fitting rows alone (the outer training
fold, or the inner one while tuning), and so is the target (its fractional ranks, unless
``raw_target``), so no statistic of a held-out row reaches a model that predicts it. Folds are
grouped by architecture id: NAS-Bench-NLP trains most cells about three times, and a learner that saw
one run of a cell would otherwise be tested on its copies (same inputs, nearly the same loss).

Two learners: ``linear`` (ridge regression on the ranks, closed form; the penalty chosen in the
inner folds) and ``boosted`` (scikit-learn's HistGradientBoostingRegressor, the ``combine`` extra;
leaf count and learning rate chosen in the inner folds). The outer folds give the reported figures:
the mean and standard deviation of the held-out Kendall tau over folds (and repeats), and the tau of
all out-of-fold predictions pooled. The saved model is refitted on every row with hyper-parameters
chosen by the same inner procedure; no figure is computed on the rows it was fitted on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from trainfree.errors import MissingExtra, TrainfreeError
from trainfree.metrics.combo_model import (LEARNERS, CombinationModel, RankTransform, fractional_ranks,
                                              predict_params, run_hash)
from trainfree.evaluation.correlation import correlate_values
from trainfree.metrics.combo import is_combo
from trainfree.records import Status, orient

#: ridge penalties tried in the inner folds, strongest first (a tie keeps the simpler model)
ALPHAS = (1.0, 0.1, 0.01, 0.001, 0.0)
#: HistGradientBoostingRegressor settings tried in the inner folds, simplest first
BOOSTED_GRID = tuple({"max_leaf_nodes": leaves, "learning_rate": rate, "max_iter": 200, "min_samples_leaf": 20}
                     for leaves in (7, 15) for rate in (0.03, 0.1))
#: the published metric columns shipped with the paper, per space: file under trainfree/data, the
#: column naming a record, the columns that are trained results (not inputs), and whether trainfree
#: reproduces the columns under the space's default settings (docs/results-rnn.md: agreement 1.0000;
#: the BERT columns used other inputs, docs/results-bert.md)
PUBLISHED = {
    "nasbench-nlp": ("nasbench_nlp/paper_rnn_metrics.csv.gz", "log name", ("loss", "perplexity", "bits per word"),
                     True),
    "nasbench-bert": ("nasbench_bert/paper_bert_metrics.csv.gz", "ID", ("GLUE Score",), False),
}
PUBLISHED_PREFIX = "published:"


@dataclass(frozen=True)
class CrossValidation:
    """The nested cross-validated figures: held-out Kendall tau per outer fold, their mean and standard
    deviation, and the tau of the pooled out-of-fold predictions (mean over repeats)."""

    fold_taus: list[float]
    mean_tau: float
    sd_tau: float
    pooled_tau: float
    folds: int
    inner_folds: int
    repeats: int
    seed: int
    n: int
    groups: int
    fold_hyperparameters: list[dict]
    target_transform: str
    #: the first repeat's out-of-fold predictions, one per row (not saved in the model file)
    predictions: tuple = ()

    def as_dict(self) -> dict:
        return {"fold_taus": self.fold_taus, "mean_tau": self.mean_tau, "sd_tau": self.sd_tau,
                "pooled_tau": self.pooled_tau, "outer_folds": self.folds, "inner_folds": self.inner_folds,
                "repeats": self.repeats, "seed": self.seed, "n": self.n, "groups": self.groups,
                "grouped_by": "architecture id", "fold_hyperparameters": self.fold_hyperparameters,
                "target_transform": self.target_transform}


@dataclass(frozen=True)
class Combination:
    model: CombinationModel
    cv: CrossValidation
    dropped: int  # benchmark records left out for a NaN (or missing) input
    records: tuple = ()  # the records used, in the order of cv.predictions
    #: each input alone on the same outer folds: its held-out fold taus (``alone_taus``), what the
    #: combination has to beat out of sample too
    alone: dict = field(default_factory=dict)

    def summary(self) -> list[str]:
        m, cv = self.model, self.cv
        direction = "lower" if m.target_lower_is_better else "higher"
        grid = ", ".join(map(str, ALPHAS)) if m.learner == "linear" else f"{len(BOOSTED_GRID)} settings"
        return [
            f"combine {m.learner} on {m.benchmark} (target {m.target}, {direction} is better), inputs from {m.source}: "
            f"{len(m.features)} inputs ({', '.join(m.features)})",
            f"{cv.n} architectures ({cv.groups} distinct), {self.dropped} left out for a missing or NaN input; "
            f"settings fingerprint {m.fingerprint}",
            f"nested cross-validation: {cv.folds} outer folds x {cv.repeats} repeat(s), grouped by architecture id, "
            f"seed {cv.seed}; {cv.inner_folds} inner folds choose "
            f"{'the ridge penalty from ' if m.learner == 'linear' else 'among '}{grid}; target as {cv.target_transform}",
            f"held-out Kendall tau over outer folds: {cv.mean_tau:.3f} +- {cv.sd_tau:.3f} (sd; folds: "
            f"{', '.join(f'{t:.3f}' for t in cv.fold_taus)})",
            f"pooled out-of-fold Kendall tau: {cv.pooled_tau:.3f}",
            *self._alone_lines(),
            "(cross-validated figures only: a tau of the saved model on the rows it was fitted on is not a result, "
            "and `correlate` refuses one)",
        ]


    def _alone_lines(self) -> list[str]:
        if not self.alone:
            return []
        means = {k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for k, v in self.alone.items()}
        ranked = sorted(means, key=lambda k: -means[k] if math.isfinite(means[k]) else math.inf)
        best = ranked[0]
        diffs = np.asarray(self.cv.fold_taus) - np.asarray(self.alone[best])
        wins = int((diffs > 0).sum())
        return ["each input alone on the same folds: " + ", ".join(f"{k} {means[k]:.3f}" for k in ranked),
                f"combination minus the best input alone ({best}): {np.nanmean(diffs):+.3f} mean over folds, "
                f"higher on {wins} of {len(diffs)}"]


# -- folds -----------------------------------------------------------------------------------------
def grouped_folds(groups: Sequence, k: int, seed) -> np.ndarray:
    """A fold index in ``range(k)`` per row: whole groups go to one fold, in a seeded random order, each
    to the fold with the fewest rows so far (folds balance in rows, not only in groups)."""
    uniq, inverse, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    if k < 2:
        raise TrainfreeError(f"cross-validation needs at least 2 folds, got {k}")
    if len(uniq) < k:
        raise TrainfreeError(f"{k} folds need at least {k} distinct architectures, got {len(uniq)}")
    sizes = np.zeros(k)
    fold_of = np.empty(len(uniq), dtype=int)
    for g in np.random.default_rng(seed).permutation(len(uniq)):
        f = int(np.argmin(sizes))
        fold_of[g] = f
        sizes[f] += counts[g]
    return fold_of[inverse]


# -- learners --------------------------------------------------------------------------------------
def _ridge(ranks: np.ndarray, y: np.ndarray, alpha: float) -> dict:
    """argmin mean((y - b - ranks w)^2) + alpha |w|^2, closed form (least squares when alpha is 0)."""
    mean_x, mean_y = ranks.mean(axis=0), y.mean()
    xc, yc = ranks - mean_x, y - mean_y
    if alpha > 0:
        coef = np.linalg.solve(xc.T @ xc / len(y) + alpha * np.eye(ranks.shape[1]), xc.T @ yc / len(y))
    else:
        coef = np.linalg.lstsq(xc.T @ xc, xc.T @ yc, rcond=None)[0]  # the normal equations (min-norm if singular)
    return {"intercept": float(mean_y - mean_x @ coef), "coef": [float(c) for c in coef]}


def _sklearn():
    try:
        import sklearn
        from sklearn.ensemble import HistGradientBoostingRegressor
    except ImportError:
        raise MissingExtra("the boosted learner needs scikit-learn: pip install 'trainfree[combine]'") from None
    return sklearn, HistGradientBoostingRegressor


def _boosted(ranks: np.ndarray, y: np.ndarray, hp: dict, seed: int) -> dict:
    """A HistGradientBoostingRegressor, exported node for node (see trainfree.metrics.combo_model)."""
    from threadpoolctl import threadpool_limits

    sklearn, regressor = _sklearn()
    with threadpool_limits(1):  # OpenMP threads gain little on a few thousand rows and stall a busy machine
        est = regressor(loss="squared_error", early_stopping=False, random_state=seed, **hp).fit(ranks, y)
    trees = []
    for per_iteration in est._predictors:  # one tree per iteration for a single-output regression
        nodes = per_iteration[0].nodes
        trees.append({"feature": nodes["feature_idx"].tolist(), "threshold": nodes["num_threshold"].tolist(),
                      "missing_left": nodes["missing_go_to_left"].astype(bool).tolist(),
                      "left": nodes["left"].tolist(), "right": nodes["right"].tolist(),
                      "leaf": nodes["is_leaf"].astype(bool).tolist(), "value": nodes["value"].tolist()})
    params = {"baseline": float(np.ravel(est._baseline_prediction)[0]), "trees": trees}
    # the export reads private attributes: check it predicts as scikit-learn does, or say so
    if not np.allclose(predict_params("boosted", params, ranks), est.predict(ranks), rtol=1e-9, atol=1e-12):
        raise TrainfreeError(f"scikit-learn {sklearn.__version__}: its boosted trees are laid out differently "
                             f"from what trainfree exports; use the linear learner or scikit-learn 1.3-1.9")
    return params


def grid(learner: str) -> list[dict]:
    if learner == "linear":
        return [{"alpha": a} for a in ALPHAS]
    if learner == "boosted":
        _sklearn()  # a missing extra fails before any work
        return [dict(hp) for hp in BOOSTED_GRID]
    raise TrainfreeError(f"unknown learner {learner!r} (choose from {', '.join(LEARNERS)})")


def fit_rows(learner: str, x: np.ndarray, y: np.ndarray, hp: dict, seed: int, raw_target: bool = False):
    """(transforms, params) fitted on these rows only: their rank transforms, then the learner."""
    transforms = [RankTransform.fit(x[:, j]) for j in range(x.shape[1])]
    ranks = np.column_stack([t(x[:, j]) for j, t in enumerate(transforms)])
    target = y if raw_target else fractional_ranks(y)
    params = _ridge(ranks, target, hp["alpha"]) if learner == "linear" else _boosted(ranks, target, hp, seed)
    return transforms, params


def predict_rows(learner: str, transforms, params, x: np.ndarray) -> np.ndarray:
    ranks = np.column_stack([t(x[:, j]) for j, t in enumerate(transforms)])
    return predict_params(learner, params, ranks)


def _tau(pred, y) -> float:
    return correlate_values(pred, y, higher_is_better=True, target_lower_is_better=False).kendall_tau


def _held_out(learner, x, y, folds, hp, seed, raw_target) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold predictions and each fold's held-out tau under one hyper-parameter setting."""
    pred = np.full(len(y), math.nan)
    taus = []
    for f in range(folds.max() + 1):
        test = folds == f
        transforms, params = fit_rows(learner, x[~test], y[~test], hp, seed, raw_target)
        pred[test] = predict_rows(learner, transforms, params, x[test])
        taus.append(_tau(pred[test], y[test]))
    return pred, taus


def choose(learner: str, x, y, groups, inner_folds: int, seed, raw_target: bool = False) -> dict:
    """The grid setting with the best mean held-out tau over grouped inner folds of these rows (a tie
    keeps the earlier, simpler setting)."""
    folds = grouped_folds(groups, inner_folds, seed)
    best, best_tau = None, -math.inf
    for hp in grid(learner):
        _, taus = _held_out(learner, x, y, folds, hp, 0, raw_target)
        score = float(np.nanmean(taus)) if np.isfinite(taus).any() else -math.inf
        if best is None or score > best_tau:
            best, best_tau = hp, score
    return best


def alone_taus(x, y, groups, folds: int = 5, seed: int = 0, repeats: int = 1) -> list[float]:
    """One input's held-out Kendall tau on each outer fold of :func:`nested_cv` (same seeds, same folds),
    in the sign its tau has on that fold's training rows: the input used as a metric, its direction learned
    out of sample."""
    x, y, groups = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(groups)
    taus = []
    for r in range(repeats):
        outer = grouped_folds(groups, folds, [seed, r])
        for f in range(folds):
            test = outer == f
            sign = 1.0 if _tau(x[~test], y[~test]) >= 0 else -1.0
            taus.append(sign * _tau(x[test], y[test]))
    return taus


def nested_cv(learner: str, x, y, groups, folds: int = 5, inner_folds: int = 3, seed: int = 0, repeats: int = 1,
              raw_target: bool = False) -> CrossValidation:
    """Outer grouped folds for the figures; inside each outer training fold, grouped inner folds choose the
    hyper-parameters, then the learner is refitted on the whole outer training fold and predicts the
    held-out fold. ``x`` (rows x inputs, no NaN) and ``y`` (oriented: higher = better) are raw values."""
    x, y, groups = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(groups)
    if repeats < 1:
        raise TrainfreeError(f"repeats must be at least 1, got {repeats}")
    fold_taus, pooled, chosen, first = [], [], [], None
    for r in range(repeats):
        outer = grouped_folds(groups, folds, [seed, r])
        pred = np.full(len(y), math.nan)
        for f in range(folds):
            test = outer == f
            train = ~test
            hp = choose(learner, x[train], y[train], groups[train], inner_folds, [seed, r, f], raw_target)
            transforms, params = fit_rows(learner, x[train], y[train], hp, seed, raw_target)
            pred[test] = predict_rows(learner, transforms, params, x[test])
            fold_taus.append(_tau(pred[test], y[test]))
            chosen.append(hp)
        pooled.append(_tau(pred, y))
        first = pred if first is None else first
    taus = np.asarray(fold_taus)
    finite = taus[np.isfinite(taus)]  # a fold whose predictions are constant has no tau (kept as NaN)
    return CrossValidation([float(t) for t in taus], float(finite.mean()) if len(finite) else math.nan,
                           float(finite.std(ddof=1)) if len(finite) > 1 else math.nan, float(np.mean(pooled)),
                           folds, inner_folds, repeats, seed, len(y), len(np.unique(groups)), chosen,
                           "raw values" if raw_target else "fractional ranks", tuple(float(p) for p in first))


# -- inputs ----------------------------------------------------------------------------------------
def published_entries(bench, path: str | Path | None = None):
    """The paper's published metric columns for the benchmark's records as score entries: a column that a
    trainfree metric reproduces goes under that metric's name (in its sign), the others under
    ``published:COLUMN``. Their fingerprint is the space's default-settings one where trainfree reproduces
    the columns (NAS-Bench-NLP), else ``published``."""
    from trainfree.benchmarks.published import load_published
    from trainfree.metrics import METRICS
    from trainfree.records import Score
    from trainfree.spaces import get_space

    if bench.space not in PUBLISHED:
        raise TrainfreeError(f"no published metric columns are shipped for space {bench.space!r} (they are for "
                             f"{', '.join(PUBLISHED)}); pass --scores or --store")
    file, key, targets, reproduced = PUBLISHED[bench.space]
    table = load_published(path or file, key=key)
    by_column = {m.name: m for m in METRICS if m.published_column and bench.space in m.spaces}
    by_column = {m.published_column: m for m in by_column.values()}
    space = get_space(bench.space)
    defaults = space.default_settings().with_(corpus=bench.corpus) if bench.corpus else space.default_settings()
    fingerprint = space.fingerprint(defaults) if reproduced and path is None else "published"
    entries = []
    for r in bench.records:
        row = table.get(r.name)
        if row is None:
            continue
        for column, value in row.items():
            if column in targets:
                continue
            spec = by_column.get(column)
            name = spec.name if spec else PUBLISHED_PREFIX + column
            value = spec.published_sign * value if spec else value
            entries.append(Score(space.arch_id(r.arch), name, value, Status.of(value), name=r.name,
                                 fingerprint=fingerprint))
    if not entries:
        raise TrainfreeError(f"no published row matches a record of {bench.name} by {key!r}")
    return entries


def feature_table(bench, scores, metrics: Sequence[str] | None = None):
    """(metric names, records used, rows x metrics values, dropped) from score entries: a record is used
    when every chosen metric has a value for it that is not NaN (failed scores count as NaN)."""
    from trainfree.evaluation.benchmark_correlation import check_scores

    names = set(bench.targets())
    check_scores(scores, names)
    values: dict[str, dict[str, float]] = {}
    for s in scores:
        if s.name in names:
            values.setdefault(s.metric, {})[s.name] = s.value if s.status != Status.FAILED else math.nan
    available = [m for m in values if not is_combo(m)]
    if metrics is None:
        metrics = sorted(available)
    missing = [m for m in metrics if m not in values]
    if missing:
        raise TrainfreeError(f"no scores of {', '.join(repr(m) for m in missing)} for {bench.name}; the scores "
                             f"hold {', '.join(sorted(available)) or 'nothing'}")
    if len(set(metrics)) != len(metrics):
        raise TrainfreeError(f"a metric is named twice in {', '.join(metrics)}")
    table = np.array([[values[m].get(r.name, math.nan) for m in metrics] for r in bench.records], dtype=np.float64)
    keep = ~np.isnan(table).any(axis=1)
    used = [r for r, k in zip(bench.records, keep) if k]
    return list(metrics), used, table[keep], int((~keep).sum())


def _version(metric: str) -> str:
    """The version a model records for an input: a published column's is ``published``; a metric this
    trainfree does not register (scores from a plug-in or another branch) is ``unregistered``, and such a
    model fits and reports but cannot be used as ``combo:PATH`` until the metric is registered."""
    from trainfree.errors import UnknownName
    from trainfree.metrics import get_metric

    if metric.startswith(PUBLISHED_PREFIX):
        return "published"
    try:
        return get_metric(metric).version
    except UnknownName:
        return "unregistered"


def fit_combination(bench, scores, metrics: Sequence[str] | None = None, learner: str = "linear",
                    folds: int = 5, inner_folds: int = 3, seed: int = 0, repeats: int = 1,
                    raw_target: bool = False, source: str = "", settings: dict | None = None) -> Combination:
    """Nested cross-validated figures and the model refitted on every usable record (see the module)."""
    from trainfree import __version__
    from trainfree.spaces import get_space

    grid(learner)  # an unknown learner or a missing extra fails first
    features, records, x, dropped = feature_table(bench, scores, metrics)
    if len(records) < 2 * folds:
        raise TrainfreeError(f"{len(records)} architectures with every input are too few for {folds} folds")
    space = get_space(bench.space)
    groups = np.array([space.arch_id(r.arch) for r in records])
    y = orient(np.array([r.target for r in records], dtype=float), not bench.lower_is_better)
    cv = nested_cv(learner, x, y, groups, folds, inner_folds, seed, repeats, raw_target)
    # the saved model: hyper-parameters chosen by the same inner procedure on every row (its own seed stream)
    hp = choose(learner, x, y, groups, inner_folds, [seed, 10 ** 6], raw_target)
    transforms, params = fit_rows(learner, x, y, hp, seed, raw_target)
    fingerprints = {s.fingerprint for s in scores if s.name in {r.name for r in records}}
    versions = {m: _version(m) for m in features}
    sklearn_version = _sklearn()[0].__version__ if learner == "boosted" else None
    model = CombinationModel(
        learner, features, versions, transforms, params, bench.space, bench.name, bench.target,
        bench.lower_is_better, fingerprints.pop() if len(fingerprints) == 1 else "", settings,
        {**hp, "seed": seed, "raw_target": raw_target}, cv.as_dict(),
        sorted({str(g) for g in groups}), sorted(run_hash(g, r.target) for g, r in zip(groups, records)),
        __version__, sklearn_version, source)
    alone = {} if len(features) < 2 else {
        name: alone_taus(x[:, j], y, groups, folds, seed, repeats) for j, name in enumerate(features)}
    return Combination(model, cv, dropped, tuple(records), alone)
