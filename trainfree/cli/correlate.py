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
        show(rows, args)
        results += rows
    note("signed: positive = the metric ranks better-trained architectures higher"
         + ("; [95% percentile-bootstrap interval]" if args.ci else ""))
    if args.baseline:
        note(f"- {args.baseline}: the metric's Kendall tau minus {args.baseline}'s on the architectures both scored, "
             f"[95% paired-bootstrap interval]; above 0: the metric ranks better")
    if args.within:
        note(f"within: the Kendall tau inside each group of equal {' x '.join(args.within)}, mean weighted by group "
             f"size, [95% bootstrap interval resampling within groups]; a metric that only tracks these factors "
             f"has a within tau near 0")
    if args.output:
        write_csv(args.output, results, (["fingerprint"] if args.split else []) + columns)
        print(f"wrote every column to {args.output}")
    elif args.ci or args.baseline or args.within:
        note("--output FILE.csv writes every column: Spearman, Pearson and their intervals, group counts")
    return 0


def note(text: str, width: int = 100) -> None:
    """A footnote in parentheses, wrapped to ``width`` columns."""
    import textwrap

    print(textwrap.fill(f"({text})", width=width, subsequent_indent=" "))


def _num(x) -> str:
    return "nan" if x is None or x != x else f"{x:.3f}"


def _interval(row: dict, point: str, low: str, high: str) -> str:
    """``0.363 [0.350, 0.376]``, or the point alone where the row has no interval."""
    if row.get(low) is None:
        return _num(row.get(point))
    return f"{_num(row.get(point))} [{_num(row[low])}, {_num(row[high])}]"


def show(rows: list[dict], args) -> None:
    """What fits a terminal: a global table (n, tau, rho, top-k, minus the baseline) and, with --within, a
    table of the within-group taus; every column goes to --output."""
    table = []
    for r in rows:
        cells = {"metric": r["metric"], "n": str(r["n"]) + (f" ({r['dropped']} dropped)" if r["dropped"] else ""),
                 "tau" + (" [95% CI]" if args.ci else ""): _interval(r, "kendall_tau", "kendall_tau_low",
                                                                      "kendall_tau_high"),
                 "rho": _num(r["spearman"])}
        cells.update({f"top{k}": _num(r[f"top{k}_precision"]) for k in args.topk})
        if args.baseline:
            cells[f"- {args.baseline} [paired]"] = _interval(r, "tau_minus_baseline", "tau_minus_baseline_low",
                                                             "tau_minus_baseline_high")
        table.append(cells)
    print_table(table, list(table[0]) if table else ["metric"])
    if not args.within:
        return
    inside = []
    for r in rows:
        cells = {"metric": r["metric"], "groups": str(r["within_groups"]), "n": str(r["within_n"]),
                 "within tau [95% CI]": _interval(r, "within_tau", "within_low", "within_high")}
        if args.baseline:
            cells[f"- {args.baseline} [paired]"] = _interval(r, "within_minus_baseline", "within_minus_baseline_low",
                                                             "within_minus_baseline_high")
        inside.append(cells)
    print(f"inside groups of equal {' x '.join(args.within)}:")
    print_table(inside, list(inside[0]) if inside else ["metric"])
