"""Seconds per architecture of each metric on its own (a fresh probe each time), and of a set of
metrics scored together on one probe (shared passes computed once), at the paper's protocol for
the space: NAS-Bench-NLP paper-size model on 50 x 70 PTB tokens, or the NAS-Bench-BERT paper metric
model on 32 x 128 WordPiece tokens, or LTS decoders (the first distinct ones of random_GPT2_wt103) on
16 x 32 words. Model build is timed separately. ``--tiny`` times the tiny models and batches of the
metric contract test (tests/test_contract.py), whose cost the tests no longer assert.

    python benchmarks/metric_costs.py [--space nasbench-nlp|nasbench-bert|decoder] [--n 3] [--metrics a,b|new] [--together default|a,b] [--tiny]

``--metrics new``: the metrics of docs/new-metrics.md (W-PCA, SWAP, the parameter split, epsinas and
the recurrent trainability signals) that apply to the space. Each line gives wall and CPU (process)
seconds: on a shared machine the CPU figure is the one to compare.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from trainfree.benchmarks import load_benchmark
from trainfree.executors import limit_threads
from trainfree.metrics import METRICS, Probe, get_metric
from trainfree.spaces import get_space

BENCH = {"nasbench-nlp": "nasbench-nlp-ptb", "nasbench-bert": "nasbench-bert", "decoder": "lts:random_GPT2_wt103"}
NEW = ("w_pca", "ffn_pca_dim", "attn_params", "ffn_params", "swap", "epsinas", "lyapunov", "lyapunov_edge",
       "state_grad_rate", "state_grad_edge", "hidden_erank")
TINY_BATCH = {"nasbench-nlp": (10, 20), "nasbench-bert": (4, 16), "decoder": (4, 16)}  # as tests/test_contract.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nasbench-nlp", choices=sorted(BENCH))
    parser.add_argument("--n", type=int, default=3, help="distinct architectures")
    parser.add_argument("--metrics", default=None, help="comma-separated (default: every metric of the space)")
    parser.add_argument("--together", default=None,
                        help="also time this comma-separated set on one probe ('default': the space's default set)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="the contract test's tiny model and batch")
    args = parser.parse_args()
    limit_threads(args.threads)  # torch's threads; numpy's and scipy's BLAS one, as in trainfree's workers
    names = args.metrics.split(",") if args.metrics else [m.name for m in METRICS if args.space in m.spaces]
    if args.metrics == "new":
        names = [n for n in NEW if args.space in get_metric(n).spaces]
    bench = load_benchmark(BENCH[args.space])
    archs, seen = [], set()
    for r in bench.records:
        if r.arch.arch_id not in seen:
            seen.add(r.arch.arch_id)
            archs.append(r.arch)
        if len(archs) == args.n:
            break
    space = get_space(args.space)
    settings = space.default_settings().with_(device="cpu")
    if args.tiny:
        batch, seq = TINY_BATCH[args.space]
        settings = settings.with_(size="tiny", batch_size=batch, seq_len=seq)
    Probe(archs[0], space, settings).model  # load the corpus, and draw the seed's weight stream, once
    builds = []
    for arch in archs:
        start = time.perf_counter()
        Probe(arch, space, settings).model
        builds.append(time.perf_counter() - start)
    print(f"{args.space}: {len(archs)} architectures, batch {settings.batch_size} x {settings.seq_len}, size "
          f"{settings.size}, {args.threads} threads, torch {torch.__version__}")
    print(f"{'model build':32s} {statistics.median(builds):7.3f} s (median)")
    for name in names:
        times, cpu = [], []
        for arch in archs:
            probe = Probe(arch, space, settings)
            probe.model
            start, start_cpu = time.perf_counter(), time.process_time()
            get_metric(name)(probe)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(f"{name:32s} {statistics.median(times):7.3f} s (median; CPU {statistics.median(cpu):.3f} s)")
    if args.together:
        together = list(space.default_metrics) if args.together == "default" else args.together.split(",")
        times = []
        for arch in archs:
            start = time.perf_counter()
            probe = Probe(arch, space, settings)
            for name in together:
                get_metric(name)(probe)
            times.append(time.perf_counter() - start)
        print(f"together, build included ({len(together)} metrics): {statistics.median(times):.3f} s per "
              f"architecture (median; {', '.join(together)})")


if __name__ == "__main__":
    main()
