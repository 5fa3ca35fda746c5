"""Reproduce the paper's RNN table: trainfree's metrics beside the published columns, same architectures."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from trainfree.benchmarks import Benchmark
from trainfree.evaluation.correlation import Correlation, correlate_values
from trainfree.metrics import METRICS, get_metric


@dataclass(frozen=True)
class ReproRow:
    metric: str
    published_column: str | None
    ours: Correlation
    published: Correlation | None
    agreement_spearman: float  # trainfree's values vs the published ones, same architectures
    seconds_median: float

    def as_dict(self) -> dict:
        d = {"metric": self.metric, "published_column": self.published_column or ""}
        d.update({f"ours_{k}": v for k, v in self.ours.as_dict().items()})
        pub = self.published.as_dict() if self.published else {}
        for k in ("n", "kendall_tau", "spearman", "pearson"):
            d[f"published_{k}"] = pub.get(k, math.nan)
        d["agreement_spearman"] = self.agreement_spearman
        d["seconds_median"] = self.seconds_median
        return d


#: what ``reproduce PART`` compares by default: the benchmark, its space, the published metrics file
#: (shipped with the package) and the column that names a record in it
PARTS = {
    "rnn": {"benchmark": "nasbench-nlp-ptb", "space": "nasbench-nlp", "published": None, "key": "log name",
            "title": "RNN"},
    "bert": {"benchmark": "nasbench-bert", "space": "nasbench-bert",
             "published": "nasbench_bert/paper_bert_metrics.csv.gz", "key": "ID", "title": "Transformer"},
}


def default_metrics(space: str) -> list[str]:
    """Every registered metric for ``space`` that has a published column, plus the params baseline."""
    names = [m.name for m in METRICS if space in m.spaces and m.published_column]
    return list(dict.fromkeys(names + [m for m in ("params",) if m in METRICS]))


def reproduce_table(bench: Benchmark, rows, published: dict[str, dict[str, float]] | None) -> list[ReproRow]:
    """Build the table from score rows (:class:`~trainfree.records.Score`) and the published values keyed by record name."""
    targets = bench.targets()
    out = []
    for metric_name in dict.fromkeys(r.metric for r in rows):
        spec = get_metric(metric_name)
        mine = {r.name: (r.value if r.status == "ok" else math.nan) for r in rows if r.metric == metric_name}
        secs = [r.seconds for r in rows if r.metric == metric_name and r.status == "ok"]
        col = spec.published_column
        names = [n for n in mine if n in targets]
        pub_corr, agree = None, math.nan
        if published is not None and col and any(col in published.get(n, {}) for n in names):
            names = [n for n in names if n in published and col in published[n]]
            pub_vals = [spec.published_sign * published[n][col] for n in names]  # trainfree's sign
            pub_corr = correlate_values(pub_vals, [targets[n] for n in names], higher_is_better=spec.higher_is_better,
                                        target_lower_is_better=bench.lower_is_better)
            a, b = np.array([mine[n] for n in names]), np.array(pub_vals)
            keep = np.isfinite(a) & np.isfinite(b)
            if keep.sum() >= 3:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    agree = float(stats.spearmanr(a[keep], b[keep]).statistic)
        ours = correlate_values([mine[n] for n in names], [targets[n] for n in names],
                                higher_is_better=spec.higher_is_better, target_lower_is_better=bench.lower_is_better)
        shown = col if pub_corr is not None else None
        out.append(ReproRow(metric_name, shown, ours, pub_corr, agree, float(np.median(secs)) if secs else math.nan))
    return out


def _f(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def to_markdown(rows: Sequence[ReproRow], title: str, note: str = "") -> str:
    lines = [f"# {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| metric | published column | n | dropped | tau (trainfree) | tau (published) | Spearman (trainfree) "
              "| Spearman (published) | Pearson (trainfree) | agreement (Spearman) | run s / arch* |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r.published
        lines.append(f"| `{r.metric}` | {r.published_column or '–'} | {r.ours.n} | {r.ours.dropped} "
                     f"| {_f(r.ours.kendall_tau)} | {_f(p.kendall_tau) if p else '–'} | {_f(r.ours.spearman)} "
                     f"| {_f(p.spearman) if p else '–'} | {_f(r.ours.pearson)} | {_f(r.agreement_spearman, 4)} "
                     f"| {_f(r.seconds_median, 3)} |")
    lines += ["", "\\* median seconds per architecture in this run; a pass shared by several metrics is counted "
              "once, for the first metric that needed it (standalone costs: `benchmarks/metric_costs.py`).", ""]
    return "\n".join(lines)
