"""``combo:PATH``: a combination model saved by ``trainfree combine`` used as a metric; and the fitted
combinations trainfree ships, by name (:data:`BUILTIN`, files in ``trainfree/data/combos/``).

Scoring ``combo:PATH`` scores its component metrics like any others (a store's values are reused,
missing ones computed and stored), then applies the model to them (:func:`trainfree.runner`). Asked
for on a single probe (a search), it computes the components on that probe. Either way the model's
space, settings fingerprint and component versions must match, or it is refused; ``correlate``
refuses a combination's tau on the runs it was fitted on (:func:`refuse_in_sample`).
"""
from __future__ import annotations

import os
from pathlib import Path

from trainfree.errors import TrainfreeError
from trainfree.metrics.base import RESOLVERS, Metric, get_metric
from trainfree.metrics.combo_model import BUILTIN

PREFIX = "combo:"

_cache: dict[tuple, tuple] = {}


def is_combo(name: str) -> bool:
    return isinstance(name, str) and (name.startswith(PREFIX) or name in BUILTIN)


def model_path(name: str) -> Path:
    """The model file ``name`` stands for: a shipped one for a built-in name, else PATH of ``combo:PATH``."""
    if name in BUILTIN:
        from trainfree.data import data_path

        return Path(str(data_path("combos", f"{name}.json")))
    return Path(name[len(PREFIX):])


def load(name: str):
    """(model, version) for ``combo:PATH`` or a built-in name; the version is the file's content hash.
    Cached per file state."""
    from trainfree.metrics.combo_model import digest, load_model

    path = model_path(name)
    if not str(path):
        raise TrainfreeError(f"metric {name!r}: give the model file, as combo:PATH")
    try:
        st = os.stat(path)
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is None or key not in _cache:
        try:
            model = load_model(path)
        except TrainfreeError as err:
            raise TrainfreeError(f"metric {name!r}: {err}") from None
        loaded = (model, digest(path))
        if key is None:
            return loaded
        _cache[key] = loaded
    return _cache[key]


def components(name: str) -> list:
    """The model's component metrics (registered metrics at the versions the model was fitted with)."""
    model, _ = load(name)
    out = []
    for feature in model.features:
        if feature.startswith("published:"):
            raise TrainfreeError(f"metric {name!r}: its input {feature!r} is a published column no trainfree metric "
                                 f"computes, so the model applies to no new architecture; refit it without that "
                                 f"input (`trainfree combine --metrics ...`)")
        spec = get_metric(feature)
        if spec.version != model.versions[feature]:
            raise TrainfreeError(f"metric {name!r}: it was fitted on {feature} version {model.versions[feature]}, "
                                 f"but this trainfree computes version {spec.version}; refit it")
        out.append(spec)
    return out


def check_model_fits(name: str, space_name: str, fingerprint: str) -> None:
    """Refuse another space or other settings than the model's inputs were computed under."""
    model, _ = load(name)
    if space_name != model.space:
        raise TrainfreeError(f"metric {name!r} combines {model.space} metrics (fitted on {model.benchmark}); it does "
                             f"not apply to space {space_name!r}")
    if fingerprint != model.fingerprint:
        raise TrainfreeError(f"metric {name!r} was fitted on inputs under settings fingerprint "
                             f"{model.fingerprint or '(unknown)'}, not {fingerprint}: score with the settings it was "
                             f"fitted with ({model.settings or 'see the scores it was fitted on'})")


def combo_metric(name: str):
    """The registered-metric view of ``combo:PATH`` (higher = predicted better-trained)."""
    model, version = load(name)
    parts = components(name)

    def fn(probe) -> float:
        check_model_fits(name, probe.space.name, probe.space.fingerprint(probe.settings))
        return float(model.predict([[spec(probe) for spec in parts]])[0])

    return Metric(name, fn, True, frozenset().union(*(m.requires for m in parts)), version,
                  f"{model.learner} combination of {', '.join(model.features)} fitted on {model.benchmark}",
                  deterministic=all(m.deterministic for m in parts), backward=any(m.backward for m in parts))


RESOLVERS[PREFIX] = combo_metric
for _name in BUILTIN:
    RESOLVERS[_name] = combo_metric


def apply(name: str, values) -> "list[float]":
    """The model applied to rows of component values (in the model's feature order)."""
    model, _ = load(name)
    return [float(v) for v in model.predict(values)]


def refuse_in_sample(name: str, bench, names) -> None:
    """Refuse a combination's tau on runs it was fitted on: the same benchmark, or a run (architecture and
    trained result) among its fitting rows. Its cross-validated figures are the result."""
    from trainfree.metrics.combo_model import run_hash
    from trainfree.spaces import get_space

    model, _ = load(name)
    space = get_space(bench.space) if bench.space == model.space else None
    if space is None:
        return
    fitted_arch, fitted_runs = set(model.fitted_arch_ids), set(model.fitted_runs)
    scored = [r for r in bench.records if r.name in names]
    same_bench = bench.name == model.benchmark and bench.target == model.target
    seen = [r for r in scored if run_hash(space.arch_id(r.arch), r.target) in fitted_runs
            or (same_bench and space.arch_id(r.arch) in fitted_arch)]
    if seen:
        cv = model.cv
        raise TrainfreeError(
            f"metric {name!r} was fitted on {len(seen)} of these {len(scored)} architectures ({model.benchmark}, "
            f"target {model.target}): a tau on them is in-sample, not a result. Its nested cross-validated figures: "
            f"held-out tau {cv.get('mean_tau', float('nan')):.3f} +- {cv.get('sd_tau', float('nan')):.3f} over "
            f"{cv.get('outer_folds')} outer folds, pooled out-of-fold tau {cv.get('pooled_tau', float('nan')):.3f}; "
            f"use it on architectures it was not fitted on")
