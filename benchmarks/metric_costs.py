"""Seconds per architecture of each metric on its own (a fresh probe each time), and of a set of
metrics scored together on one probe (shared passes computed once), at the paper's protocol for
the space: NAS-Bench-NLP paper-size model on 50 x 70 PTB tokens, or the NAS-Bench-BERT paper metric
model on 32 x 128 WordPiece tokens, or LTS decoders (the first distinct ones of random_GPT2_wt103) on
16 x 32 words. Model build is timed separately. ``--tiny`` times the tiny models and batches of the
metric contract test (tests/test_contract.py), whose cost the tests no longer assert.

    python benchmarks/metric_costs.py [--space nasbench-nlp|nasbench-bert|decoder] [--n 3] [--metrics a,b|new]
        [--together default|paper|a,b] [--repeats 1] [--threads 2] [--tiny] [--against REV] [--profile]

``--metrics new``: the metrics of docs/new-metrics.md (W-PCA, SWAP, the parameter split, epsinas and
the recurrent trainability signals) that apply to the space. ``--together paper``: the metrics with a
published column in the space's paper table (what ``trainfree reproduce`` scores), ``params`` included.
Each line gives the CPU (process) seconds, median over architectures and repeats, with the min-max:
on a shared machine the CPU figure is the one to compare; wall seconds are printed beside it.

``--against REV`` measures the same cells twice, one after the other (never at once): with the
trainfree package of git revision REV (extracted to a temporary folder) and with this checkout's, each in
a fresh process, and prints old, new, their ratio, and whether every value is equal (bit for bit, NaN
equal to NaN) or the largest relative difference. ``--profile`` (with ``--together``) prints the share of
the set's time spent in matrix products, their float count and rate, and the floor that count sets at
the rate one core reaches on a recurrent step's product.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

BENCH = {"nasbench-nlp": "nasbench-nlp-ptb", "nasbench-bert": "nasbench-bert", "decoder": "lts:random_GPT2_wt103"}
NEW = ("w_pca", "ffn_pca_dim", "attn_params", "ffn_params", "swap", "epsinas", "lyapunov", "lyapunov_edge",
       "state_grad_rate", "state_grad_edge", "hidden_erank")
TINY_BATCH = {"nasbench-nlp": (10, 20), "nasbench-bert": (4, 16), "decoder": (4, 16)}  # as tests/test_contract.py
ROOT = Path(__file__).resolve().parents[1]


def _set(args, space) -> list[str]:
    if args.together == "default":
        return list(space.default_metrics)
    if args.together == "paper":  # what `trainfree reproduce` scores (deduplicated: older packages list params twice)
        from trainfree.evaluation.reproduce import default_metrics

        return list(dict.fromkeys(default_metrics(args.space)))
    return args.together.split(",")


def measure(args) -> dict:
    """Time the metrics on the first ``--n`` distinct architectures; CPU and wall seconds and the values."""
    import torch

    from trainfree.benchmarks import load_benchmark
    from trainfree.executors import limit_threads
    from trainfree.metrics import METRICS, Probe, get_metric
    from trainfree.spaces import get_space

    limit_threads(args.threads)  # torch's threads; numpy's and scipy's BLAS one, as in trainfree's workers
    if args.metrics == "new":
        names = [n for n in NEW if args.space in get_metric(n).spaces]
    elif args.metrics:
        names = args.metrics.split(",")
    else:
        names = [m.name for m in METRICS if args.space in m.spaces]
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
    out = {"header": f"{args.space}: {len(archs)} architectures, batch {settings.batch_size} x {settings.seq_len}, "
                     f"size {settings.size}, {args.threads} threads, torch {torch.__version__}, {args.repeats} repeats",
           "rows": {}, "values": {}}

    def run(label, fn):
        cpu, wall = [], []
        for _ in range(args.repeats):
            for i, arch in enumerate(archs):
                start, start_cpu = time.perf_counter(), time.process_time()
                values = fn(arch)
                wall.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                if isinstance(values, tuple):  # (values, CPU s, wall s) of the part that fn timed itself
                    values, cpu[-1], wall[-1] = values
                out["values"][f"{label}|{i}"] = values
        out["rows"][label] = {"cpu": cpu, "wall": wall}

    run("model build", lambda arch: [0.0 if Probe(arch, space, settings).model is None else 1.0])
    for name in names:
        def alone(arch, name=name):  # the model built first, not timed
            probe = Probe(arch, space, settings)
            probe.model
            start, start_cpu = time.perf_counter(), time.process_time()
            value = get_metric(name)(probe)
            return [value], time.process_time() - start_cpu, time.perf_counter() - start
        run(name, alone)
    if args.together:
        together = _set(args, space)
        expected = frozenset().union(*(get_metric(n).requires for n in together))

        def joint(arch):
            probe = Probe(arch, space, settings, expected=expected)  # as score_one builds it
            return [get_metric(n)(probe) for n in together]
        out["together"] = together
        run(f"together ({len(together)} metrics), build included", joint)
    if args.profile and args.together:
        out["profile"] = _gemm_profile(archs[: min(3, len(archs))], space, settings, together, expected)
    return out


def _gemm_profile(archs, space, settings, names, expected) -> dict:
    """How much of the set's time is matrix products, their float count, the rate they ran at, and the rate
    one core reaches on a product of the recurrent step's shape ((50 x 600) by (600 x 1200), float32):
    the set's floor on this machine is its float count at that rate."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from trainfree.metrics import Probe, get_metric

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for arch in archs:
            probe = Probe(arch, space, settings, expected=expected)
            for n in names:
                get_metric(n)(probe)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    gemm = [e for e in events if e.key in ("aten::mm", "aten::addmm", "aten::bmm")]
    gemm_s = sum(e.self_cpu_time_total for e in gemm) / 1e6
    flops = sum(e.flops for e in gemm)
    a, b = torch.randn(50, 600), torch.randn(600, 1200)
    for _ in range(10):
        a @ b
    start, reps = time.perf_counter(), 200
    for _ in range(reps):
        a @ b
    peak = 2 * 50 * 600 * 1200 * reps / (time.perf_counter() - start)
    return {"architectures": len(archs), "profiled_s": total, "gemm_s": gemm_s, "gemm_gflop": flops / 1e9,
            "gemm_gflops_per_s": flops / gemm_s / 1e9 if gemm_s else math.nan, "step_gemm_peak_gflops_per_s": peak / 1e9,
            "floor_s_per_arch": flops / peak / len(archs)}


def _fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.3f} s [{min(xs):.3f}-{max(xs):.3f}]"


def _same(a, b) -> tuple[bool, float]:
    worst = 0.0
    for x, y in zip(a, b):
        if x == y or (math.isnan(x) and math.isnan(y)):
            continue
        if not (math.isfinite(x) and math.isfinite(y)):
            return False, math.inf
        worst = max(worst, abs(x - y) / max(abs(y), 1e-300))
    return worst == 0.0, worst


def _child(args, pythonpath: str | None) -> dict:
    cmd = [sys.executable, __file__, "--json"] + [a for a in sys.argv[1:] if not a.startswith("--against")
                                                  and a != args.against]
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {'old' if pythonpath else 'new'} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def against(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "old.tar"
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), args.against, "trainfree"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        old = _child(args, tmp)  # one after the other: never two timings at once
    new = _child(args, None)
    print(new["header"])
    if "together" in new:
        print(f"together: {', '.join(new['together'])}")
    print(f"CPU seconds per architecture, median [min-max]; old = trainfree at {args.against}, new = this checkout")
    for label, row in new["rows"].items():
        if label not in old["rows"]:
            print(f"{label:36s} new {_fmt(row['cpu'])} (not in the old package)")
            continue
        o, n = statistics.median(old["rows"][label]["cpu"]), statistics.median(row["cpu"])
        keys = [k for k in new["values"] if k.startswith(label + "|")]
        same, worst = _same([v for k in keys for v in old["values"][k]], [v for k in keys for v in new["values"][k]])
        verdict = "values equal bit for bit" if same else f"values differ: largest relative difference {worst:.1e}"
        wall = f"wall old {statistics.median(old['rows'][label]['wall']):.3f} new {statistics.median(row['wall']):.3f}"
        print(f"{label:36s} old {_fmt(old['rows'][label]['cpu'])}  new {_fmt(row['cpu'])}  "
              f"old/new {o / n:5.2f}x  ({wall})  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nasbench-nlp", choices=sorted(BENCH))
    parser.add_argument("--n", type=int, default=3, help="distinct architectures")
    parser.add_argument("--metrics", default=None, help="comma-separated, or 'new' (default: every metric of the space)")
    parser.add_argument("--together", default=None,
                        help="also time this set on one probe: 'default' (the space's default set), 'paper' "
                             "(the paper table's metrics), or comma-separated names")
    parser.add_argument("--repeats", type=int, default=1, help="times over every architecture")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="the contract test's tiny model and batch")
    parser.add_argument("--against", default=None, metavar="REV",
                        help="also time trainfree at git revision REV on the same cells, first, and print ratios")
    parser.add_argument("--profile", action="store_true",
                        help="with --together: the share of matrix products in the set's time (torch profiler, "
                             "first 3 architectures), their GFLOP and rate, and the floor that float count sets")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against:
        against(args)
        return
    out = measure(args)
    if args.json:
        print(json.dumps(out))
        return
    print(out["header"])
    if "together" in out:
        print(f"together: {', '.join(out['together'])}")
    print("CPU seconds per architecture, median [min-max] (wall median)")
    for label, row in out["rows"].items():
        print(f"{label:32s} {_fmt(row['cpu'])} (wall {statistics.median(row['wall']):.3f} s)")
    if "profile" in out:
        p = out["profile"]
        print(f"profile of the set on {p['architectures']} architectures: {p['profiled_s']:.2f} s, of which matrix "
              f"products {p['gemm_s']:.2f} s ({p['gemm_s'] / p['profiled_s']:.0%}; {p['gemm_gflop']:.1f} GFLOP at "
              f"{p['gemm_gflops_per_s']:.0f} GFLOP/s); one core's rate on a (50 x 600)(600 x 1200) product: "
              f"{p['step_gemm_peak_gflops_per_s']:.0f} GFLOP/s, so the products alone take at least "
              f"{p['floor_s_per_arch']:.2f} s per architecture")


if __name__ == "__main__":
    main()
