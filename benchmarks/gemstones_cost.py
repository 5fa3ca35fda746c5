"""Time and peak memory of scoring each Gemstones shape (48M to 2.0B parameters) on this machine.

    python benchmarks/gemstones_cost.py [--metrics M1,M2] [--batch-size 16] [--seq-len 32] [--threads 2]

Each shape is scored in a fresh process (``trainfree score --space gemstones --archs ...``, no store), so
that its peak resident memory (the process's maximum RSS, from ``wait4``) is its own; the wall time
includes the process's start (imports: about 3 s) and the model's seeded build. Prints one line per
shape, smallest first, and the totals.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = "nonembedding_params,params,attn_params,ffn_params,embedding_params,depth,width,aspect_ratio,depth_width_sq," \
          "hidden_cov,activation_distance"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default=DEFAULT)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from trainfree.benchmarks import load_benchmark

    bench = load_benchmark("gemstones")
    rows = sorted(bench.records, key=lambda r: r.extra["params"])
    total = 0.0
    print(f"metrics {args.metrics}; batch {args.batch_size} x {args.seq_len}, {args.threads} threads")
    print(f"{'shape':>18} {'params':>14} {'wall s':>8} {'peak GiB':>9}  status")
    with tempfile.TemporaryDirectory() as scratch:
        for rec in rows:
            archs = Path(scratch) / "arch.jsonl"
            archs.write_text(json.dumps({"name": rec.name, "arch": rec.arch.config}) + "\n")
            start = time.perf_counter()
            with open(Path(scratch) / "err", "w+") as err:
                child = subprocess.Popen([sys.executable, "-m", "trainfree", "score", "--space", "gemstones", "--archs",
                                          str(archs), "--metrics", args.metrics, "--batch-size", str(args.batch_size),
                                          "--seq-len", str(args.seq_len), "--jobs", "1", "--executor", "local",
                                          "--threads", str(args.threads), "--no-store", "--quiet", "--output",
                                          str(Path(scratch) / "o.csv")], stdout=subprocess.DEVNULL, stderr=err)
                _, code, usage = os.wait4(child.pid, 0)
                child.returncode = os.waitstatus_to_exitcode(code)
                err.seek(0)
                message = err.read()
            wall = time.perf_counter() - start
            total += wall
            status = "ok" if child.returncode == 0 else (message.strip().splitlines() or ["?"])[-1][:80]
            print(f"{rec.name:>18} {rec.extra['params']:>14,} {wall:8.1f} {usage.ru_maxrss / 2 ** 20:9.2f}  {status}",
                  flush=True)
    print(f"total wall {total:.0f} s for {len(rows)} shapes")


if __name__ == "__main__":
    main()
