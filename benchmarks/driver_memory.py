"""The driver's peak memory against the number of records scored: it should not grow with the benchmark.

`trainfree score --benchmark nasbench-nlp-ptb --size tiny --metrics hidden_cov,params --jobs 2 --no-store
--quiet --limit N` in a fresh interpreter for each N (tiny models: the workers' cost is small and the
driver's share shows), printing the driver's own peak RSS (VmHWM), its peak anonymous memory (sampled),
and the largest worker's. For comparison, with --hold-rows, the same records through ``api.score``
without a sink, every row kept in a list and written afterwards (what `score` did before it streamed).
Peaks are VmHWM, not ru_maxrss (see ``hidden_cov_speed._CHILD``: Linux carries a parent's high-water
mark across exec into ru_maxrss).

    python benchmarks/driver_memory.py [--n 30,100,300,1000,all] [--hold-rows]
    python benchmarks/driver_memory.py --heap [--n all]    # Python heap of rows held vs streamed, in-process
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hidden_cov_speed import _CHILD

# anonymous memory (the heap: rows, records, results), sampled, beside the VmHWM the child reports
_ANON = """
import threading, time
anon = [0.0]
def sample_anon():
    while True:
        with open("/proc/self/status") as fh:
            kb = next(int(l.split()[1]) for l in fh if l.startswith("RssAnon:"))
        anon[0] = max(anon[0], kb / 1024)
        time.sleep(0.05)
threading.Thread(target=sample_anon, daemon=True).start()
"""

# the rows-in-a-list path, for --hold-rows: api.score returns every row, then the CSV is written
_HOLD = """
import sys
def main(argv):
    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.scores import write_scores
    limit, out = int(argv[argv.index("--limit") + 1]) if "--limit" in argv else None, argv[argv.index("--output") + 1]
    bench = load_benchmark("nasbench-nlp-ptb")
    settings = api.default_settings(bench).with_(size="tiny")
    run = api.score(bench, ["hidden_cov", "params"], settings, limit=limit, jobs=2)
    write_scores(out, run.rows)
    return 0
"""


def _child(hold: bool) -> str:
    code = _ANON + _CHILD.replace("from trainfree.cli import main\n", _HOLD if hold else "from trainfree.cli import main\n")
    return code.replace('"driver_maxrss_mib"', '"anon_mib": anon[0], "driver_maxrss_mib"')


def run(n: int | None, output: Path, hold: bool) -> dict:
    cmd = ["score", "--benchmark", "nasbench-nlp-ptb", "--size", "tiny", "--metrics", "hidden_cov,params", "--jobs",
           "2", "--no-store", "--quiet", "--output", str(output)] + (["--limit", str(n)] if n else [])
    out = subprocess.run([sys.executable, "-c", _child(hold), *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def python_heap(records: int | None) -> None:
    """tracemalloc's peak of the scoring loop in this process (params only, in-process, tiny models):
    every row held in a list against rows handed to a sink, and the difference per row."""
    import tracemalloc

    from trainfree.benchmarks import load_benchmark
    from trainfree.runner import score_architectures
    from trainfree.spaces import get_space

    bench = load_benchmark("nasbench-nlp-ptb").head(records)
    items = [(r.name, r.arch) for r in bench.records]
    settings = get_space("nasbench-nlp").tiny_settings()
    metrics = ["params", "nonembedding_params"]
    score_architectures("nasbench-nlp", items, metrics, settings)  # warm: caches, recipes' ids
    peaks = {}
    for label, sink in (("list", None), ("sink", lambda row: None)):
        tracemalloc.start()
        score_architectures("nasbench-nlp", items, metrics, settings, sink=sink)
        peaks[label] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    rows = len(items) * len(metrics)
    print(f"in-process Python heap peak, {len(items)} records x {len(metrics)} metrics = {rows} rows: rows in a list "
          f"{peaks['list'] / 2**20:.1f} MiB, streamed to a sink {peaks['sink'] / 2**20:.1f} MiB "
          f"({(peaks['list'] - peaks['sink']) / rows:.0f} bytes per row held)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="30,100,300,1000,all", help="record counts (all: the 6,313 shipped runs)")
    parser.add_argument("--hold-rows", action="store_true", help="also run each N through the rows-in-a-list path")
    parser.add_argument("--heap", action="store_true", help="only the in-process Python heap of list vs sink, "
                                                            "for the largest N")
    args = parser.parse_args()
    counts = [None if n == "all" else int(n) for n in args.n.split(",")]
    if args.heap:
        python_heap(counts[-1])
        return
    print("tiny PTB cells, metrics hidden_cov,params, --jobs 2, --no-store; peak MiB (VmHWM), anon = heap sampled")
    print(f"{'records':>8s} {'path':>10s} {'wall s':>7s} {'driver':>7s} {'anon':>6s} {'worker':>7s} "
          f"{'ru_maxrss':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            for hold in ([False, True] if args.hold_rows else [False]):
                r = run(n, Path(tmp) / "s.csv", hold)
                with open(Path(tmp) / "s.csv") as fh:
                    rows = sum(1 for _ in fh) - 1
                print(f"{rows // 2:8d} {'list' if hold else 'streamed':>10s} {r['wall']:7.1f} {r['driver_mib']:7.0f} "
                      f"{r['anon_mib']:6.0f} {r['worker_mib']:7.0f} {r['driver_maxrss_mib']:9.0f}", flush=True)


if __name__ == "__main__":
    main()
