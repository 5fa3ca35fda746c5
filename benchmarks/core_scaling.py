"""How much a second process can add on this machine, independent of trainfree: the same fixed
single-threaded workload (float32 matmuls of hidden-covariance size) in 1 process, then in 2 processes
at once. The ratio of throughputs is the ceiling for any ``--jobs 2`` speed-up here.

    python benchmarks/core_scaling.py [--seconds 20]
"""
from __future__ import annotations

import argparse
import multiprocessing
import time


def _work(seconds: float) -> int:
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(50, 600), torch.randn(600, 2400)
    done, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(50):
            a @ b
        done += 50
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        one = pool.apply(_work, (args.seconds,))
    with ctx.Pool(2) as pool:
        two = sum(pool.map(_work, [args.seconds] * 2))
    print(f"1 process : {one / args.seconds:8.0f} matmuls/s")
    print(f"2 processes: {two / args.seconds:8.0f} matmuls/s  ({two / one:.2f}x)")


if __name__ == "__main__":
    main()
