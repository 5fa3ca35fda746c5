"""One self-contained HTML page (images embedded as data URIs) for a benchmark's scores and searches."""
from __future__ import annotations

import base64
import datetime
import hashlib
import html
import math
from typing import Sequence

from trainfree.errors import TrainfreeError
from trainfree.report import plots

#: the page runs no script and loads nothing: only its own stylesheet (by hash) and embedded PNGs.
#: script-src 'none' also disables inline event handlers (onerror=, onload=), should any markup slip in.
_CSP = ("default-src 'none'; script-src 'none'; img-src data:; style-src '{style}'; base-uri 'none'; "
        "form-action 'none'; frame-src 'none'; object-src 'none'")

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; display: block; max-width: 100%;
        overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; white-space: nowrap; }
th { white-space: normal; vertical-align: bottom; min-width: 4em; }
td .note { display: block; font-size: 0.85em; }
th:first-child, td:first-child { text-align: left; }
tr.baseline { background: #fff6d5; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0 1.5em; }
code, pre { background: #f4f4f4; }
pre { padding: 0.6em; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.85em; }
.note { color: #555; font-size: 0.9em; }
"""


def _img(png: bytes, alt: str, figures_dir=None) -> str:
    """An embedded image; with ``figures_dir`` (a Path) also a PNG there, named after its alt text."""
    if figures_dir is not None:
        import re

        (figures_dir / (re.sub(r"[^A-Za-z0-9_.-]+", "_", alt).strip("_")[:120] + ".png")).write_bytes(png)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _e(value) -> str:
    """Any value from input, as HTML text."""
    return html.escape(str(value))


def _num(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else _e(x)


def _is_float(v) -> bool:
    """A JSON number a float can hold (NaN and inf included)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        float(v)
    except OverflowError:
        return False
    return True


def check_search(search, where: str = "search") -> dict:
    """A search result (``trainfree search --output``) with the fields a report reads, of the right types;
    otherwise TrainfreeError naming the field. Values are escaped when shown, never trusted as markup."""
    def fail(field, expected):
        raise TrainfreeError(f"{where}: field {field!r} must be {expected} (write one with `trainfree search --output`)")

    if not isinstance(search, dict):
        fail("(top level)", "a JSON object")
    for field in ("metric", "strategy", "space"):
        if not isinstance(search.get(field), str):
            fail(field, "a string")
    if search.get("objective") is not None and not isinstance(search["objective"], str):
        fail("objective", "a string or null")
    if isinstance(search.get("seed"), bool) or not isinstance(search.get("seed"), (int, str)):
        fail("seed", "an integer")
    for field in ("trials", "pareto"):
        trials = search.get(field, [])
        if not isinstance(trials, list):
            fail(field, "a list")
        for i, t in enumerate(trials):
            if not isinstance(t, dict) or not isinstance(t.get("arch_id"), str) or not isinstance(t.get("values"), dict):
                fail(f"{field}[{i}]", "an object with a string 'arch_id' and an object 'values'")
            if isinstance(t.get("step"), bool) or not isinstance(t.get("step"), int):
                fail(f"{field}[{i}].step", "an integer")
            for k, v in t["values"].items():
                if v is not None and not _is_float(v):
                    fail(f"{field}[{i}].values.{k[:40]}", "a number or null")
    if search.get("evaluation") is not None:
        ev = search["evaluation"]
        if not isinstance(ev, dict) or not all(_is_float(ev.get(k)) for k in ("target", "percentile", "regret", "best")):
            fail("evaluation", "an object of numbers target, percentile, regret, best")
        if not isinstance(search.get("chosen"), dict) or not isinstance(search["chosen"].get("arch_id"), str):
            fail("chosen", "an object with a string 'arch_id'")
    return search


def _ci(row: dict, key: str) -> str:
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    return f"{_num(row[key])} <span class=note>[{_num(low)}, {_num(high)}]</span>" if low is not None else _num(row[key])


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(f"<tr class='{_e(classes[i]) if i < len(classes) else ''}'>" + "".join(f"<td>{c}</td>" for c in r)
                   + "</tr>" for i, r in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def within_section(results, within: Sequence[str], baseline: str | None, resamples: int, seed: int) -> str:
    """The size-controlled table: each metric's global tau beside its within-group tau (see
    trainfree.evaluation.within) and, with a baseline, the paired difference to the baseline's."""
    rows = []
    for r in results:
        w = r.within
        vs = "–"
        if baseline is not None and r.metric != baseline and w.minus_baseline is not None:
            vs = f"{_num(w.minus_baseline)} <span class=note>[{_num(w.minus_baseline_low)}, {_num(w.minus_baseline_high)}]</span>"
        rows.append([f"<code>{_e(r.metric)}</code>", _num(r.correlation.kendall_tau),
                     f"{_num(w.kendall_tau)} <span class=note>[{_num(w.low)}, {_num(w.high)}]</span>",
                     _num(w.n), _num(w.groups), _num(w.skipped + w.undefined), vs])
    by = " × ".join(_e(f) for f in within)
    headers = ["metric", "global tau", "within-group tau [95% CI]", "n", "groups", "groups skipped",
               f"within − {baseline or 'baseline'} [paired 95% CI]"]
    return "\n".join([
        f"<h2 id='within'>Within groups of equal {by}</h2>",
        f"<p class=note>Kendall tau inside each group of architectures sharing {by}, averaged with the groups' "
        f"sizes as weights; a metric that only tracks these factors has a high global tau and a within-group tau "
        f"near 0. Intervals: percentile bootstrap resampling architectures within each group, {_e(resamples)} "
        f"resamples, seed {_e(seed)}. Skipped: groups under 3 architectures or with a constant metric or target.</p>",
        _table(headers, rows, ["baseline" if r.metric == baseline else "" for r in results])])


def correlation_section(bench, scores, resamples: int, seed: int, img=_img, within: Sequence[str] | None = None) -> str:
    from trainfree.evaluation.benchmark_correlation import correlate
    from trainfree.evaluation.correlation import topk_precision
    from trainfree.metrics import get_metric

    n = len(bench.records)
    ks = [k for k in (10, 50, 100) if k <= n // 2] or [max(1, n // 10)]
    has_params = any(s.metric == "params" for s in scores)
    results = correlate(bench, scores, ci_resamples=resamples, topk=ks, seed=seed,
                        baseline="params" if has_params else None, resamples=resamples, within=within)
    results.sort(key=lambda r: (r.metric != "params", -(r.correlation.kendall_tau
                                                         if math.isfinite(r.correlation.kendall_tau) else -9)))
    rows, classes = [], []
    for r in results:
        d = r.as_dict()
        vs = "–"
        if r.versus is not None and r.metric != "params":
            vs = (f"{r.versus.kendall_tau:+.3f} [{r.versus.low:+.3f}, {r.versus.high:+.3f}]"
                  if math.isfinite(r.versus.kendall_tau) else "n/a")
        rows.append([f"<code>{html.escape(r.metric)}</code>", _num(d["n"]), _num(d["dropped"]), _ci(d, "kendall_tau"),
                     _ci(d, "spearman"), _ci(d, "pearson"), vs] + [_num(d[f"top{k}_precision"], 2) for k in ks])
        classes.append("baseline" if r.metric == "params" else "")
    headers = ["metric", "n", "dropped", "Kendall tau-b [95% CI]", "Spearman [95% CI]", "Pearson [95% CI]",
               "tau − params [paired 95% CI]"] + [f"top-{k} precision" for k in ks]
    out = [f"<h2 id='correlation'>Correlation with {html.escape(bench.target)}</h2>",
           f"<p class=note>Signed so that positive means the metric ranks better-trained architectures higher "
           f"({'lower' if bench.lower_is_better else 'higher'} {html.escape(bench.target)} is better). Intervals: "
           f"percentile bootstrap over architectures, {resamples} resamples, seed {seed}. Top-k precision: share of "
           f"the true top-k the metric also puts in its top-k. The <code>params</code> row is the baseline every "
           f"metric must beat{'' if has_params else ' (not among these scores)'}; tau − params is resampled in "
           f"pairs (both taus on the same architectures), so an interval above 0 is a win the data supports.</p>",
           _table(headers, rows, classes)]
    if within:
        out.append(within_section(results, within, "params" if has_params else None, resamples, seed))

    by_metric: dict[str, dict[str, float]] = {}
    for s in scores:
        by_metric.setdefault(s.metric, {})[s.name] = s.value if s.status == "ok" else math.nan
    targets = bench.targets()
    all_ks = plots.log_ks(n)
    curves = {}
    out.append("<h2 id='scatter'>Metric against the trained result</h2>")
    for r in results:
        values = by_metric[r.metric]
        names = [name for name in targets if name in values]
        v, t = [values[x] for x in names], [targets[x] for x in names]
        spec = get_metric(r.metric)
        orient = {"higher_is_better": spec.higher_is_better, "target_lower_is_better": bench.lower_is_better}
        curves[r.metric] = (all_ks, [topk_precision(v, t, k, **orient) for k in all_ks])
        out.append(f"<h3><code>{html.escape(r.metric)}</code></h3>")
        out.append(img(plots.scatter(r.metric, v, t, bench.target, r.correlation.kendall_tau, **orient),
                        f"{r.metric} against {bench.target}"))
    out.append("<h2 id='topk'>Top-k precision</h2>")
    out.append(img(plots.topk_curves(curves, n), "top-k precision curves"))
    return "\n".join(out)


def search_section(search: dict, bench=None, img=_img) -> str:
    from trainfree.search import arch_targets

    search = check_search(search)
    metric, higher = search["metric"], search.get("metric_higher_is_better", True) is not False
    sign = 1.0 if higher else -1.0
    trials = search["trials"]
    steps = [t["step"] for t in trials]
    fitness = [sign * t["values"].get(metric, math.nan) if t["values"].get(metric) is not None else math.nan
               for t in trials]
    title = (f"{_e(search['strategy'])} search of {_e(search['space'])} by <code>{_e(metric)}</code>, "
             f"seed {_e(search['seed'])}, {len(trials)} evaluations")
    out = [f"<h2>{title}</h2>"]
    targets_line = None
    if bench is not None and search.get("benchmark") == bench.name:
        by_id = arch_targets(bench)
        best, best_f, line = None, -math.inf, []
        for t, f in zip(trials, fitness):
            if math.isfinite(f) and f > best_f:
                best, best_f = t, f
            line.append(by_id.get(best["arch_id"], math.nan) if best else math.nan)
        targets_line = line
    label = f"{search['strategy']} search by {metric}, seed {search['seed']}"
    out.append(img(plots.trajectory(steps, fitness, metric, targets_line, bench.target if bench else ""),
                    f"trajectory of the {label}"))
    chosen = search.get("chosen") or {}
    if search.get("evaluation"):
        ev = search["evaluation"]
        out.append(_table(["chosen", "shape", "target", "percentile (0 = best)", "regret", "benchmark best"],
                          [[f"<code>{_e(chosen.get('arch_id', ''))}</code>", _e(chosen.get("shape", "")),
                            _num(ev["target"], 4), _num(ev["percentile"], 1), _num(ev["regret"], 4),
                            _num(ev["best"], 4)]]))
    elif chosen:
        out.append(_table(["chosen", "shape", metric],
                          [[f"<code>{_e(chosen.get('arch_id', ''))}</code>", _e(chosen.get("shape", "")),
                            _num(chosen.get("values", {}).get(metric), 4)]]))
    objective = search.get("objective")
    if objective:
        front = {t["arch_id"] for t in search["pareto"]}
        costs = [t["values"].get(objective, math.nan) for t in trials]
        out.append(f"<h3>Pareto front: <code>{html.escape(metric)}</code> against <code>{html.escape(objective)}"
                   f"</code></h3>")
        out.append(img(plots.pareto(fitness, costs, [t["arch_id"] in front for t in trials], metric, objective),
                        f"Pareto front of the {label}"))
        out.append(_table(["architecture", "shape", metric, objective],
                          [[f"<code>{_e(t['arch_id'])}</code>", _e(t.get("shape", "")), _num(t["values"].get(metric), 4),
                            _num(t["values"].get(objective), 4)] for t in search["pareto"]]))
    return "\n".join(out)


def render(bench, scores, provenance: dict, searches: Sequence[dict] = (), resamples: int = 1000, seed: int = 0,
           title: str | None = None, search_benchmark=None, figures_dir=None, within: Sequence[str] | None = None) -> str:
    """The whole page: correlation table with intervals, scatter plots, top-k curves, searches, provenance.
    ``search_benchmark`` (default ``bench``) is where the searches' choices are looked up; ``figures_dir``
    (a Path) also receives every figure as a PNG; ``within`` (factor names, or params:N) adds the
    within-group correlation table."""
    from functools import partial
    import json

    from trainfree import __version__

    title = title or f"trainfree report: {bench.name}"
    img = partial(_img, figures_dir=figures_dir)
    style = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP.format(style=style)}\">"
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>Benchmark <b>{html.escape(bench.name)}</b> ({html.escape(bench.space)}): {len(bench.records)} "
             f"architectures with a trained <b>{html.escape(bench.target)}</b>. Generated by trainfree {__version__} "
             f"on {datetime.date.today().isoformat()}.</p>",
             "<p>" + " · ".join(f"<a href='#{a}'>{t}</a>" for a, t, on in (
                 ("correlation", "correlation", scores), ("scatter", "scatter plots", scores),
                 ("within", "within groups", scores and within), ("topk", "top-k precision", scores), ("searches", "searches", searches),
                 ("provenance", "provenance", True)) if on) + "</p>"]
    if scores:
        parts.append(correlation_section(bench, scores, resamples, seed, img, within=within))
    if searches:
        parts.append("<h2 id='searches'>Searches</h2>")
        parts += [search_section(s, search_benchmark or bench, img) for s in searches]
    if not provenance:  # a report made from rows without their provenance: say what the rows themselves carry
        provenance = {"given": "no provenance was passed; what the score rows carry:",
                      "fingerprints": sorted({getattr(s, "fingerprint", "") or "(none)" for s in scores}),
                      "metric_versions": sorted({f"{s.metric} {getattr(s, 'metric_version', '') or '(unknown)'}"
                                                 for s in scores})}
    parts.append("<h2 id='provenance'>Provenance</h2><p class=note>The settings and versions that produced these "
                 "numbers.</p><pre>" + html.escape(json.dumps(provenance, indent=1, sort_keys=True, default=str))
                 + "</pre></body></html>")
    return "\n".join(parts)
