"""The tables of docs/signals.md: for every shipped benchmark, each default metric's global Kendall tau
and its within-group tau, beside the size baseline, with paired-bootstrap intervals; then the nested
cross-validated tau of linear and boosted combinations (`trainfree combine`).

    python benchmarks/signal_tables.py --scores-dir DIR [--part tables|combine|both] [--resamples N]
                                       [--out benchmarks/results] [--only BENCHMARK,BENCHMARK]

DIR holds the score CSVs that `trainfree score` wrote (the commands are in docs/signals.md):
ptb_params.csv, bert.csv and lts_SETTING.csv for the five random LTS settings. NAS-Bench-NLP's
paper metrics are read from the shipped published columns (trainfree reproduces them: docs/results-rnn.md).
Writes Markdown to stdout, and signals.csv / combine.json under --out.
"""
from __future__ import annotations

import argparse
import functools
import csv
import json
import math
import time
from pathlib import Path

from trainfree import api
from trainfree.benchmarks import load_benchmark
from trainfree.evaluation.combine import published_entries
from trainfree.scores import read_scores

print = functools.partial(print, flush=True)  # noqa: A001  (tables appear as each benchmark finishes)

LTS = ["random_GPT2_wt103", "random_GPT2_lm1b", "random_TransXL_wt103", "random_TransXL_lm1b",
       "random_TransXL_wt103_homogeneous"]
#: benchmark -> (score files, metrics, baseline, within factors); NAS-Bench-NLP's groups hold ~2,000 runs
#: each, and the within-group bootstrap costs n^2 per group and resample: PTB_RESAMPLES there
TABLES = {"nasbench-bert": (["bert.csv"], None, "params", ["num_layers", "hidden_size"]),
          **{f"lts:{s}": ([f"lts_{s}.csv"], None, "decoder_params", ["n_layer"]) for s in LTS},
          "nasbench-nlp-ptb": (["ptb_params.csv", "published"], ["hidden_cov", "params"], "params",
                               ["hidden_tuple_size"])}


PTB_RESAMPLES = 100


def entries(bench, files, scores_dir: Path):
    out = []
    for f in files:
        out += published_entries(bench) if f == "published" else read_scores(scores_dir / f)
    return out


def f3(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def interval(lo, hi) -> str:
    return f"[{f3(lo)}, {f3(hi)}]"


def tables(scores_dir: Path, resamples: int, out: Path) -> None:
    rows = []
    for name, (files, metrics, baseline, within) in TABLES.items():
        bench = load_benchmark(name)
        scores = entries(bench, files, scores_dir)
        if metrics:
            scores = [s for s in scores if s.metric in metrics]
        start = time.process_time()
        n = min(resamples, PTB_RESAMPLES) if name == "nasbench-nlp-ptb" else resamples
        result = api.correlate(bench, scores, ci_resamples=n, baseline=baseline, resamples=n, within=within, seed=0)
        print(f"\n### {name} (within {' x '.join(within)}, baseline `{baseline}`; {n} resamples, "
              f"{time.process_time() - start:.0f} CPU s)\n")
        print("| metric | n | global tau [95%] | tau - baseline [paired 95%] | within tau [95%] (groups) "
              "| within - baseline [paired 95%] |")
        print("|---|---|---|---|---|---|")
        for r in result:
            d = r.as_dict()
            base = r.metric == baseline
            print(f"| `{r.metric}` | {d['n']} | {f3(d['kendall_tau'])} {interval(d['kendall_tau_low'], d['kendall_tau_high'])} "
                  f"| {'(baseline)' if base else f3(d['tau_minus_baseline']) + ' ' + interval(d['tau_minus_baseline_low'], d['tau_minus_baseline_high'])} "
                  f"| {f3(d['within_tau'])} {interval(d['within_low'], d['within_high'])} ({d['within_groups']}) "
                  f"| {'(baseline)' if base else f3(d['within_minus_baseline']) + ' ' + interval(d['within_minus_baseline_low'], d['within_minus_baseline_high'])} |")
            groups = {"/".join(map(str, g.group)): (g.n, g.kendall_tau) for g in r.within.per_group}
            rows.append({"benchmark": name, "within": "x".join(within), "baseline": baseline, **d,
                         "per_group": json.dumps(groups)})
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "signals.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


#: (benchmark, score files, learner, options) of each combination fitted
COMBINATIONS = ([("nasbench-bert", ["bert.csv"], learner, {}) for learner in ("linear", "boosted")]
                + [("nasbench-bert", ["published"], learner, {}) for learner in ("linear", "boosted")]
                + [(f"lts:{s}", [f"lts_{s}.csv"], learner, {}) for s in LTS for learner in ("linear", "boosted")]
                + [("nasbench-nlp-ptb", ["published"], learner, {}) for learner in ("linear", "boosted")]
                + [("nasbench-nlp-ptb", ["published"], "linear", {"raw_target": True, "repeats": 3})])


def _within_out_of_fold(bench, fit) -> dict:
    """Kendall tau of the out-of-fold predictions inside each (layers, hidden size) cell of NAS-Bench-BERT."""
    from scipy.stats import kendalltau

    from trainfree.spaces import get_space

    space = get_space(bench.space)
    cells: dict = {}
    for r, p in zip(fit.records, fit.cv.predictions):
        f = space.factors(r.arch)
        cells.setdefault(f"{f['num_layers']}x{f['hidden_size']}", []).append((p, r.target))
    return {k: (len(v), float(kendalltau([p for p, _ in v], [t for _, t in v]).statistic))  # GLUE: higher is better
            for k, v in sorted(cells.items())}


def combinations(scores_dir: Path, out: Path) -> None:
    results = []
    print("\n| benchmark | inputs | learner | n (distinct) | held-out tau, mean +- sd over folds | pooled out-of-fold tau "
          "| CPU s |")
    print("|---|---|---|---|---|---|---|")
    for name, files, learner, options in COMBINATIONS:
        bench = load_benchmark(name)
        start = time.process_time()
        if files == ["published"]:
            fit = api.combine(bench, published="shipped", learner=learner, **options)
        else:
            fit = api.combine(bench, entries(bench, files, scores_dir), learner=learner, source=files[0], **options)
        cv = fit.cv
        label = ("published columns" if files == ["published"] else files[0]) + f" ({len(fit.model.features)})"
        label += ", raw target, 3 repeats" if options else ""
        print(f"| {name} | {label} | {learner} | {cv.n} ({cv.groups}) | {cv.mean_tau:.3f} +- {cv.sd_tau:.3f} "
              f"| {cv.pooled_tau:.3f} | {time.process_time() - start:.0f} |")
        cells = _within_out_of_fold(bench, fit) if name == "nasbench-bert" else {}
        if cells:
            print("|  | out-of-fold predictions within num_layers x hidden_size: "
                  + "; ".join(f"{k} tau {t:.3f} (n {n})" for k, (n, t) in cells.items()) + " | | | | | |")
        results.append({"benchmark": name, "within_out_of_fold": cells, "inputs": files, "features": fit.model.features, "learner": learner,
                        "options": options, "hyperparameters": fit.model.hyperparameters, "cv": cv.as_dict()})
    print(f"\n{len(results)} combinations fitted (each one comparison against its inputs and the baseline).")
    (out / "combine.json").write_text(json.dumps(results, indent=1) + "\n")


#: the single input each combination is compared with, on the same outer folds
BASELINES = {"nasbench-nlp-ptb": "hidden_cov", "nasbench-bert": "params", **{f"lts:{s}": "decoder_params" for s in LTS}}


def baselines(scores_dir: Path) -> None:
    """The baseline input's held-out tau on the very outer folds (first repeat, seed 0) the combinations
    were scored on: nothing is fitted, so this is the figure to set beside a combination's fold mean."""
    import numpy as np

    from trainfree.evaluation.combine import feature_table, grouped_folds
    from trainfree.evaluation.correlation import correlate_values
    from trainfree.metrics import get_metric
    from trainfree.spaces import get_space

    print("\n| benchmark | inputs | baseline | baseline tau on the same 5 outer folds, mean +- sd |")
    print("|---|---|---|---|")
    for name, files, learner, options in COMBINATIONS:
        if learner != "linear" or options:
            continue
        bench = load_benchmark(name)
        scores = published_entries(bench) if files == ["published"] else entries(bench, files, scores_dir)
        features, records, x, _ = feature_table(bench, scores)
        base = BASELINES[name]
        if base not in features:
            continue
        space = get_space(bench.space)
        folds = grouped_folds([space.arch_id(r.arch) for r in records], 5, [0, 0])
        v = x[:, features.index(base)]
        t = np.array([r.target for r in records])
        taus = [correlate_values(v[folds == f], t[folds == f], higher_is_better=get_metric(base).higher_is_better,
                                 target_lower_is_better=bench.lower_is_better).kendall_tau for f in range(5)]
        print(f"| {name} | {files[0]} | `{base}` | {np.mean(taus):.3f} +- {np.std(taus, ddof=1):.3f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scores-dir", type=Path, required=True)
    p.add_argument("--part", choices=["tables", "combine", "baselines", "both"], default="both")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--only", default=None, help="comma-separated benchmarks to redo (e.g. lts:random_GPT2_wt103); "
                   "signals.csv and combine.json under --out then hold only those")
    args = p.parse_args()
    if args.only:
        only = set(args.only.split(","))
        unknown = only - set(TABLES) - {c[0] for c in COMBINATIONS}
        if unknown:
            p.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {', '.join(TABLES)}")
        for name in set(TABLES) - only:
            del TABLES[name]
        COMBINATIONS[:] = [c for c in COMBINATIONS if c[0] in only]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part in ("tables", "both"):
        tables(args.scores_dir, args.resamples, args.out)
    if args.part in ("combine", "both"):
        combinations(args.scores_dir, args.out)
    if args.part in ("baselines", "both"):
        baselines(args.scores_dir)


if __name__ == "__main__":
    main()
