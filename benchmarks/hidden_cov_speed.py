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

With --throughput, only the scoring loop's architectures per second on the first N distinct cells,
`--jobs 1` and `--jobs 2` interleaved, R times: median, min-max and IQR of each, of the CPU seconds
per architecture, and of the `--jobs 2` / `--jobs 1` ratio (the README's and docs' speed figures come
from `python benchmarks/hidden_cov_speed.py --throughput --n 200 --repeats 5`).

    python benchmarks/hidden_cov_speed.py [--n 48] [--batch 1,2,4] [--repeats 3] [--limit 200] [--full]
    python benchmarks/hidden_cov_speed.py --throughput [--n 200] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import math
import resource
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
from trainfree.outcomes import score_many, score_one
from trainfree.runner import score_architectures
from trainfree.scores import read_scores
from trainfree.spaces import get_space

COLUMN = "Layer 1 Hidden Covariance"

# run in a fresh interpreter: the CLI's own driver, so that its peak RSS is the command's alone. Peaks are
# VmHWM (this process's own high-water mark), not ru_maxrss: Linux carries the parent's high-water mark
# across exec into ru_maxrss, so a child of a large process reports at least the parent's size (this
# script's, for the driver; the driver's, for each worker). Workers are polled while they run.
_CHILD = """
import json, os, resource, sys, threading, time
from pathlib import Path

def hwm(pid="self"):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(l.split()[1]) / 1024 for l in fh if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None

workers = {}
def watch():
    while True:
        for task in Path("/proc/self/task").iterdir():
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for pid in kids:
                try:  # a worker, once it runs its own program (before exec it shows the driver's memory)
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        if b"multiprocessing" not in fh.read():
                            continue
                except OSError:
                    continue
                v = hwm(pid)
                if v is not None:
                    workers[pid] = max(workers.get(pid, 0.0), v)
        time.sleep(0.1)

threading.Thread(target=watch, daemon=True).start()
from trainfree.cli import main
start = time.perf_counter()
rc = main(sys.argv[1:])
wall = time.perf_counter() - start
print(json.dumps({"rc": rc, "wall": wall, "driver_mib": hwm(), "worker_mib": max(workers.values(), default=0.0),
                  "driver_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
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


def spread(xs: list[float], fmt: str = ".2f") -> str:
    """median [min-max], IQR q1-q3 (the quartiles once there are four runs or more)."""
    out = f"{statistics.median(xs):{fmt}} [{min(xs):{fmt}}-{max(xs):{fmt}}]"
    if len(xs) >= 4:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
        out += f", IQR {q1:{fmt}}-{q3:{fmt}}"
    return out


def throughput(items, repeats: int) -> None:
    """Architectures per second of the real scoring loop (`score_architectures`, hidden_cov, default
    flags otherwise) on the same cells: --jobs 1 (in-process, one thread) and --jobs 2 (two worker
    processes of one thread, pool start-up included), interleaved in each repeat; the ratio is taken
    within a repeat, so a neighbour's load that comes and goes moves both sides alike."""
    settings = ScoreSettings(device="cpu")
    archs = [(name, arch) for name, arch in items]
    score_architectures("nasbench-nlp", archs[:2], ["hidden_cov"], settings)  # warm: corpus, imports, stream
    configs = (("--jobs 1 (in-process, 1 thread)", 1, "local"), ("--jobs 2 (2 workers, 1 thread each)", 2, "process"))
    rates = {label: [] for label, _, _ in configs}
    cpu = {label: [] for label, _, _ in configs}
    for r in range(repeats):
        for label, jobs, executor in configs:
            wall0, self0 = time.perf_counter(), time.process_time()
            kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            rows = score_architectures("nasbench-nlp", archs, ["hidden_cov"], settings, jobs=jobs, executor=executor,
                                       threads=1).rows
            wall = time.perf_counter() - wall0
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's workers, joined at its close
            used = time.process_time() - self0 + (kids.ru_utime - kids0.ru_utime) + (kids.ru_stime - kids0.ru_stime)
            bad = sum(row.status != "ok" for row in rows)
            rates[label].append(len(archs) / wall)
            cpu[label].append(used / len(archs))
            print(f"  repeat {r + 1}/{repeats} {label:37s}: {len(archs) / wall:6.2f} architectures/s "
                  f"({wall:.1f} s wall, {used / len(archs):.3f} CPU s per architecture"
                  + (f", {bad} not ok" if bad else "") + ")", flush=True)
    (one, _, _), (two, _, _) = configs
    print(f"{len(archs)} distinct PTB cells, hidden_cov, paper size, batch 50 x 70, {default_jobs()} cores, "
          f"{repeats} repeats: median [min-max], IQR")
    for label, _, _ in configs:
        print(f"  {label:37s}: {spread(rates[label])} architectures/s; CPU {spread(cpu[label], '.3f')} s per "
              f"architecture")
    ratios = [b / a for a, b in zip(rates[one], rates[two])]
    print(f"  speed-up of --jobs 2 over --jobs 1 (within each repeat): {spread(ratios)}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput", action="store_true",
                        help="only the architectures/s of --jobs 1 and --jobs 2 on the first --n cells, --repeats "
                             "times, with their spread (the README's speed figures)")
    parser.add_argument("--n", type=int, default=48, help="distinct cells for the path comparison (or --throughput)")
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
    if args.throughput:
        throughput(items, args.repeats)
        return
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
