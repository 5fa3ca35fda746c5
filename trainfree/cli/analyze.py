"""`trainfree analyze`: analyse a benchmark's search space and find a shrinking rule from the data."""
from __future__ import annotations

from pathlib import Path

from trainfree.cli._common import invocation, positive, write_csv
from trainfree.errors import TrainfreeError


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="analyse a benchmark's search space and find a shrinking rule from the data")
    p.add_argument("--benchmark", required=True, help="a shipped name (e.g. nasbench-bert) or a benchmark file")
    p.add_argument("--target", default=None, help="NAS-Bench-BERT: glue (default) or a task (cola, mnli, ...)")
    p.add_argument("--min-keep", type=float, default=0.25, help="smallest share of architectures a rule keeps (default 0.25)")
    p.add_argument("--max-conditions", type=positive, default=3, help="most conditions in the rule (default 3)")
    p.add_argument("--output-dir", default="results", help="where to write NAME.csv and NAME.md (default results/)")
    p.add_argument("--name", default="analysis", help="output file stem (default analysis)")
    p.set_defaults(func=run)


def print_factor_table(rows: list[dict], target: str, width: int = 110) -> None:
    """One line (wrapped between levels) per factor: each level's mean target, sd and count."""
    print(f"factors (mean {target} ± sd (n) per level; per layer: each layer carries its architecture's target):")
    factors: dict[tuple, list[dict]] = {}
    for r in rows:
        factors.setdefault((r["scope"], r["factor"]), []).append(r)
    indent = max(len(f) for _, f in factors) + 12
    for (scope, factor), levels in factors.items():
        levels = sorted(levels, key=lambda r: (not isinstance(r["level"], (int, float)), r["level"]
                                               if isinstance(r["level"], (int, float)) else str(r["level"])))
        line = ("  " + factor + (" (layer)" if scope == "layer" else "")).ljust(indent)
        for i, r in enumerate(levels):
            item = f"{r['level']}: {r['mean']:.3f} ± {r['sd']:.3f} ({r['n']})" + ("," if i < len(levels) - 1 else "")
            if len(line) + len(item) > width and len(line) > indent:
                print(line.rstrip())
                line = " " * indent
            line += item + " "
        print(line.rstrip())


def run(args) -> int:
    from trainfree.benchmarks import load_benchmark
    from trainfree.evaluation.analysis import BERT_CAVEAT, factor_table, induce_rule, to_markdown
    from trainfree.scores import atomic_write

    bench = load_benchmark(args.benchmark, target=args.target)
    if not 0 < args.min_keep <= 1:
        raise TrainfreeError(f"--min-keep must be in (0, 1], got {args.min_keep}")
    table = factor_table(bench)
    rule = induce_rule(bench, min_keep=args.min_keep, max_conditions=args.max_conditions)
    print(f"{bench.name}: {len(bench)} architectures, target {bench.target}")
    if rule.conditions:
        print("rule: keep " + " and ".join(str(c) for c in rule.conditions))
    else:
        print("rule: none (no condition separates the architectures significantly)")
    print(f"kept {rule.kept}/{rule.total}, mean {rule.kept_mean:.3f}, population median {rule.population_median:.3f}; "
          f"rule score Kendall tau {rule.kendall_tau:.3f}, Spearman {rule.spearman:.3f}; top-k inside: "
          + ", ".join(f"top-{k} {v:.2f}" for k, v in rule.topk_hits.items()))
    if bench.space == "nasbench-bert":
        print(BERT_CAVEAT)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"scope": r.scope, "factor": r.factor, "level": r.level, "n": r.n, "mean": r.mean, "sd": r.sd} for r in table]
    print_factor_table(rows, bench.target)
    write_csv(out / f"{args.name}.csv", rows, ["scope", "factor", "level", "n", "mean", "sd"])
    command = invocation("analyze", "analyze")
    atomic_write(out / f"{args.name}.md", lambda fh: fh.write(to_markdown(bench, table, rule, command)))
    print(f"wrote {out / (args.name + '.csv')} and {out / (args.name + '.md')}")
    return 0
