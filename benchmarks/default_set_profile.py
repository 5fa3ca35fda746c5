"""What a space's default metric set costs per architecture, and where that time goes.

For N distinct architectures evenly spaced over the space's benchmark, at the paper's protocol (the
settings `trainfree score` uses), in this process and one torch thread:

1. CPU seconds per architecture of the default set on a fresh probe (model build included), median
   and min-max over the repeats. For NAS-Bench-BERT, the same with the full forward
   (``stats_pass(lean=False)``: what ran before the lean pass) interleaved with the lean one, their
   ratio, and whether every metric value is equal.
2. With --profile, cProfile's top entries (by own time) over one pass of the default set.

CPU time of this process, not wall time: on a shared machine wall time counts the neighbours' work.

    python benchmarks/default_set_profile.py [--space nasbench-bert|decoder|nasbench-nlp] [--n 8] [--repeats 3] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import io
import math
import pstats
import statistics
import time
from unittest import mock

import torch

from trainfree.benchmarks import load_benchmark
from trainfree.executors import limit_threads
from trainfree.metrics import Probe, get_metric
from trainfree.metrics import transformer
from trainfree.spaces import get_space

BENCH = {"nasbench-nlp": "nasbench-nlp-ptb", "nasbench-bert": "nasbench-bert", "decoder": "lts:random_GPT2_wt103"}


def spread_distinct(bench, n: int) -> list:
    """n distinct architectures evenly spaced over the benchmark's (the first ones are not typical:
    NAS-Bench-BERT's first eight are mostly 4 layers deep, half of the benchmark is 2)."""
    seen, archs = set(), []
    for r in bench.records:
        if r.arch.arch_id not in seen:
            seen.add(r.arch.arch_id)
            archs.append(r.arch)
    step = max(1, len(archs) // n)
    return archs[::step][:n]


def score_set(space, archs, settings, names) -> list[list[float]]:
    out = []
    for arch in archs:
        probe = Probe(arch, space, settings)
        out.append([get_metric(name)(probe) for name in names])
    return out


def _same(a: list[list[float]], b: list[list[float]]) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nasbench-bert", choices=sorted(BENCH))
    parser.add_argument("--n", type=int, default=8, help="distinct architectures")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    limit_threads(1)
    space = get_space(args.space)
    settings = space.default_settings().with_(device="cpu")
    names = list(space.default_metrics)
    archs = spread_distinct(load_benchmark(BENCH[args.space]), args.n)
    score_set(space, archs[:1], settings, names)  # warm: corpus, tokenizer, imports, weight stream

    runs = {"default set": lambda: score_set(space, archs, settings, names)}
    if args.space == "nasbench-bert":
        full = functools.partial(transformer.stats_pass, lean=False)

        def before():
            with mock.patch.object(transformer, "stats_pass", full):
                return score_set(space, archs, settings, names)

        runs = {"full forward (before)": before, "lean pass (now)": runs["default set"]}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    values = {}
    for _ in range(args.repeats):
        for label, fn in runs.items():
            start = time.process_time()
            values[label] = fn()
            cpu[label].append((time.process_time() - start) / len(archs))
    print(f"{args.space}: {len(archs)} distinct architectures, batch {settings.batch_size} x {settings.seq_len}, "
          f"size {settings.size}, 1 thread, torch {torch.__version__}, {args.repeats} repeats")
    print(f"default set ({', '.join(names)}), build included, CPU seconds per architecture, median [min-max]:")
    base = statistics.median(next(iter(cpu.values())))
    for label, xs in cpu.items():
        med = statistics.median(xs)
        print(f"  {label:24s}: {med:.3f} s [{min(xs):.3f}-{max(xs):.3f}]   first / this = {base / med:.2f}x")
    if len(values) == 2:
        a, b = values.values()
        print(f"  values equal: {'yes' if _same(a, b) else 'NO'} ({len(archs)} architectures x {len(names)} metrics)")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        score_set(space, archs, settings, names)
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(args.top)
        lines = text.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
        print(f"cProfile, one pass over {len(archs)} architectures, top {args.top} by own time:")
        print("\n".join(lines[start:start + args.top + 1]))


if __name__ == "__main__":
    main()
