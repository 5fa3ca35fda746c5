"""Figures for reports, as PNG bytes. Matplotlib is an extra (``trainfree[report]``), imported here only."""
from __future__ import annotations

import io
import math

import numpy as np

from trainfree.errors import MissingExtra
from trainfree.records import orient


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra("reports need matplotlib: pip install 'trainfree[report]'") from None
    matplotlib.use("Agg")  # files only, never a window
    matplotlib.rcParams["text.parse_math"] = False  # labels are names from input, never TeX ("$" stays "$")
    import matplotlib.pyplot as plt

    return plt


#: sizes for a page about 1300 px wide: figures fill it at 100 dpi, text and legends readable
STYLE = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "legend.fontsize": 10,
         "xtick.labelsize": 10, "ytick.labelsize": 10, "figure.titlesize": 13}


def _figure(plt, *args, **kwargs):
    plt.rcParams.update(STYLE)
    return plt.subplots(*args, **kwargs)


def _png(fig) -> bytes:
    return _save(fig, "png")


def _save(fig, fmt: str) -> bytes:
    """The figure as ``fmt`` bytes, with plain tick labels, then closed."""
    _plain_ticks(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _plain_label(x: float, _pos=None) -> str:
    """A tick value as plain text (``-1e+07``, ``500``): no math text, which labels here never parse."""
    return "0" if x == 0 else f"{x:g}"


def _plain_ticks(fig) -> None:
    """Log and symlog axes label their ticks with math text (``$\\mathdefault{10^{7}}$``), which shows raw
    with ``text.parse_math`` off (the labels here are input names, never TeX): plain labels instead, major
    ticks only."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for ax in fig.get_axes():
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale in ("log", "symlog"):
                axis.set_major_formatter(FuncFormatter(_plain_label))
                axis.set_minor_formatter(NullFormatter())


def _auto_scale(ax, values, axis: str = "y") -> None:
    """A symmetric-log axis when the values span more than three orders of magnitude (hidden covariance
    runs from -1e3 to -1e7): a linear axis would squash all but the outliers into one line."""
    v = np.asarray(values, float)
    v = np.abs(v[np.isfinite(v) & (v != 0)])
    if len(v) < 2 or v.max() / v.min() < 1e3:
        return
    kwargs = {"linthresh": float(np.percentile(v, 5))}
    (ax.set_yscale if axis == "y" else ax.set_xscale)("symlog", **kwargs)


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x) / len(x)


def scatter(metric: str, values, targets, target_name: str, tau: float, higher_is_better: bool = True,
            target_lower_is_better: bool = True) -> bytes:
    """The metric against the trained target, on raw values (left) and as signed rank fractions (right):
    both axes oriented so that better is up and right, so a positive tau is a rising cloud."""
    plt = _pyplot()
    v, t = np.asarray(values, float), np.asarray(targets, float)
    keep = np.isfinite(v) & np.isfinite(t)
    v, t = v[keep], t[keep]
    fig, axes = _figure(plt, 1, 2, figsize=(12.5, 4.8))
    axes[0].scatter(v, t, s=9, alpha=0.5, color="tab:blue", edgecolors="none")
    axes[0].set_xlabel(f"{metric} ({'higher' if higher_is_better else 'lower'} = better)")
    axes[0].set_ylabel(f"{target_name} ({'lower' if target_lower_is_better else 'higher'} = better)")
    axes[0].set_title("raw values")
    _auto_scale(axes[0], v, "x")
    if len(v):
        axes[1].scatter(_ranks(orient(v, higher_is_better)), _ranks(orient(t, not target_lower_is_better)), s=9,
                        alpha=0.5, color="tab:orange", edgecolors="none")
    axes[1].set_xlabel(f"rank of {metric} (fraction; right = ranked better)")
    axes[1].set_ylabel(f"rank of {target_name} (fraction; up = trained better)")
    axes[1].set_xlim(0, 1.02)
    axes[1].set_ylim(0, 1.02)
    axes[1].set_title("signed ranks")
    fig.suptitle(f"{metric}: n = {len(v)}, Kendall tau (signed) = {tau:.3f}")
    fig.tight_layout()
    return _png(fig)


def topk_curves(curves: dict[str, tuple[list[int], list[float]]], n: int) -> bytes:
    """Top-k precision against k per metric, with the random expectation k / n."""
    plt = _pyplot()
    fig, ax = _figure(plt, figsize=(12, 5.5))
    for name, (ks, ps) in curves.items():
        ax.plot(ks, ps, label=name, linewidth=1.5 if name != "params" else 2.5,
                linestyle="-" if name != "params" else "--")
    if curves:
        ks = next(iter(curves.values()))[0]
        ax.plot(ks, [k / n for k in ks], color="grey", linestyle=":", label="random (k / n)")
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("share of the true top-k in the metric's top-k")
    ax.set_ylim(0, 1.02)
    ax.legend(ncol=2 if len(curves) < 12 else 3, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _png(fig)


def trajectory(steps, fitness, metric: str, targets=None, target_name: str = "") -> bytes:
    """A search's metric per evaluation and the best so far; with a benchmark, the trained target of the
    best-so-far architecture on a second axis."""
    plt = _pyplot()
    f = np.asarray(fitness, float)
    best = np.maximum.accumulate(np.where(np.isfinite(f), f, -np.inf))
    fig, ax = _figure(plt, figsize=(12, 4.8))
    ax.scatter(steps, np.where(np.isfinite(f), f, np.nan), s=8, alpha=0.5, label="evaluated")
    ax.plot(steps, np.where(np.isfinite(best), best, np.nan), color="tab:red", label="best so far")
    ax.set_xlabel("evaluation")
    ax.set_ylabel(f"{metric} (higher = better)")
    _auto_scale(ax, f)
    if targets is not None:
        ax2 = ax.twinx()
        ax2.plot(steps, targets, color="tab:green", linestyle="--", label=f"{target_name} of the best so far")
        ax2.set_ylabel(target_name)
        ax2.legend(loc="lower right")
    ax.legend(loc="upper left")
    return _png(fig)


def pareto(fitness, costs, front_mask, metric: str, objective: str) -> bytes:
    """Every evaluated architecture by cost and metric, the Pareto front joined."""
    plt = _pyplot()
    f, c = np.asarray(fitness, float), np.asarray(costs, float)
    m = np.asarray(front_mask, bool)
    fig, ax = _figure(plt, figsize=(12, 5.5))
    ax.scatter(c[~m], f[~m], s=8, alpha=0.4, color="tab:grey", label="evaluated")
    order = np.argsort(c[m])
    ax.plot(c[m][order], f[m][order], "o-", color="tab:red", markersize=4, label="Pareto front")
    ax.set_xlabel(f"{objective} (lower = better)")
    ax.set_ylabel(f"{metric} (higher = better)")
    _auto_scale(ax, f)
    if len(c) and np.all(c[np.isfinite(c)] > 0) and np.nanmax(c) / max(np.nanmin(c), 1e-300) > 100:
        ax.set_xscale("log")
    ax.legend()
    return _png(fig)


def log_ks(n: int, points: int = 30) -> list[int]:
    """About ``points`` values of k from 1 to n, evenly spaced on a log scale."""
    if n < 1:
        return []
    return sorted({max(1, min(n, int(round(math.exp(x))))) for x in np.linspace(0, math.log(n), points)})
