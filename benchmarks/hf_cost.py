"""The default metric set's cost per architecture on an hf space at its default batch (16 x 32 WordPiece
tokens of WikiText-2 test, the full model): wall and CPU (process) seconds of build + every default
metric on one probe, as ``trainfree score`` runs them, over several sampled architectures and the
space's largest one; then the peak resident memory of the process. Goal: <= 1 s per architecture
(median) on 2 cores, i.e. two workers of one thread each. On a shared machine wall time is inflated by the others' load; CPU seconds less.

    python benchmarks/hf_cost.py [--space hf-llama] [--n 8] [--threads 1] [--seed 0]
"""
from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import time

import numpy as np

from trainfree.executors import limit_threads
from trainfree.outcomes import score_one
from trainfree.spaces import get_space


def largest(space):
    """The architecture with the most parameters among every one that meets the constraints."""
    spec = space.spec
    best, best_n = None, -1
    for values in itertools.product(*spec.searched.values()):
        config = dict(zip(spec.searched, values))
        if space.violation(config) is None:
            n = space.params_of(config)
            if n > best_n:
                best, best_n = config, n
    return space.from_json(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="hf-llama")
    parser.add_argument("--n", type=int, default=8, help="sampled architectures (plus the largest)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, as each of trainfree's worker processes runs; --jobs 2 uses 2 cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the architecture draws")
    args = parser.parse_args()
    limit_threads(args.threads)
    space = get_space(args.space)
    settings = space.default_settings().with_(device="cpu")
    metrics = list(space.default_metrics)
    rng = np.random.default_rng(args.seed)
    archs = [("largest", largest(space))] + [(f"sample {i}", space.sample(rng)) for i in range(args.n)]
    score_one(space, space.example(), metrics, settings)  # warm-up: imports, tokenised corpus
    print(f"{args.space}: default metrics {', '.join(metrics)}; batch {settings.batch_size} x {settings.seq_len} "
          f"{settings.corpus} {settings.split}; {args.threads} threads")
    walls, cpus = [], []
    for label, arch in archs:
        wall, cpu = time.perf_counter(), time.process_time()
        outcomes = score_one(space, arch, metrics, settings)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        bad = [o.metric for o in outcomes if o.status != "ok"]
        print(f"  {label:9s} {space.params_of(arch.config) / 1e6:5.2f} M params  wall {wall:5.2f} s  CPU {cpu:5.2f} s"
              + (f"  (not ok: {', '.join(bad)})" if bad else "") + f"  {arch.canonical_json()}")
        if label != "largest":
            walls.append(wall)
            cpus.append(cpu)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"median over {len(walls)} sampled: wall {statistics.median(walls):.2f} s, CPU {statistics.median(cpus):.2f} s "
          f"per architecture (goal <= 1 s on 2 cores); peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
