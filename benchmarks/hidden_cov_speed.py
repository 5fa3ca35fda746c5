"""Architectures scored per second with `hidden_cov` on the paper-size NAS-Bench-NLP model (batch 50 x 70).

Runs the real scoring loop on the first N distinct shipped PTB architectures, in-process and with
1 and 2 worker processes, and prints the rate and peak resident memory.

    python benchmarks/hidden_cov_speed.py [--n 60] [--metrics hidden_cov]
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
    parser.add_argument("--n", type=int, default=60, help="distinct architectures to score")
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
    for label, jobs, executor in (("in-process", 1, "local"), ("1 worker", 1, "process"), ("2 workers", 2, "process")):
        start = time.perf_counter()
        rows = score_architectures("nasbench-nlp", items, metrics, settings, jobs=jobs, executor=executor).rows
        wall = time.perf_counter() - start
        ok = sum(r.status == "ok" for r in rows)
        print(f"{label:10s}: {len(items) / wall:6.2f} architectures/s ({wall:.1f} s wall, {ok}/{len(rows)} ok)")
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: driver {self_mb:.0f} MiB, largest worker {child_mb:.0f} MiB")


if __name__ == "__main__":
    main()
