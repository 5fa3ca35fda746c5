"""CUDA figures: NAS-Bench-NLP hidden covariance (the per-architecture path against the batched one), and
the paper's RNN set, the NAS-Bench-BERT default set and the LTS default set scored on the GPU.

For a machine with a GPU (none has been lent so far: docs/performance.md marks the GPU figures as not yet
measured). Stage 1, on the first N distinct shipped PTB cells at the paper's protocol: seconds per
architecture of the per-architecture path on the GPU (first M cells) and on the CPU, of the batched path
for each batch size (all N), their ratio, the agreement of the batched GPU values with the per-architecture
GPU and CPU values and with the published column, and the peak GPU memory. Stage 2 (``--sets``), for each
set on its benchmark's distinct architectures (``--sets-n`` each; 0: all of them): seconds per
architecture on the device, peak memory, and each metric's agreement with the CPU values the shipped
suite holds (computed on this project's 2-core CPU machine) and with the published column where there is
one. Writes the same as JSON to $OUT/gpu_check.json when OUT is set.

    python benchmarks/gpu_check.py [--n 256] [--m 32] [--batch 16,64,128] [--full] [--sets nlp,bert,lts] [--sets-n 0]

--full also times `trainfree score --benchmark nasbench-nlp-ptb --metrics hidden_cov --recompute` with
default flags (every shipped run) on this machine. ``--device cpu`` runs every stage on the CPU (a dry
run of the script, for tests; its timings are not GPU figures).

Tolerance on a GPU: float32 kernels other than the CPU's, so values agree to rounding (relative 1e-5 for
the hidden covariances and activation distance at the paper's protocol), except where a metric amplifies
rounding: the noise variants of the Jacobian metrics (1 - |clean - noisy| and products of four scores)
differ from the published CSV by up to 1e-2 on some cells even on the CPU. TF32 is off (trainfree turns
it off for scoring), so convolutions and matmuls run in full float32.
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
from trainfree.evaluation.reproduce import PARTS, default_metrics
from trainfree.spaces.nasbench_nlp._batched_metrics import hidden_cov_batch
from trainfree.outcomes import full_float32, score_one
from trainfree.spaces import get_space

COLUMN = "Layer 1 Hidden Covariance"


def _rel_diffs(a: list[float], b: list[float]) -> list[float]:
    return [abs(x - y) / abs(y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]


def _summary(diffs: list[float], nan_a: int, nan_b: int) -> dict:
    return {"compared": len(diffs), "median_rel_diff": statistics.median(diffs) if diffs else None,
            "max_rel_diff": max(diffs) if diffs else None, "over_1e-5": sum(d > 1e-5 for d in diffs),
            "nonfinite": [nan_a, nan_b]}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn):
    _sync()
    start = time.perf_counter()
    out = fn()
    _sync()
    return out, time.perf_counter() - start


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak RSS (KiB on Linux)


SETS = {"nlp": "nasbench-nlp-ptb", "bert": "nasbench-bert", "lts": "lts:random_GPT2_wt103"}


def _set_metrics(bench) -> list[str]:
    """The NAS-Bench-NLP paper table's metrics, or the space's default set."""
    if bench.space == "nasbench-nlp":
        return list(dict.fromkeys(default_metrics("nasbench-nlp")))
    return list(get_space(bench.space).default_metrics)


def score_sets(which: list[str], n: int, device: torch.device) -> dict:
    """Each set on its benchmark's first ``n`` distinct architectures (0: all) on ``device``: time, peak
    memory, and agreement with the shipped suite's CPU values and the published columns."""
    from trainfree.api import default_settings
    from trainfree.metrics import get_metric
    from trainfree.store.shipped import read_suite

    suite = read_suite() or {"benchmarks": {}}
    out = {}
    for key in which:
        bench = load_benchmark(SETS[key])
        space = get_space(bench.space)
        names = _set_metrics(bench)
        settings = default_settings(bench).with_(device=str(device))
        archs = list({space.arch_id(r.arch): r.arch for r in bench.records}.items())
        archs = archs[:n] if n else archs
        score_one(space, archs[0][1], names, settings)  # warm: kernels, corpus, tokenizer
        _reset_peak(device)
        rows, t = _timed(lambda: [score_one(space, a, names, settings) for _, a in archs])
        entry = suite["benchmarks"].get(bench.name, {})
        index = {a: i for i, a in enumerate(entry.get("arch_ids", []))}
        published = {}
        part = next((p for p in PARTS.values() if p["space"] == bench.space), None)  # reproduce's published file
        if part is not None:
            pub = load_published(part["published"], key=part["key"])
            names_of = {space.arch_id(r.arch): r.name for r in bench.records}
            published = {a: pub.get(names_of[a], {}) for a, _ in archs}
        agreement = {}
        for j, name in enumerate(names):
            spec = get_metric(name)
            mine = [r[j].value for r in rows]
            stored = entry.get("metrics", {}).get(spec.alias_of or name, {})  # the suite lists aliases once
            if stored.get("key_version") != spec.key_version:  # values of another version are no reference
                stored = {}
            cpu = [stored["values"][index[a]] if a in index and stored.get("values") and
                   stored["values"][index[a]] is not None else math.nan for a, _ in archs]
            col = spec.published_column
            pubs = [spec.published_sign * published[a][col] if col and col in published.get(a, {}) else math.nan
                    for a, _ in archs]
            nan = lambda xs: sum(not math.isfinite(x) for x in xs)  # noqa: E731
            agreement[name] = {"vs_suite_cpu": _summary(_rel_diffs(mine, cpu), nan(mine), nan(cpu)),
                               "vs_published": _summary(_rel_diffs(mine, pubs), nan(mine), nan(pubs)) if col else None,
                               "failed": sum(r[j].status == "failed" for r in rows)}
        out[key] = {"benchmark": bench.name, "metrics": names, "architectures": len(archs),
                    "s_per_arch": t / len(archs), "total_s": t, "peak_mib": _peak_mib(device),
                    "agreement": agreement}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="distinct cells for the batched path")
    parser.add_argument("--m", type=int, default=32, help="of which scored per architecture (GPU and CPU)")
    parser.add_argument("--batch", default="16,64,128")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--sets", default="", help="also score these sets: nlp, bert, lts (comma-separated)")
    parser.add_argument("--sets-n", type=int, default=0, help="distinct architectures per set (0: all)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                        help="cpu: a dry run of every stage on the CPU (for tests; not GPU figures)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (run this on a machine with a GPU)", file=sys.stderr)
        return 2
    bench = load_benchmark("nasbench-nlp-ptb")
    published = load_published()
    items = distinct_cells(bench, args.n)
    archs = [a for _, a in items]
    space = get_space("nasbench-nlp")
    gpu, cpu = ScoreSettings(device=args.device), ScoreSettings(device="cpu")
    device = torch.device(args.device)
    full_float32(device)  # as scoring does; the batched path below is called directly
    report: dict = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (dry run)",
                    "torch": torch.__version__, "cells": len(archs)}

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
        _reset_peak(device)

        def run(b=b):
            return [v for s in range(0, len(archs), b) for v in hidden_cov_batch(archs[s: s + b], gpu, device)]

        values, t = _timed(run)
        report["batched"][b] = {"s_per_arch": t / len(archs), "speedup_over_per_arch_gpu": report["per_arch_gpu_s"] / (t / len(archs)),
                                "peak_mib": _peak_mib(device)}
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
                   "hidden_cov", "--recompute", "--no-store", "--quiet", "--output", str(Path(tmp) / "full.csv")]
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            report["full_benchmark"] = {"wall_s": time.perf_counter() - start, "rc": done.returncode,
                                        "stdout": done.stdout.strip()[-300:], "stderr": done.stderr.strip()[-300:]}

    if args.sets:
        which = [k.strip() for k in args.sets.split(",") if k.strip()]
        unknown = sorted(set(which) - set(SETS))
        if unknown:
            parser.error(f"--sets: unknown {', '.join(unknown)} (choose from {', '.join(SETS)})")
        report["sets"] = score_sets(which, args.sets_n, device)

    text = json.dumps(report, indent=2)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
