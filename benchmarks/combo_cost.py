"""The cost of the shipped recurrent combinations against hidden covariance alone, per cell, as a ratio
measured in one run: the same NAS-Bench-NLP cells scored with each metric set in turn (no store, no
shipped values, one job), repeated, alternating the order.

    python benchmarks/combo_cost.py [--cells 50] [--repeats 3] [--threads 1]

Prints the median seconds per cell of each set with its spread (min-max over repeats) and the median
ratio to hidden covariance alone.
"""
from __future__ import annotations

import argparse
import statistics
import time

SETS = {"hidden_cov": ["hidden_cov"], "hc3": ["hidden_cov", "hidden_cov_l2", "hidden_cov_l3"],
        "rnn_forward_combo": ["rnn_forward_combo"], "rnn_paper_combo": ["rnn_paper_combo"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sets", default="hidden_cov,hc3,rnn_forward_combo",
                        help="comma-separated: " + ", ".join(SETS) + " (hc3: hidden covariance of layers 1-3)")
    args = parser.parse_args()
    import torch

    from trainfree import api
    from trainfree.benchmarks import load_benchmark

    torch.set_num_threads(args.threads)
    bench = load_benchmark("nasbench-nlp-ptb")
    from trainfree.spaces import get_space

    seen, archs = set(), []

    space = get_space(bench.space)
    for r in bench.records:  # the first distinct cells, in the benchmark's order
        a = space.arch_id(r.arch)
        if a not in seen:
            seen.add(a)
            archs.append(r.arch)
        if len(archs) == args.cells:
            break
    settings = api.default_settings(bench)  # the paper's settings, as the combinations were fitted under
    chosen = args.sets.split(",")
    times = {name: [] for name in chosen}
    for rep in range(args.repeats):
        order = chosen if rep % 2 == 0 else list(reversed(chosen))
        for name in order:
            start = time.perf_counter()
            run = api.score(space=bench.space, archs=archs, metrics=SETS[name], settings=settings, shipped=False,
                            jobs=1)
            times[name].append((time.perf_counter() - start) / len(archs))
            assert len(run.rows) == len(archs)
    base = statistics.median(times["hidden_cov"]) if "hidden_cov" in times else None
    print(f"{len(archs)} NAS-Bench-NLP PTB cells, {args.repeats} repeats, {args.threads} thread(s), one job, "
          f"no store")
    for name in chosen:
        med = statistics.median(times[name])
        ratio = f"  x{med / base:.2f} hidden_cov" if base else ""
        print(f"{name:>18}: {med:.3f} s per cell (min {min(times[name]):.3f}, max {max(times[name]):.3f}){ratio}")


if __name__ == "__main__":
    main()
