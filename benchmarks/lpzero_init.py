"""Does LPZero's GPT-2 proxy depend on GPT-2's scaled initialisation? ``lpzero_gpt2`` on an LTS GPT-2
setting under the decoder space's init (LTS's GPT-2 code: each block's attention-output and FFN-output
weights N(0, 0.02 / sqrt(2 n_layer)), adaptive projections N(0, 0.01)) and under the flat init trainfree
used before decoder model version 2 (every weight N(0, 0.02)), each against the benchmark's perplexity,
beside ``decoder_params``. Kendall tau-b, signed so that positive = ranks lower perplexity higher.

  python benchmarks/lpzero_init.py --setting random_GPT2_wt103 [--limit N]
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
from scipy.stats import kendalltau


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", default="random_GPT2_wt103")
    p.add_argument("--limit", type=int, default=None)
    args = p.parse_args(argv)

    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.metrics import Probe, get_metric
    from trainfree.spaces import get_space
    from trainfree.spaces.decoder.model import build_decoder

    torch.set_num_threads(1)
    bench = load_benchmark(f"lts:{args.setting}").head(args.limit)
    space = get_space(bench.space)
    settings = api.default_settings(bench)
    lp, params = get_metric("lpzero_gpt2"), get_metric("decoder_params")
    rows = {"LTS GPT-2 init (the space's default)": [], "flat init, every weight N(0, 0.02)": [],
            "decoder_params": []}
    targets = []
    t0 = time.process_time()
    for i, r in enumerate(bench.records):
        lts = Probe(r.arch, space, settings)
        rows["LTS GPT-2 init (the space's default)"].append(-lp(lts))  # lower is better: negate
        rows["decoder_params"].append(params(lts))
        flat = Probe(r.arch, space, settings)  # its model: the same draws under the flat init, built once
        flat.cached("model", lambda: build_decoder(r.arch, settings.size, settings.seed, init="flat"))
        rows["flat init, every weight N(0, 0.02)"].append(-lp(flat))
        targets.append(-r.target if bench.lower_is_better else r.target)
        print(f"{i + 1}/{len(bench.records)}", file=sys.stderr, end="\r")
    print(f"lts:{args.setting}: {len(targets)} architectures, {time.process_time() - t0:.0f} CPU-s")
    print("| score | Kendall tau vs -perplexity |\n|---|---|")
    for name, vals in rows.items():
        print(f"| {name} | {kendalltau(vals, targets).statistic:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
