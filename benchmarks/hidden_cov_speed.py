"""Hidden covariance on NAS-Bench-NLP PTB cells at the paper's protocol: the per-architecture path
against the batched one (``trainfree.spaces.nasbench_nlp.batched``), and what the real command costs.

1. Both paths on the same first N distinct shipped cells, in this process, one thread, interleaved
   and repeated: the median CPU seconds per architecture of each, with min-max over the repeats,
   and their ratio (CPU time of this process: on a shared machine, wall time counts the neighbours'
   work too). Then agreement: between the paths, and of each with the published column.
2. `trainfree score --benchmark nasbench-nlp-ptb --metrics hidden_cov --limit L` with default flags in a
   fresh process: wall time, peak RSS of the driver and of the largest worker.
3. With --full, the same command on the whole shipped benchmark (6,313 runs, 1,999 cells; minutes),
   its agreement with the published column.

    python benchmarks/hidden_cov_speed.py [--n 48] [--batch 1,2,4] [--repeats 3] [--limit 200] [--full]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from trainfree.benchmarks import load_benchmark
from trainfree.benchmarks.published import load_published
from trainfree.config import ScoreSettings
from trainfree.executors import default_jobs, limit_threads
from trainfree.runner import score_many, score_one
from trainfree.scores import read_scores
from trainfree.spaces import get_space

COLUMN = "Layer 1 Hidden Covariance"

# run in a fresh interpreter: the CLI's own driver, so that its peak RSS is the command's alone
_CHILD = """
import json, resource, sys, time
from trainfree.cli import main
start = time.perf_counter()
rc = main(sys.argv[1:])
wall = time.perf_counter() - start
print(json.dumps({"rc": rc, "wall": wall,
                  "driver_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""



def distinct_cells(bench, n: int) -> list:
    """The first ``n`` distinct cells of the benchmark, as (record name, architecture)."""
    seen, items = set(), []
    for r in bench.records:
        if r.arch.arch_id not in seen:
            seen.add(r.arch.arch_id)
            items.append((r.name, r.arch))
        if len(items) == n:
            break
    return items

def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def _agreement(values: dict[str, float], published: dict[str, dict[str, float]]) -> str:
    diffs = [_rel(v, published[n][COLUMN]) for n, v in values.items()
             if n in published and math.isfinite(v) and math.isfinite(published[n][COLUMN])]
    if not diffs:
        return "no published values to compare"
    over = sum(d > 1e-5 for d in diffs)
    return (f"{len(diffs)} compared, median rel. diff {statistics.median(diffs):.1e}, largest {max(diffs):.1e}, "
            f"{over} over 1e-5")


def _cli(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _command(limit: int | None, output: Path) -> list[str]:
    cmd = ["score", "--benchmark", "nasbench-nlp-ptb", "--metrics", "hidden_cov", "--no-store", "--quiet",
           "--output", str(output)]
    return cmd + (["--limit", str(limit)] if limit else [])


def compare_paths(items, batches: list[int], repeats: int, published) -> None:
    space = get_space("nasbench-nlp")
    settings = ScoreSettings(device="cpu")
    chunk = [(arch, ["hidden_cov"]) for _, arch in items]
    runs = {"per-architecture": lambda: [o for a, m in chunk for o in score_one(space, a, m, settings)]}
    for b in batches:
        runs[f"batched, {b} per pass"] = lambda b=b: score_many(space, chunk, settings, batch=b)
    runs["per-architecture"]()  # warm: the stream, the corpus, imports
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    values: dict[str, list[float]] = {}
    for _ in range(repeats):
        for label, fn in runs.items():
            start = time.process_time()
            outcomes = fn()
            cpu[label].append((time.process_time() - start) / len(chunk))
            values[label] = [o.value for o in outcomes]
    base = statistics.median(cpu["per-architecture"])
    print(f"{len(chunk)} distinct cells, paper size, batch 50 x 70, 1 thread, {repeats} repeats "
          f"(CPU seconds per architecture, median [min-max]):")
    for label, xs in cpu.items():
        med = statistics.median(xs)
        print(f"  {label:26s}: {med:.3f} s [{min(xs):.3f}-{max(xs):.3f}]   per-arch / this = {base / med:.2f}x")
    ref = values["per-architecture"]
    for label, vals in values.items():
        if label == "per-architecture":
            continue
        same = sum((a == b) or (math.isnan(a) and math.isnan(b)) for a, b in zip(vals, ref))
        diffs = [_rel(a, b) for a, b in zip(vals, ref) if math.isfinite(a) and math.isfinite(b) and a != b]
        print(f"  {label} vs per-architecture: {same}/{len(ref)} equal bit for bit"
              + (f", largest rel. diff {max(diffs):.1e}" if diffs else ""))
    names = [n for n, _ in items]
    for label in ("per-architecture", f"batched, {batches[-1]} per pass"):
        print(f"  {label} vs published: {_agreement(dict(zip(names, values[label])), published)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="distinct cells for the path comparison")
    parser.add_argument("--batch", default="1,2,4", help="architectures per batched pass to try")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=200, help="benchmark records for the command's memory run")
    parser.add_argument("--full", action="store_true", help="also time the whole shipped benchmark (minutes)")
    args = parser.parse_args()
    limit_threads(1)
    bench = load_benchmark("nasbench-nlp-ptb")
    published = load_published()
    items = distinct_cells(bench, args.n)
    print(f"{default_jobs()} cores, torch {torch.__version__}")
    compare_paths(items, [int(b) for b in args.batch.split(",")], args.repeats, published)

    with tempfile.TemporaryDirectory() as tmp:
        runs = [("first %d records" % args.limit, args.limit)] + ([("whole benchmark", None)] if args.full else [])
        for label, limit in runs:
            output = Path(tmp) / "scores.csv"
            r = _cli(_command(limit, output))
            rows = read_scores(output)
            ok = sum(row.status == "ok" for row in rows)
            print(f"`trainfree {' '.join(_command(limit, Path('OUT.csv')))}` ({label}, default flags): "
                  f"{r['wall']:.1f} s wall, {ok}/{len(rows)} ok; peak RSS driver {r['driver_mib']:.0f} MiB, "
                  f"largest worker {r['worker_mib']:.0f} MiB")
            print(f"  vs published: {_agreement({row.name: row.value for row in rows}, published)}")


if __name__ == "__main__":
    main()
