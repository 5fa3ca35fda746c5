"""Seconds per architecture of each registered metric on its own (a fresh probe each time), at the
paper's protocol: paper-size NAS-Bench-NLP model, batch 50 x 70, PTB, on this machine's cores.

The model build is timed separately; each metric's figure includes the shared passes it triggers
(in a real run those are shared between metrics, so a set costs less than the sum).

    python benchmarks/metric_costs.py [--n 3] [--metrics a,b,...] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from trainfree.benchmarks import load_benchmark
from trainfree.config import ScoreSettings
from trainfree.metrics import METRICS, Probe
from trainfree.spaces import get_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3, help="distinct PTB architectures")
    parser.add_argument("--metrics", default=None, help="comma-separated (default: every nasbench-nlp metric)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.metrics.split(",") if args.metrics else [m.name for m in METRICS if "nasbench-nlp" in m.spaces]
    bench = load_benchmark("nasbench-nlp-ptb")
    archs, seen = [], set()
    for r in bench.records:
        if r.arch.arch_id not in seen:
            seen.add(r.arch.arch_id)
            archs.append(r.arch)
        if len(archs) == args.n:
            break
    space, settings = get_space("nasbench-nlp"), ScoreSettings(device="cpu")
    Probe(archs[0], space, settings).inputs  # load the corpus once
    builds = []
    for arch in archs:
        start = time.perf_counter()
        Probe(arch, space, settings).model
        builds.append(time.perf_counter() - start)
    print(f"{len(archs)} PTB architectures, batch 50 x 70, paper size, {args.threads} threads, torch {torch.__version__}")
    print(f"{'model build':28s} {statistics.median(builds):7.3f} s (median)")
    for name in names:
        times = []
        for arch in archs:
            probe = Probe(arch, space, settings)
            probe.model
            start = time.perf_counter()
            next(m for m in METRICS if m.name == name)(probe)
            times.append(time.perf_counter() - start)
        print(f"{name:28s} {statistics.median(times):7.3f} s (median)")


if __name__ == "__main__":
    main()
