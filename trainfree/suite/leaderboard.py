"""The leaderboard: every metric's figures on every shipped benchmark, read from the suite file (nothing
is built or computed for what the suite holds); a metric the suite lacks is computed through a store on
every benchmark it applies to, and its figures computed the same way as the suite's.

A row: benchmark, metric, n (runs), coverage (all, subset, or partial: a run not finished), Kendall tau [95% bootstrap interval], the
size-weighted within-group tau [interval] (grouped on the benchmark's size factors), tau minus the size
baseline's [paired bootstrap interval], and CPU-seconds per architecture when it was computed.
"""
from __future__ import annotations

import html
import math
from typing import Sequence

from trainfree.errors import TrainfreeError

COLUMNS = ["benchmark", "metric", "n", "coverage", "kendall_tau", "kendall_tau_low", "kendall_tau_high",
           "within", "within_tau", "within_low", "within_high", "baseline", "tau_minus_baseline",
           "tau_minus_baseline_low", "tau_minus_baseline_high", "cpu_seconds_per_arch"]


def leaderboard(suite=None, benchmarks: Sequence[str] | None = None, metrics: Sequence[str] | None = None,
                store=None, jobs: int = 1, on_progress=None) -> list[dict]:
    """Rows of the leaderboard, best tau first within each benchmark (benchmarks in the suite's order).
    ``suite``: a suite file's path (default: the shipped one). Metrics the suite lacks need ``store``."""
    from trainfree.benchmarks import load_benchmark
    from trainfree.metrics import get_metric
    from trainfree.spaces import get_space
    from trainfree.suite.build import benchmark_stats, collect, run_suite
    from trainfree.store.shipped import read_suite

    data = read_suite(suite)
    if data is None:
        raise TrainfreeError("this install ships no suite file (trainfree/data/suite/suite.json.gz); build one "
                             "with `trainfree suite --store S --output FILE` and pass it with --suite FILE")
    names = list(data["benchmarks"])
    if benchmarks is not None:
        unknown = [b for b in benchmarks if b not in data["benchmarks"]]
        if unknown:
            raise TrainfreeError(f"not in the suite: {', '.join(unknown)} (it holds {', '.join(names)})")
        names = list(benchmarks)
    for m in metrics or ():
        get_metric(m)  # an unknown name fails first, with did-you-mean
    new: dict[str, list[str]] = {}
    for b in names:
        entry = data["benchmarks"][b]
        space = get_space(entry["space"])
        new[b] = [m for m in metrics or () if m not in entry["metrics"] and get_metric(m).applies_to(space)]
    wanted = sorted({m for ms in new.values() for m in ms})
    if wanted and store is None:
        raise TrainfreeError(f"the suite lacks {', '.join(wanted)}: give a store to compute "
                             f"{'it' if len(wanted) == 1 else 'them'} on every benchmark (--store)")
    rows = []
    for b in names:
        entry = data["benchmarks"][b]
        stats = [r for r in entry["stats"] if metrics is None or r["metric"] in metrics]
        if new[b]:
            run_suite(store, [b], new[b], jobs=jobs, on_progress=on_progress)
            fresh = collect(store, [b], new[b], stats=False)["benchmarks"][b]
            if fresh["fingerprint"] != entry["fingerprint"]:
                raise TrainfreeError(f"{b}: this install's default settings (fingerprint {fresh['fingerprint']}) "
                                     f"are not the suite's ({entry['fingerprint']}); rebuild the suite")
            merged = dict(entry, metrics={**entry["metrics"], **fresh["metrics"]})
            stats += benchmark_stats(load_benchmark(b), merged, metrics=new[b])
        stats.sort(key=lambda r: -r["kendall_tau"] if r["kendall_tau"] is not None else math.inf)
        rows += [{"benchmark": b, **r} for r in stats]
    return rows


def _num(x, fmt: str = "{:.3f}") -> str:
    return "–" if x is None else fmt.format(x)


def _ci(row: dict, key: str, low: str, high: str) -> str:
    if row.get(key) is None:
        return "–"
    if row.get(low) is None:
        return _num(row[key])
    return f"{row[key]:.3f} [{row[low]:.3f}, {row[high]:.3f}]"


def cells(row: dict) -> list[str]:
    """The printed cells of a row: benchmark, metric, n, tau [CI], within [CI], minus baseline [CI], s/arch."""
    metric = row["metric"] + (f" ({row['coverage']})" if row.get("coverage") in ("subset", "partial") else "")
    return [row["benchmark"], metric, str(row["n"]), _ci(row, "kendall_tau", "kendall_tau_low", "kendall_tau_high"),
            _ci(row, "within_tau", "within_low", "within_high"),
            _ci(row, "tau_minus_baseline", "tau_minus_baseline_low", "tau_minus_baseline_high"),
            _num(row.get("cpu_seconds_per_arch"), "{:.2f}")]


HEADERS = ["benchmark", "metric", "n", "tau [95% CI]", "within [95% CI]", "- size baseline [paired]", "CPU-s/arch"]


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: list[dict], title: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(r)) + "</tr>" for r in rows)
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:2px 6px;text-align:left}</style></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n<table><tr>{head}</tr>\n{body}\n</table></body></html>\n")
