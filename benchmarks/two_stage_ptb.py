"""Metric only, training only and two-stage search on PTB at equal CPU per search, with the store of the
fidelity study (benchmarks/fidelity.py --part ptb) and its short-training runs.

--pool sample: the searches run over the fidelity sample's cells alone, so no search trains anything
new; the 10th percentile printed is the pool's. --pool whole: the searches run over the whole
benchmark (1,999 distinct cells, 10th percentile 4.68); two-stage trains the cells its search ranks
top-K that the store lacks, and training only draws its random cells from the fidelity sample (a
seeded uniform sample of the benchmark), whose runs are stored.

  nice -n 10 python benchmarks/two_stage_ptb.py --store /tmp/fid.sqlite --seeds 10 --cpu-budget 100
  nice -n 10 python benchmarks/two_stage_ptb.py --store /tmp/fid.sqlite --pool whole --seeds 10 --cpu-budget 600 \
      --k 3 --train-budget 100
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from fidelity import PARTS, distinct, sample  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--n", type=int, default=60, help="the fidelity sample's size (and seed below)")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--cpu-budget", type=float, default=100.0, help="CPU-seconds per search")
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--train-budget", type=float, default=20, help="steps (a point the fidelity run recorded)")
    p.add_argument("--strategy", default="evolution")
    p.add_argument("--pool", choices=("sample", "whole"), default="sample",
                   help="search over the fidelity sample or the whole benchmark (see above)")
    p.add_argument("--jobs", type=int, default=1, help="architectures trained at once (two-stage's top K)")
    p.add_argument("--metric-cpu", type=float, default=None, help="hidden_cov CPU-s per arch (default: measured)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "docs" / "data" / "fidelity" / "two_stage_ptb.csv")
    args = p.parse_args(argv)

    import time

    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.search.compare import compare_at_equal_cpu
    from trainfree.spaces import get_space
    from trainfree.store import Store

    bench = load_benchmark("nasbench-nlp-ptb")
    space = get_space(bench.space)
    cells = distinct(bench, space)
    ids = set(sample(cells, args.n, args.sample_seed))
    pool = bench if args.pool == "whole" else bench.only({r.name for r in bench.records if space.arch_id(r.arch) in ids})
    settings = api.default_settings(bench)
    metric_cpu = args.metric_cpu
    if metric_cpu is None:
        first = [(r.name, r.arch) for r in pool.records[:5]]
        t0 = time.process_time()
        api.score(space=space.name, archs=first, metrics=["hidden_cov"], settings=settings, jobs=1, threads=1)
        metric_cpu = (time.process_time() - t0) / len(first)
    with Store(args.store) as store:
        rows, summary = compare_at_equal_cpu(pool, "hidden_cov", args.strategy, range(args.seeds), args.cpu_budget,
                                             args.k, args.train_budget, settings, store, metric_cpu,
                                             protocol=PARTS["ptb"]["protocol"], jobs=args.jobs,
                                             checkpoint_dir=str(args.store) + "-checkpoints",
                                             train_pool=sorted(ids) if args.pool == "whole" else None)
    what = "the whole benchmark; training only draws from the fidelity sample" if args.pool == "whole" else \
        "fidelity sample"
    print(f"pool: {summary['pool']} distinct PTB cells ({what}), pool 10th percentile {summary['p10']:.4f}, "
          f"best {summary['best']:.4f}; {args.cpu_budget:g} CPU-s per search; hidden_cov {metric_cpu:.3f} CPU-s/arch, "
          f"training {summary['train_cpu_per_arch']:.1f} CPU-s/arch ({summary['protocol']}, {summary['budget']}); "
          f"seeds 0..{args.seeds - 1}")
    print("| method | setting | mean chosen test loss (sd) | mean percentile in the pool | share at or beyond the pool's p10 | CPU-s per search |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['setting']} | {r['target_mean']:.3f} ({r['target_sd']:.3f}) | "
              f"{r['percentile_mean']:.1f} | {r['share_beyond_p10']:.2f} | {r['cpu_mean']:.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
