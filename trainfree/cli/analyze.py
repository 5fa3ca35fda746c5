"""`trainfree analyze`: analyse a benchmark's search space and find a shrinking rule from the data."""
from __future__ import annotations

from pathlib import Path

from trainfree.cli._common import check_outputs, invocation, positive, write_csv


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="analyse a benchmark's search space and find a shrinking rule from the data")
    p.add_argument("--benchmark", required=True, help="a shipped name (e.g. nasbench-bert) or a benchmark file")
    p.add_argument("--target", default=None, help="NAS-Bench-BERT: glue (default) or a task (cola, mnli, ...)")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="a split is kept only if it beats the permutation null of the best of all candidate "
                        "splits at this level (default 0.01)")
    p.add_argument("--permutations", type=positive, default=999, help="permutations per test (default 999)")
    p.add_argument("--min-leaf", type=positive, default=5, help="fewest architectures on either side of a split (default 5)")
    p.add_argument("--resamples", type=int, default=100,
                   help="bootstrap refits for the rule's stability; 0 skips it (default 100)")
    p.add_argument("--analysis-seed", type=int, default=0,
                   help="seed of the permutations and resamples (default 0)")
    p.add_argument("--max-conditions", type=positive, default=3, help="most conditions in the rule (default 3)")
    p.add_argument("--output-dir", default="results", help="where to write NAME.csv and NAME.md (default results/)")
    p.add_argument("--name", default="analysis", help="output file stem (default analysis)")
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree import api
    from trainfree.files import atomic_write

    check_outputs(args, dirs={"--output-dir": args.output_dir})
    result = api.analyze(args.benchmark, target=args.target, alpha=args.alpha, permutations=args.permutations,
                         max_conditions=args.max_conditions, min_leaf=args.min_leaf, resamples=args.resamples,
                         seed=args.analysis_seed)
    print("\n".join(result.summary()))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / f"{args.name}.csv", result.table_rows(), ["factor", "level", "n", "mean", "sd"])
    command = invocation("analyze", "analyze")
    atomic_write(out / f"{args.name}.md", lambda fh: fh.write(result.markdown(command)))
    print(f"wrote {out / (args.name + '.csv')} and {out / (args.name + '.md')}")
    return 0
