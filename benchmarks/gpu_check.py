"""CUDA figures for NAS-Bench-NLP hidden covariance: the per-architecture path against the batched one.

For a machine with a GPU (none was at hand when this was written: docs/performance.md marks the
GPU figures as not yet measured). On the first N distinct shipped PTB cells at the paper's protocol,
prints: seconds per architecture of the per-architecture path on the GPU (first M cells), of the
batched path for each batch size (all N), their ratio, the agreement of the batched GPU values with
the per-architecture GPU and CPU values and with the published column, and the peak GPU memory.
Writes the same as JSON to $OUT/gpu_check.json when OUT is set. About a minute on one GPU.

    python benchmarks/gpu_check.py [--n 256] [--m 32] [--batch 16,64,128] [--full]

--full also times `trainfree score --benchmark nasbench-nlp-ptb --metrics hidden_cov` with default
flags (every shipped run) on this machine.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from hidden_cov_speed import distinct_cells  # this folder: the script's own, on sys.path

from trainfree.benchmarks import load_benchmark
from trainfree.benchmarks.published import load_published
from trainfree.config import ScoreSettings
from trainfree.spaces.nasbench_nlp._batched_metrics import hidden_cov_batch
from trainfree.outcomes import score_one
from trainfree.spaces import get_space

COLUMN = "Layer 1 Hidden Covariance"


def _rel_diffs(a: list[float], b: list[float]) -> list[float]:
    return [abs(x - y) / abs(y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]


def _summary(diffs: list[float], nan_a: int, nan_b: int) -> dict:
    return {"compared": len(diffs), "median_rel_diff": statistics.median(diffs) if diffs else None,
            "max_rel_diff": max(diffs) if diffs else None, "over_1e-5": sum(d > 1e-5 for d in diffs),
            "nonfinite": [nan_a, nan_b]}


def _timed(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="distinct cells for the batched path")
    parser.add_argument("--m", type=int, default=32, help="of which scored per architecture (GPU and CPU)")
    parser.add_argument("--batch", default="16,64,128")
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (run this on a machine with a GPU)", file=sys.stderr)
        return 2
    bench = load_benchmark("nasbench-nlp-ptb")
    published = load_published()
    items = distinct_cells(bench, args.n)
    archs = [a for _, a in items]
    space = get_space("nasbench-nlp")
    gpu, cpu = ScoreSettings(device="cuda"), ScoreSettings(device="cpu")
    device = torch.device("cuda")
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cells": len(archs)}

    hidden_cov_batch(archs[:4], gpu, device)  # warm: CUDA context, kernels, the stream, the corpus
    score_one(space, archs[0], ["hidden_cov"], gpu)
    per_arch, t = _timed(lambda: [score_one(space, a, ["hidden_cov"], gpu)[0].value for a in archs[: args.m]])
    report["per_arch_gpu_s"] = t / args.m
    start = time.perf_counter()
    per_arch_cpu = [score_one(space, a, ["hidden_cov"], cpu)[0].value for a in archs[: args.m]]
    report["per_arch_cpu_s"] = (time.perf_counter() - start) / args.m

    report["batched"] = {}
    values: list[float] = []
    for b in (int(x) for x in args.batch.split(",")):
        torch.cuda.reset_peak_memory_stats()

        def run(b=b):
            return [v for s in range(0, len(archs), b) for v in hidden_cov_batch(archs[s: s + b], gpu, device)]

        values, t = _timed(run)
        report["batched"][b] = {"s_per_arch": t / len(archs), "speedup_over_per_arch_gpu": report["per_arch_gpu_s"] / (t / len(archs)),
                                "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2 ** 20}
    nan = lambda xs: sum(not math.isfinite(x) for x in xs)  # noqa: E731
    m = args.m
    report["agreement"] = {
        "batched_gpu_vs_per_arch_gpu": _summary(_rel_diffs(values[:m], per_arch), nan(values[:m]), nan(per_arch)),
        "batched_gpu_vs_per_arch_cpu": _summary(_rel_diffs(values[:m], per_arch_cpu), nan(values[:m]), nan(per_arch_cpu)),
    }
    pub = [published[n][COLUMN] if n in published else math.nan for n, _ in items]
    report["agreement"]["batched_gpu_vs_published"] = _summary(_rel_diffs(values, pub), nan(values), nan(pub))

    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "trainfree", "score", "--benchmark", "nasbench-nlp-ptb", "--metrics",
                   "hidden_cov", "--no-store", "--quiet", "--output", str(Path(tmp) / "full.csv")]
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            report["full_benchmark"] = {"wall_s": time.perf_counter() - start, "rc": done.returncode,
                                        "stdout": done.stdout.strip()[-300:], "stderr": done.stderr.strip()[-300:]}

    text = json.dumps(report, indent=2)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
