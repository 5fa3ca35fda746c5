"""A fitted combination of metric values (made by ``trainfree combine``), as one small versioned JSON file.

The file holds everything needed to apply the model with numpy alone (no scikit-learn, no pickle):

- ``features``: each input metric's name, version and rank transform (``knots``, see RankTransform);
- ``learner`` and ``params``: ``linear`` (``intercept``, ``coef``: prediction = intercept + ranks . coef)
  or ``boosted`` (``baseline`` plus the sum of ``trees``; each tree is parallel node lists ``feature``,
  ``threshold``, ``missing_left``, ``left``, ``right``, ``leaf``, ``value``, root at node 0: a row goes
  left where its rank is <= threshold, leaves add ``value``; scikit-learn's HistGradientBoostingRegressor
  trees exported node for node, with the learning rate already in the leaf values);
- where it came from: ``space``, ``benchmark``, ``target``, ``fingerprint`` (the settings the inputs were
  computed under), ``trainfree_version``, ``sklearn_version``, ``hyperparameters`` and the nested
  cross-validated figures (``cv``), which are the only figures reported for the data it was fitted on;
- ``fitted_arch_ids`` and ``fitted_runs`` (short hashes of architecture id and trained result), so
  that a tau on the fitting data can be refused (:func:`trainfree.metrics.combo.refuse_in_sample`).

The prediction is a score, higher = better-trained (the target is oriented before fitting).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from trainfree.errors import TrainfreeError

#: the shipped combinations: name -> what it combines (each fitted by ``trainfree combine`` on the shipped
#: NAS-Bench-NLP PTB runs; the command and its cross-validated figures are in the file and docs/signals.md)
BUILTIN = {
    "rnn_forward_combo": "boosted trees over hidden covariance (layer 1) and the cell graph's features",
    "rnn_paper_combo": "boosted trees over the 11 of the paper's 12 RNN metrics that trainfree reproduces, and the "
                       "cell graph's features",
}

FORMAT = "trainfree-combo"
FORMAT_VERSION = 1
#: a rank transform keeps at most this many order statistics of its fitting column
MAX_KNOTS = 1001
LEARNERS = ("linear", "boosted")


class RankTransform:
    """A value -> its mid-rank share among the fitting rows' values, ((# below) + (# at most)) / (2 n),
    in [0, 1]; ties get their mean rank and NaN stays NaN (inf ranks as the largest value). Kept as at
    most MAX_KNOTS evenly spaced order statistics of the fitting column (all of them when fewer), so
    that the saved file stays small; the transform is the same one during cross-validation and after."""

    def __init__(self, knots: Sequence[float]):
        self.knots = np.asarray(knots, dtype=np.float64)

    @classmethod
    def fit(cls, column) -> "RankTransform":
        values = np.sort(np.asarray(column, dtype=np.float64))
        if np.isnan(values).any():
            raise ValueError("a rank transform is fitted on values without NaN")
        if len(values) > MAX_KNOTS:
            values = values[np.round(np.linspace(0, len(values) - 1, MAX_KNOTS)).astype(int)]
        return cls(values)

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        below = np.searchsorted(self.knots, x, side="left")
        at_most = np.searchsorted(self.knots, x, side="right")
        out = (below + at_most) / (2.0 * len(self.knots))
        return np.where(np.isnan(x), np.nan, out)


def fractional_ranks(y) -> np.ndarray:
    """Mid-ranks of ``y`` divided by its length (the target transform; computed on the fitting rows)."""
    from scipy.stats import rankdata

    return rankdata(np.asarray(y, dtype=np.float64)) / len(y)


def predict_params(learner: str, params: dict, ranks: np.ndarray) -> np.ndarray:
    """The learner's output on rank-transformed rows (no NaN)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if learner == "linear":
        return params["intercept"] + ranks @ np.asarray(params["coef"], dtype=np.float64)
    if learner == "boosted":
        return params["baseline"] + _tree_values(params["trees"], ranks).sum(axis=1)
    raise TrainfreeError(f"unknown learner {learner!r} (choose from {', '.join(LEARNERS)})")


def _tree_values(trees: list[dict], ranks: np.ndarray) -> np.ndarray:
    """Rows x trees: the leaf value each tree gives each row. The trees are padded to one node count
    and walked together, one level per step (a padding node is a leaf worth 0)."""
    size = max(len(t["value"]) for t in trees)

    def padded(key, fill, dtype):
        out = np.full((len(trees), size), fill, dtype=dtype)
        for i, t in enumerate(trees):
            out[i, :len(t[key])] = t[key]
        return out

    feature, threshold = padded("feature", 0, int), padded("threshold", 0.0, np.float64)
    left, right, leaf = padded("left", 0, int), padded("right", 0, int), padded("leaf", True, bool)
    missing_left, value = padded("missing_left", False, bool), padded("value", 0.0, np.float64)
    tree = np.arange(len(trees))[None, :]
    row = np.arange(len(ranks))[:, None]
    node = np.zeros((len(ranks), len(trees)), dtype=int)
    active = ~leaf[tree, node]
    while active.any():
        x = ranks[row, feature[tree, node]]
        go_left = np.where(np.isnan(x), missing_left[tree, node], x <= threshold[tree, node])
        node = np.where(active, np.where(go_left, left[tree, node], right[tree, node]), node)
        active = ~leaf[tree, node]
    return value[tree, node]


def run_hash(arch_id: str, target: float) -> str:
    """A short hash of one trained run: the architecture and its trained result."""
    return hashlib.sha256(f"{arch_id}|{float(target)!r}".encode()).hexdigest()[:16]


@dataclass
class CombinationModel:
    learner: str
    features: list[str]
    versions: dict[str, str]
    transforms: list[RankTransform]
    params: dict
    space: str
    benchmark: str
    target: str
    target_lower_is_better: bool
    fingerprint: str
    settings: dict | None = None
    hyperparameters: dict = field(default_factory=dict)
    cv: dict = field(default_factory=dict)
    fitted_arch_ids: list[str] = field(default_factory=list)
    fitted_runs: list[str] = field(default_factory=list)
    trainfree_version: str = ""
    sklearn_version: str | None = None
    source: str = ""  # where the inputs came from (a scores file, a store, the published columns)

    def predict(self, values) -> np.ndarray:
        """The combined score of each row of raw metric values (columns in ``features`` order); NaN
        where any input is NaN."""
        values = np.atleast_2d(np.asarray(values, dtype=np.float64))
        if values.shape[1] != len(self.features):
            raise TrainfreeError(f"expected {len(self.features)} inputs ({', '.join(self.features)}), "
                                 f"got {values.shape[1]}")
        ranks = np.column_stack([t(values[:, j]) for j, t in enumerate(self.transforms)])
        ok = ~np.isnan(ranks).any(axis=1)
        out = np.full(len(values), math.nan)
        if ok.any():
            out[ok] = predict_params(self.learner, self.params, ranks[ok])
        return out

    def as_json(self) -> dict:
        d = asdict(self)
        d.pop("transforms")
        d.pop("versions")
        d["features"] = [{"metric": m, "version": self.versions[m], "knots": t.knots.tolist()}
                         for m, t in zip(self.features, self.transforms)]
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **d}

    def save(self, path: Path) -> None:
        from trainfree.files import atomic_write

        text = json.dumps(self.as_json(), separators=(",", ":"))
        atomic_write(Path(path), lambda fh: fh.write(text + "\n"))


def digest(path: Path) -> str:
    """The first 12 hex digits of the file's SHA-256: the version of a ``combo:PATH`` metric."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


#: bounds a model file must keep (a fitted model is far inside them: 1,001 knots, a few hundred trees)
MAX_FILE_BYTES = 64 << 20
MAX_TREES = 100_000
MAX_NODES = 5_000_000  # over all trees


class _Invalid(Exception):
    """A fault in a model file: ``field`` and what is wrong with it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")


def _get(obj: dict, key: str, at: str):
    if not isinstance(obj, dict):
        raise _Invalid(at, f"expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise _Invalid(f"{at}.{key}" if at else key, "missing")
    return obj[key]


def _string(value, at: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(at, f"expected a string, got {type(value).__name__}")
    return value


def _number(value, at: str) -> float:
    """A finite JSON number (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(at, f"expected a number, got {type(value).__name__}")
    try:
        x = float(value)
    except OverflowError:
        raise _Invalid(at, "a number too large for a float") from None
    if not math.isfinite(x):
        raise _Invalid(at, f"expected a finite number, got {x}")
    return x


def _numbers(value, at: str, length: int | None = None) -> list[float]:
    """A flat list of finite numbers (of ``length`` when given)."""
    if not isinstance(value, list):
        raise _Invalid(at, f"expected a list of numbers, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise _Invalid(at, f"expected {length} numbers, got {len(value)}")
    return [_number(v, f"{at}[{i}]") for i, v in enumerate(value)]


def _index_list(value, at: str, n: int, low: int, high: int) -> list[int]:
    if not isinstance(value, list) or len(value) != n:
        raise _Invalid(at, f"expected a list of {n} integers, got {type(value).__name__}"
                       + (f" of {len(value)}" if isinstance(value, list) else ""))
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v < high:
            raise _Invalid(f"{at}[{i}]", f"expected an integer from {low} to {high - 1}, got {str(v)[:40]}")
    return value


def _bool_list(value, at: str, n: int) -> list[bool]:
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, bool) for v in value):
        raise _Invalid(at, f"expected a list of {n} booleans")
    return value


def _check_tree(tree, at: str, n_features: int) -> int:
    """A tree's node lists: equal lengths, indices in range, every child after its parent (so the walk
    from the root ends, and no node points to itself or back up), finite thresholds and values."""
    if not isinstance(tree, dict):
        raise _Invalid(at, f"expected an object, got {type(tree).__name__}")
    value = _get(tree, "value", at)
    if not isinstance(value, list) or not value:
        raise _Invalid(f"{at}.value", "expected a non-empty list of numbers")
    n = len(value)
    _numbers(value, f"{at}.value", n)
    leaf = _bool_list(_get(tree, "leaf", at), f"{at}.leaf", n)
    _bool_list(_get(tree, "missing_left", at), f"{at}.missing_left", n)
    feature = _index_list(_get(tree, "feature", at), f"{at}.feature", n, 0, n_features)
    left = _index_list(_get(tree, "left", at), f"{at}.left", n, 0, n)
    right = _index_list(_get(tree, "right", at), f"{at}.right", n, 0, n)
    threshold = _get(tree, "threshold", at)
    if not isinstance(threshold, list) or len(threshold) != n:
        raise _Invalid(f"{at}.threshold", f"expected a list of {n} numbers")
    for i in range(n):
        if leaf[i]:
            continue
        _number(threshold[i], f"{at}.threshold[{i}]")
        for side, child in (("left", left[i]), ("right", right[i])):
            if child <= i:
                raise _Invalid(f"{at}.{side}[{i}]", f"node {i} points to node {child}: a child comes after its "
                                                    f"parent (the tree would loop or point back)")
    del feature
    return n


def _validate(raw, path: Path) -> CombinationModel:
    """Every field of a decoded model file, or one TrainfreeError naming the file and the field."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise TrainfreeError(f"{path}: not a combination model file (no \"format\": \"{FORMAT}\")")
    if raw.get("format_version") != FORMAT_VERSION:
        raise TrainfreeError(f"{path}: combination model format version {str(raw.get('format_version'))[:40]}; this "
                             f"trainfree reads version {FORMAT_VERSION}")
    try:
        learner = _string(_get(raw, "learner", ""), "learner")
        if learner not in LEARNERS:
            raise _Invalid("learner", f"unknown learner {learner[:40]!r} (choose from {', '.join(LEARNERS)})")
        features = _get(raw, "features", "")
        if not isinstance(features, list) or not features:
            raise _Invalid("features", "expected a non-empty list of inputs")
        names, versions, transforms = [], {}, []
        for i, f in enumerate(features):
            at = f"features[{i}]"
            name = _string(_get(f, "metric", at), f"{at}.metric")
            if name.startswith("combo:") or name in BUILTIN:
                raise _Invalid(f"{at}.metric", f"{name[:80]!r}: a combination's input cannot be a combination")
            if name in versions:
                raise _Invalid(f"{at}.metric", f"{name[:80]!r} is an input twice")
            version = _get(f, "version", at)
            if isinstance(version, bool) or not isinstance(version, (str, int)):
                raise _Invalid(f"{at}.version", f"expected a string, got {type(version).__name__}")
            knots = _get(f, "knots", at)
            if not isinstance(knots, list) or not 1 <= len(knots) <= MAX_KNOTS:
                raise _Invalid(f"{at}.knots", f"expected a list of 1 to {MAX_KNOTS} numbers")
            values = _numbers(knots, f"{at}.knots")
            if any(b < a for a, b in zip(values, values[1:])):
                raise _Invalid(f"{at}.knots", "the knots must be sorted (ascending)")
            names.append(name)
            versions[name] = str(version)
            transforms.append(RankTransform(values))
        params = _get(raw, "params", "")
        if not isinstance(params, dict):
            raise _Invalid("params", f"expected an object, got {type(params).__name__}")
        if learner == "linear":
            _number(_get(params, "intercept", "params"), "params.intercept")
            _numbers(_get(params, "coef", "params"), "params.coef", len(names))
        else:
            _number(_get(params, "baseline", "params"), "params.baseline")
            trees = _get(params, "trees", "params")
            if not isinstance(trees, list) or not 1 <= len(trees) <= MAX_TREES:
                raise _Invalid("params.trees", f"expected a list of 1 to {MAX_TREES} trees")
            total = 0
            for t, tree in enumerate(trees):
                total += _check_tree(tree, f"params.trees[{t}]", len(names))
                if total > MAX_NODES:
                    raise _Invalid("params.trees", f"more than {MAX_NODES} nodes in all")
        strings = {k: _string(_get(raw, k, ""), k) for k in ("space", "benchmark", "target", "fingerprint")}
        lower = _get(raw, "target_lower_is_better", "")
        if not isinstance(lower, bool):
            raise _Invalid("target_lower_is_better", f"expected true or false, got {type(lower).__name__}")
        optional = {}
        for key, kind in (("settings", (dict, type(None))), ("hyperparameters", dict), ("cv", dict),
                          ("fitted_arch_ids", list), ("fitted_runs", list), ("trainfree_version", str),
                          ("sklearn_version", (str, type(None))), ("source", str)):
            if key in raw:
                if not isinstance(raw[key], kind):
                    raise _Invalid(key, f"expected {getattr(kind, '__name__', 'an object or null')}, got "
                                        f"{type(raw[key]).__name__}")
                optional[key] = raw[key]
        for key in ("fitted_arch_ids", "fitted_runs"):
            if not all(isinstance(x, str) for x in optional.get(key, [])):
                raise _Invalid(key, "expected a list of strings")
    except _Invalid as err:
        raise TrainfreeError(f"{path}: malformed combination model: {err}") from None
    return CombinationModel(learner=learner, features=names, versions=versions, transforms=transforms,
                            params=params, target_lower_is_better=lower, **strings, **optional)


def load_model(path: Path) -> CombinationModel:
    """Read a model file, refusing (with the file and field named) anything but a complete, valid model of
    this format's version: indices in range, trees that end, finite numbers, sorted knots."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise TrainfreeError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB: not a combination model file")
        if not path.is_file():
            raise TrainfreeError(f"{path}: not a regular file")
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainfreeError(f"{path}: no such combination model file (write one with `trainfree combine "
                             f"--output`)") from None
    except RecursionError:
        raise TrainfreeError(f"{path}: not a combination model file (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise TrainfreeError(f"{path}: not a combination model file ({str(err)[:200]})") from None
    return _validate(raw, path)
