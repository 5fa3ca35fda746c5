"""Architectures scored per second with `hidden_cov` on the paper-size NAS-Bench-NLP model (batch 50 x 70).

Runs the real scoring loop on the first N distinct shipped PTB architectures as `--jobs 1` (in-process,
one thread), one worker process, `--jobs 2` (two worker processes of one thread each) and
`--jobs 1 --threads 2`, and prints the rates, the `--jobs 2` over `--jobs 1` speed-up and the peak
resident memory.

    python benchmarks/hidden_cov_speed.py [--n 200] [--metrics hidden_cov]
"""
from __future__ import annotations

import argparse
import resource
import time

import torch

from trainfree.benchmarks import load_benchmark
from trainfree.config import ScoreSettings
from trainfree.executors import default_jobs
from trainfree.runner import score_architectures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="distinct architectures to score")
    parser.add_argument("--metrics", default="hidden_cov")
    args = parser.parse_args()
    metrics = args.metrics.split(",")
    bench = load_benchmark("nasbench-nlp-ptb")
    seen, items = set(), []
    for r in bench.records:
        if r.arch.arch_id not in seen:
            seen.add(r.arch.arch_id)
            items.append((r.name, r.arch))
        if len(items) == args.n:
            break
    settings = ScoreSettings(device="cpu")
    print(f"{len(items)} distinct PTB architectures, metrics {metrics}, batch {settings.batch_size} x "
          f"{settings.seq_len}, paper size, {default_jobs()} cores, torch {torch.__version__}")
    score_architectures("nasbench-nlp", items[:2], metrics, settings)  # warm caches (corpus, imports)
    rates = {}
    for label, jobs, executor, threads in (("--jobs 1 (in-process, 1 thread)", 1, "local", 1),
                                           ("1 worker process, 1 thread", 1, "process", 1),
                                           ("--jobs 2 (2 workers, 1 thread each)", 2, "process", 1),
                                           ("--jobs 1 --threads 2 (in-process)", 1, "local", 2)):
        start = time.perf_counter()
        rows = score_architectures("nasbench-nlp", items, metrics, settings, jobs=jobs, executor=executor,
                                   threads=threads).rows
        wall = time.perf_counter() - start
        ok = sum(r.status == "ok" for r in rows)
        rates[label] = len(items) / wall
        print(f"{label:37s}: {rates[label]:6.2f} architectures/s ({wall:.1f} s wall, {ok}/{len(rows)} ok)", flush=True)
    labels = list(rates)
    print(f"speed-up of --jobs 2 over --jobs 1: {rates[labels[2]] / rates[labels[0]]:.2f}x "
          f"(over --jobs 1 --threads 2: {rates[labels[2]] / rates[labels[3]]:.2f}x)")
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: driver {self_mb:.0f} MiB, largest worker {child_mb:.0f} MiB")


if __name__ == "__main__":
    main()
