"""The evidence on decoders (docs/decoders.md): every applicable metric's Kendall tau on Gemstones and on each
random LTS setting, globally and inside equal-size groups (Gemstones: ``size_group``; LTS: ``n_layer``),
beside the parameter counts and the shape baselines, with paired bootstrap intervals against the
non-embedding parameter count.

    python benchmarks/decoder_evidence.py --store decoders.sqlite [--jobs 2] [--only gemstones,...]
        [--metrics ...] [--json evidence.json] [--evidence trainfree/data/evidence.json]

Scores go through the store, so a killed run resumes and a second run only correlates. Prints one markdown
table per benchmark and how many comparisons were made; ``--json`` writes every figure, ``--evidence`` the
compact table the package reads for its default search objective and its warnings
(``trainfree.evaluation.evidence``).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

SIZE = ["params", "nonembedding_params", "attn_params", "ffn_params", "embedding_params"]
SHAPE = ["depth", "width", "aspect_ratio", "depth_width_sq"]
FORWARD = ["hidden_cov", "hidden_cov_last", "activation_distance", "hidden_erank", "swap", "w_pca", "ffn_pca_dim"]
BACKWARD = ["grad_norm", "snip", "synflow", "zico", "fisher", "grasp", "lpzero_gpt2"]
DECODER_ONLY = ["decoder_jacob_cov"]
BENCHMARKS = {"gemstones": "size_group", "lts:random_GPT2_wt103": "n_layer", "lts:random_GPT2_lm1b": "n_layer",
              "lts:random_TransXL_wt103": "n_layer", "lts:random_TransXL_lm1b": "n_layer",
              "lts:random_TransXL_wt103_homogeneous": "n_layer"}
BASELINE = "nonembedding_params"


def metrics_for(space: str, chosen: list[str] | None) -> list[str]:
    from trainfree.metrics import get_metric

    names = chosen or SIZE + SHAPE + FORWARD + BACKWARD + (DECODER_ONLY if space == "decoder" else [])
    return [m for m in names if get_metric(m).applies_to(space)]


def size_taus(rows, metrics: list[str]) -> dict[str, float]:
    """Each metric's Kendall tau (oriented: higher ranks higher) with the non-embedding parameter count over
    the distinct architectures where both are finite: how much of its ranking is size."""
    from scipy.stats import kendalltau

    from trainfree.metrics import get_metric

    by: dict[str, dict[str, float]] = {}
    for r in rows:
        if str(r.status) == "ok" or getattr(r.status, "value", "") == "ok":
            by.setdefault(r.metric, {})[r.arch_id] = r.value
    size = by.get(BASELINE, {})
    out = {}
    for m in metrics:
        pairs = [(get_metric(m).orient(v), size[a]) for a, v in by.get(m, {}).items() if a in size]
        out[m] = float(kendalltau(*zip(*pairs))[0]) if len(pairs) > 2 else math.nan
    return out


def fmt(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:+.3f}" if x < 0 else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", default=None, help="comma-separated benchmarks (default: Gemstones and the five LTS)")
    parser.add_argument("--metrics", default=None, help="comma-separated metrics (default: every applicable one)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--score-only", action="store_true", help="score into the store, print nothing else")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--evidence", type=Path, default=None, help="write the package's evidence table here")
    args = parser.parse_args()
    from trainfree import __version__, api
    from trainfree.benchmarks import load_benchmark
    from trainfree.store import Store

    names = args.only.split(",") if args.only else list(BENCHMARKS)
    chosen = args.metrics.split(",") if args.metrics else None
    out, comparisons = {}, 0
    with Store(args.store) as store:
        for name in names:
            bench = load_benchmark(name)
            metrics = metrics_for(bench.space, chosen)
            if BASELINE not in metrics:
                metrics.insert(0, BASELINE)
            start = time.perf_counter()
            run = api.score(bench, metrics, store=store, jobs=args.jobs)
            print(f"{name}: scored {len(bench)} architectures x {len(metrics)} metrics (computed {run.computed}, "
                  f"reused {run.reused}) in {time.perf_counter() - start:.0f} s", flush=True)
            if args.score_only:
                continue
            rows = api.correlate(bench, run.rows, ci_resamples=args.resamples, baseline=BASELINE,
                                 resamples=args.resamples, within=BENCHMARKS.get(name, "n_layer"))
            comparisons += len(rows) - 1
            with_size = size_taus(run.rows, metrics)
            failed = {m: sum(1 for r in run.rows if r.metric == m and str(r.status) == "failed") for m in metrics}
            table = []
            for r in rows:
                c, ci, v, w = r.correlation, r.ci["kendall_tau"], r.versus, r.within
                table.append({"metric": r.metric, "n": c.n, "failed": failed[r.metric], "tau": c.kendall_tau,
                              "tau_low": ci.low, "tau_high": ci.high, "minus_baseline": v.kendall_tau,
                              "minus_low": v.low, "minus_high": v.high, "within": w.kendall_tau,
                              "within_low": w.low, "within_high": w.high,
                              "within_minus_baseline": w.minus_baseline,
                              "within_minus_low": w.minus_baseline_low, "within_minus_high": w.minus_baseline_high,
                              "tau_with_size": with_size.get(r.metric)})
            out[name] = {"architectures": len(bench), "target": bench.target, "within": BENCHMARKS.get(name),
                         "rows": table}
            print(f"\n### {name} ({len(bench)} architectures, target {bench.target}; within "
                  f"{BENCHMARKS.get(name)})\n")
            print("| metric | tau [95% CI] | minus nonembedding [paired 95%] | within tau [95%] | within minus "
                  "nonembedding [paired 95%] | tau with nonembedding |")
            print("|---|---|---|---|---|---|")
            for t in table:
                print(f"| `{t['metric']}`{' (' + str(t['failed']) + ' failed)' if t['failed'] else ''} | "
                      f"{fmt(t['tau'])} [{fmt(t['tau_low'])}, {fmt(t['tau_high'])}] | "
                      f"{fmt(t['minus_baseline'])} [{fmt(t['minus_low'])}, {fmt(t['minus_high'])}] | "
                      f"{fmt(t['within'])} [{fmt(t['within_low'])}, {fmt(t['within_high'])}] | "
                      f"{fmt(t['within_minus_baseline'])} [{fmt(t['within_minus_low'])}, "
                      f"{fmt(t['within_minus_high'])}] | {fmt(t['tau_with_size'])} |", flush=True)
    if args.score_only:
        return
    print(f"\n{comparisons} comparisons against {BASELINE} (each global and within), 95% intervals not corrected "
          f"for their number")
    command = "python benchmarks/decoder_evidence.py " + " ".join(
        f"--{k} {v}" for k, v in (("only", args.only), ("metrics", args.metrics)) if v)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "trainfree_version": __version__, "benchmarks": out},
                                        indent=1, allow_nan=True))
    if args.evidence:
        compact = {"command": command, "trainfree_version": __version__, "baseline": BASELINE,
                   "benchmarks": {name: {"architectures": b["architectures"], "target": b["target"],
                                         "taus": {t["metric"]: [round(t["tau"], 3), round(t["minus_low"], 3),
                                                                round(t["minus_high"], 3)]
                                                  for t in b["rows"] if math.isfinite(t["tau"])}}
                                  for name, b in out.items()}}
        args.evidence.write_text(json.dumps(compact, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
