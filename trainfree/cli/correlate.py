"""`trainfree correlate`: correlate scores with a benchmark's trained results."""
from __future__ import annotations

from pathlib import Path

from trainfree.cli._common import check_outputs, int_list, name_list, positive, print_table, seed, write_csv


def add_parser(sub) -> None:
    p = sub.add_parser("correlate", help="correlate scores with a benchmark's trained results")
    p.add_argument("--benchmark", required=True, help="the benchmark the scores were computed on")
    p.add_argument("--scores", type=Path, required=True, help="a scores CSV written by `trainfree score`")
    p.add_argument("--output", type=Path, default=None, help="also write the table as CSV")
    p.add_argument("--ci", action="store_true", help="add 95%% percentile-bootstrap intervals")
    p.add_argument("--resamples", type=positive, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--bootstrap-seed", type=seed, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--topk", type=int_list, default=[], help="comma-separated k for top-k precision, e.g. 10,50")
    p.add_argument("--baseline", default=None,
                   help="a metric among the scores (e.g. params): add each metric's tau minus the baseline's, "
                        "with a paired-bootstrap 95%% interval")
    p.add_argument("--within", type=name_list, default=None, metavar="FACTOR[,FACTOR]",
                   help="also the Kendall tau inside each group of architectures sharing these factors (names from "
                        "the space's factors, e.g. num_layers,hidden_size; or params:N, the parameter count in N "
                        "quantile bins), its size-weighted mean and a bootstrap 95%% interval")
    p.add_argument("--split", action="store_true",
                   help="scores under several settings fingerprints (e.g. an export of several seeds): one table "
                        "per fingerprint (without it such input is refused)")
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree import api
    from trainfree.scores import read_scores

    check_outputs(args, args.output)
    options = dict(ci_resamples=args.resamples if args.ci else 0, topk=args.topk, seed=args.bootstrap_seed,
                   baseline=args.baseline, resamples=args.resamples, within=args.within)
    scores = read_scores(args.scores)
    if args.split:
        groups = api.correlate_by_fingerprint(args.benchmark, scores, **options)
    else:
        groups = {"": api.correlate(args.benchmark, scores, **options)}
    columns = ["metric", "n", "dropped", "kendall_tau", "spearman", "pearson"]
    if args.ci:
        columns += [f"{s}_{e}" for s in ("kendall_tau", "spearman", "pearson") for e in ("low", "high")]
    columns += [f"top{k}_precision" for k in args.topk]
    if args.baseline:
        columns += ["tau_minus_baseline", "tau_minus_baseline_low", "tau_minus_baseline_high"]
    if args.within:
        columns += ["within_tau", "within_low", "within_high", "within_n", "within_groups", "within_skipped",
                    "within_undefined"]
        columns += ["within_minus_baseline", "within_minus_baseline_low", "within_minus_baseline_high"] \
            if args.baseline else []
    results = []
    for fingerprint, group in groups.items():
        rows = [r.as_dict() for r in group]
        if args.split:
            print(f"settings fingerprint {fingerprint or '(none)'}:")
            for r in rows:
                r["fingerprint"] = fingerprint
        print_table(rows, columns)
        results += rows
    print("(signed: positive = the metric ranks better-trained architectures higher)")
    if args.baseline:
        print(f"(tau_minus_baseline: Kendall tau minus {args.baseline}'s on the architectures both scored, with a "
              f"95% paired-bootstrap interval; an interval above 0 means the metric ranks better)")
    if args.within:
        print(f"(within_tau: Kendall tau inside each group of equal {' x '.join(args.within)}, mean weighted by group "
              f"size, 95% bootstrap interval resampling within groups; within_skipped: groups under 3 architectures, "
              f"within_undefined: groups where the metric or target is constant; compare with kendall_tau: a metric "
              f"that only tracks these factors has within_tau near 0"
              + (f"; within_minus_baseline: minus {args.baseline}'s, paired)" if args.baseline else ")"))
    if args.output:
        write_csv(args.output, results, (["fingerprint"] if args.split else []) + columns)
    return 0
