"""Does LPZero's GPT-2 proxy depend on GPT-2's scaled initialisation? ``lpzero_gpt2`` on an LTS GPT-2
setting under trainfree's decoder init (every weight N(0, 0.02)) and under Hugging Face GPT-2's
(additionally each block's attention-output and FFN-output weights N(0, 0.02 / sqrt(2 n_layer)),
``GPT2PreTrainedModel._init_weights``), each against the benchmark's perplexity, beside
``decoder_params``. Kendall tau-b, signed so that positive = ranks lower perplexity higher.

  python benchmarks/lpzero_init.py --setting random_GPT2_wt103 [--limit N]
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import torch
from scipy.stats import kendalltau


def rescale_projections(model, seed: int) -> None:
    """HF GPT-2's scaled init of c_proj (attention output and FFN output) weights, under ``seed``."""
    blocks = [m for m in model.modules() if hasattr(m, "attn_out") and hasattr(m, "ffn_out")]
    std = 0.02 / math.sqrt(2 * len(blocks))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in blocks:
            for lin in (block.attn_out, block.ffn_out):
                lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen, dtype=lin.weight.dtype) * std)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", default="random_GPT2_wt103")
    p.add_argument("--limit", type=int, default=None)
    args = p.parse_args(argv)

    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.metrics import Probe, get_metric
    from trainfree.spaces import get_space

    torch.set_num_threads(1)
    bench = load_benchmark(f"lts:{args.setting}").head(args.limit)
    space = get_space(bench.space)
    settings = api.default_settings(bench)
    lp, params = get_metric("lpzero_gpt2"), get_metric("decoder_params")
    rows = {"trainfree init": [], "HF GPT-2 scaled c_proj init": [], "decoder_params": []}
    targets = []
    t0 = time.process_time()
    for i, r in enumerate(bench.records):
        plain = Probe(r.arch, space, settings)
        rows["trainfree init"].append(-lp(plain))  # lower is better: negate so that higher = better
        rows["decoder_params"].append(params(plain))
        scaled = Probe(r.arch, space, settings)
        rescale_projections(scaled.model, settings.seed)
        rows["HF GPT-2 scaled c_proj init"].append(-lp(scaled))
        targets.append(-r.target if bench.lower_is_better else r.target)
        print(f"{i + 1}/{len(bench.records)}", file=sys.stderr, end="\r")
    print(f"lts:{args.setting}: {len(targets)} architectures, {time.process_time() - t0:.0f} CPU-s")
    print("| score | Kendall tau vs -perplexity |\n|---|---|")
    for name, vals in rows.items():
        print(f"| {name} | {kendalltau(vals, targets).statistic:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
