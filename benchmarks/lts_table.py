"""Training-free metrics on the LTS decoder benchmark: Kendall tau and Spearman against validation
perplexity per setting, beside the decoder_params (non-embedding parameters) baseline, and the median
seconds per architecture of each metric and of the default set on this machine.

    python benchmarks/lts_table.py [--store PATH] [--jobs 2] [--settings a,b] [--metrics a,b] [--limit N]

Scores go through the store, so a rerun only reads them back. Writes Markdown to stdout.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from trainfree import api
from trainfree.benchmarks import load_benchmark
from trainfree.spaces import get_space
from trainfree.store import Store

SETTINGS = ["random_GPT2_wt103", "random_GPT2_lm1b", "random_TransXL_wt103", "random_TransXL_lm1b",
            "random_TransXL_wt103_homogeneous"]
METRICS = ["decoder_params", "params", "decoder_hidden_cov", "decoder_hidden_cov_last", "decoder_activation_distance",
           "decoder_jacob_cov", "grad_norm", "snip", "fisher", "synflow", "zico"]


def _combinations(bench, rows, metrics) -> dict[str, float]:
    """tau of the mean of normalised ranks of decoder_params and each other metric (registered directions)."""
    import numpy as np
    from scipy.stats import rankdata

    from trainfree.evaluation.correlation import correlate_values
    from trainfree.metrics import get_metric

    values = {}
    for r in rows:
        values.setdefault(r.metric, {})[r.name] = r.value if r.status == "ok" else float("nan")
    names = [r.name for r in bench.records]
    targets = [r.target for r in bench.records]

    def ranks(metric):
        v = np.array([values[metric][n] for n in names], dtype=float)
        v = v if get_metric(metric).higher_is_better else -v
        out = np.full(len(v), np.nan)
        ok = np.isfinite(v)
        out[ok] = rankdata(v[ok]) / ok.sum()
        return out

    from scipy.stats import kendalltau

    base = ranks("decoder_params")
    t = -np.array(targets)  # higher = better
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(t), len(t)) for _ in range(1000)]
    out = {}
    for m in metrics:
        if m != "decoder_params":
            combo = (base + ranks(m)) / 2
            tau = correlate_values(combo, targets, higher_is_better=True, target_lower_is_better=True).kendall_tau
            ok = np.isfinite(combo) & np.isfinite(base)
            diffs = [kendalltau(combo[i], t[i]).statistic - kendalltau(base[i], t[i]).statistic
                     for i in (d[ok[d]] for d in draws)]
            low, high = np.nanpercentile(diffs, [2.5, 97.5])
            out[m] = f"{tau:.3f} ({low:+.3f}, {high:+.3f})"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("lts.sqlite"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--metrics", default=",".join(METRICS))
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    metrics = args.metrics.split(",")
    space = get_space("decoder")
    settings = space.default_settings().with_(device="cpu")
    seconds: dict[str, list[float]] = {}
    combos = []
    print(f"Settings: {settings.identity()}; {args.jobs} worker processes.\n")
    print("| setting | n | metric | Kendall tau [95% CI] | Spearman | tau - decoder_params |")
    print("|---|---|---|---|---|---|")
    with Store(args.store) as store:
        for setting in args.settings.split(","):
            bench = load_benchmark(f"lts:{setting}").head(args.limit)
            start = time.perf_counter()
            run = api.score(bench, metrics, settings, jobs=args.jobs, store=store)
            wall = time.perf_counter() - start
            for row in run.rows:
                if row.status == "ok":
                    seconds.setdefault(row.metric, []).append(row.seconds)
            results = {r.metric: r for r in api.correlate(bench, run.rows, ci_resamples=1000)}
            base = results["decoder_params"].correlation.kendall_tau
            for m in metrics:
                r = results[m]
                c, ci = r.correlation, r.ci["kendall_tau"]
                print(f"| {setting} | {c.n} | `{m}` | {c.kendall_tau:.3f} [{ci.low:.3f}, {ci.high:.3f}] | "
                      f"{c.spearman:.3f} | {c.kendall_tau - base:+.3f} |")
            combos.append((setting, _combinations(bench, run.rows, metrics)))
            print(f"<!-- {setting}: {wall:.0f} s wall (computed {run.computed}, reused {run.reused}) -->")
    print("\nEqual-weight rank averages of `decoder_params` and one metric (each in its registered direction;")
    print("nothing fitted to the targets), Kendall tau against perplexity, and in brackets the paired bootstrap")
    print("95% interval of its difference from `decoder_params` alone (1000 resamples, seed 0):\n")
    names = [m for m in metrics if m != "decoder_params"]
    print("| setting | " + " | ".join(f"`decoder_params` + `{m}`" for m in names) + " |")
    print("|---|" + "---|" * len(names))
    for setting, taus in combos:
        print(f"| {setting} | " + " | ".join(taus[m] for m in names) + " |")
    print("\n| metric | median seconds per architecture (its own pass; shared passes counted once) |")
    print("|---|---|")
    for m in metrics:
        print(f"| `{m}` | {statistics.median(seconds.get(m, [float('nan')])):.3f} |")


if __name__ == "__main__":
    main()
