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


def load_model(path: Path) -> CombinationModel:
    """Read a model file, refusing (with the file and field named) anything but this format's version."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainfreeError(f"{path}: no such combination model file (write one with `trainfree combine "
                             f"--output`)") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise TrainfreeError(f"{path}: not a combination model file ({err})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise TrainfreeError(f"{path}: not a combination model file (no \"format\": \"{FORMAT}\")")
    if raw.get("format_version") != FORMAT_VERSION:
        raise TrainfreeError(f"{path}: combination model format version {raw.get('format_version')!r}; this "
                             f"trainfree reads version {FORMAT_VERSION}")
    try:
        features = raw["features"]
        learner = raw["learner"]
        if learner not in LEARNERS:
            raise ValueError(f"unknown learner {learner!r}")
        model = CombinationModel(
            learner=learner, features=[f["metric"] for f in features],
            versions={f["metric"]: str(f["version"]) for f in features},
            transforms=[RankTransform(f["knots"]) for f in features], params=raw["params"],
            space=raw["space"], benchmark=raw["benchmark"], target=raw["target"],
            target_lower_is_better=bool(raw["target_lower_is_better"]), fingerprint=raw["fingerprint"],
            settings=raw.get("settings"), hyperparameters=raw.get("hyperparameters", {}), cv=raw.get("cv", {}),
            fitted_arch_ids=list(raw.get("fitted_arch_ids", [])), fitted_runs=list(raw.get("fitted_runs", [])),
            trainfree_version=raw.get("trainfree_version", ""), sklearn_version=raw.get("sklearn_version"),
            source=raw.get("source", ""))
    except (KeyError, TypeError, ValueError) as err:
        raise TrainfreeError(f"{path}: malformed combination model ({type(err).__name__}: {err})") from None
    if not model.features or any(len(t.knots) == 0 for t in model.transforms):
        raise TrainfreeError(f"{path}: malformed combination model (no inputs, or an input without knots)")
    return model
