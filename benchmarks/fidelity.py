"""Short training as a fidelity: how well the validation loss after a few CPU-seconds of training ranks
architectures against the benchmark's fully trained result, beside a training-free metric and its cost.

One run per architecture records every budget point (``trainfree train --record-at``), so each point
is a fidelity at its CPU cost. Results go to a store as each architecture finishes (rerun the same
command to resume) and to a CSV; the summary is printed as a markdown table; ``--plot`` draws rank
quality against CPU-seconds per architecture (matplotlib, the report extra).

  nice -n 10 python benchmarks/fidelity.py --part ptb --n 60 --jobs 2 --store /tmp/fid.sqlite
  nice -n 10 python benchmarks/fidelity.py --part bert --n 30 --jobs 2 --store /tmp/fid.sqlite
  nice -n 10 python benchmarks/fidelity.py --part lts --n 30 --jobs 2 --store /tmp/fid.sqlite

PTB: a seeded sample of distinct shipped cells, target the mean 50-epoch test loss over the cell's
copies, metric the published layer-1 hidden covariance (its cost measured by scoring the sample's first
cells with trainfree's hidden_cov). BERT: target GLUE (higher is better), metric head_confidence.
LTS: one setting's validation perplexity, metric decoder_params.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

#: per part: the benchmark, the protocol and its CPU-sized overrides, the budget points (steps), the metric
PARTS = {
    "ptb": dict(benchmark="nasbench-nlp-ptb", protocol="nasbench-nlp-short", points="5,10,20,50,100,150", overrides={},
                metric="hidden_cov", published="Layer 1 Hidden Covariance"),
    "bert": dict(benchmark="nasbench-bert", protocol="nasbench-bert", points="20,40,80",
                 overrides=dict(batch_size=8, seq_len=64, eval_batch_size=8, eval_tokens=8 * 64 * 4, warmup_steps=5),
                 metric="head_confidence", published=None),
    "lts": dict(benchmark="lts:random_GPT2_wt103", protocol="decoder", points="50,100,200",
                overrides=dict(size="tiny", batch_size=8, seq_len=32, eval_batch_size=8, eval_tokens=8 * 32 * 8,
                               warmup_steps=5),
                metric="decoder_params", published=None),
}


def distinct(bench, space):
    """arch_id -> (a name, the architecture, mean target over the records of that architecture)."""
    groups = defaultdict(list)
    first = {}
    for r in bench.records:
        a = space.arch_id(r.arch)
        groups[a].append(r.target)
        first.setdefault(a, r)
    return {a: (first[a].name, first[a].arch, float(np.mean(t))) for a, t in groups.items()}


def sample(cells: dict, n: int, seed: int) -> list[str]:
    ids = sorted(cells)
    rng = np.random.default_rng(seed)
    return [ids[i] for i in rng.choice(len(ids), size=min(n, len(ids)), replace=False)]


def tau(x, y):
    """Kendall tau-b over the pairs where both are finite, and how many were dropped."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan, int((~ok).sum())
    return float(kendalltau(x[ok], y[ok]).statistic), int((~ok).sum())


def metric_cost(space_name, archs, metric, settings_kw) -> tuple[float, dict]:
    """CPU-seconds per architecture of scoring ``metric`` in this process (model build included), and the values."""
    from trainfree import api

    t0 = time.process_time()
    run = api.score(space=space_name, archs=archs, metrics=[metric], jobs=1, threads=1, **settings_kw)
    cost = (time.process_time() - t0) / max(1, len(archs))
    return cost, {r.name: r.value for r in run.rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=sorted(PARTS), required=True)
    p.add_argument("--n", type=int, default=60)
    p.add_argument("--seed", type=int, default=0, help="sample seed")
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--points", default=None, help="budget points in steps (default per part)")
    p.add_argument("--protocol", default=None)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None, help="CSV of every architecture (default "
                                                           "docs/data/fidelity/fidelity_PART.csv)")
    p.add_argument("--cost-n", type=int, default=10, help="architectures the metric's cost is measured on")
    p.add_argument("--plot", type=Path, default=None, help="PNG of rank quality against CPU-seconds")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each run's checkpoint so that a rerun with later --points continues it")
    p.add_argument("--stored-only", action="store_true",
                   help="train nothing: summarise the sampled architectures the store already holds")
    args = p.parse_args(argv)

    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.spaces import get_space

    part = PARTS[args.part]
    bench = load_benchmark(part["benchmark"])
    space = get_space(bench.space)
    cells = distinct(bench, space)
    ids = sample(cells, args.n, args.seed)
    points = [float(x) for x in (args.points or part["points"]).split(",")]
    out = args.out or Path(__file__).parent.parent / "docs" / "data" / "fidelity" / f"fidelity_{args.part}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    names = {a: cells[a][0] for a in ids}
    got: dict[str, list[dict]] = {}

    def write():  # the CSV so far, after every architecture (a killed run leaves what finished)
        with open(out, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["arch_id", "name", "target", "budget_steps", "val_loss", "status", "tokens", "train_cpu_s",
                        "eval_cpu_s"])
            for a in ids:
                for row in sorted(got.get(a, []), key=lambda r: r["budget"]):
                    w.writerow([a, names[a], cells[a][2], row["budget"], row["val_loss"], row["status"],
                                row["tokens"], round(row["cpu_seconds"], 3), round(row["eval_cpu_seconds"], 3)])

    def on_result(arch_id, rows):
        got[arch_id] = rows
        write()
        print(f"{len(got)}/{len(ids)} {arch_id} " + " ".join(f"{r['budget']:g}:{r['val_loss']:.3f}" for r in rows),
              file=sys.stderr, flush=True)

    protocol = args.protocol or part["protocol"]
    if args.stored_only:
        from trainfree.store import Store
        from trainfree.train import protocol_for

        fp = protocol_for(space.name, protocol, **part["overrides"]).fingerprint()
        with Store(args.store) as store:
            held = store.trainings(fp, args.train_seed, "steps", ids)
        ids = [a for a in ids if all((a, pt) in held for pt in points)]
        names = {a: names[a] for a in ids}
    run = api.train(space=space.name, archs=[(names[a], cells[a][1]) for a in ids], budget=points[-1],
                    record_at=points[:-1], seed=args.train_seed, protocol=protocol, **part["overrides"],
                    store=args.store, jobs=args.jobs, checkpoint_dir=str(args.store) + "-checkpoints",
                    on_result=on_result, keep_checkpoints=args.keep_checkpoints)
    for r in run.results:
        got[r.arch_id] = list(r.points.values())
    write()

    sign = 1 if bench.lower_is_better else -1  # tau is signed so that positive = ranks better-trained higher
    targets = [cells[a][2] for a in ids]
    lines = [f"{bench.name}: {len(ids)} distinct architectures (sample seed {args.seed}), protocol "
             f"{run.protocol.name} ({run.protocol.fingerprint()}), train seed {args.train_seed}, target "
             f"{bench.target}", "", "| fidelity | Kendall tau | dropped | CPU-s per arch (train + eval, mean) |",
             "|---|---|---|---|"]
    summary = []
    for pt in points:
        vals = [next((r["val_loss"] for r in got[a] if r["budget"] == pt), math.nan) for a in ids]
        cpu = [next((r["cpu_seconds"] + r["eval_cpu_seconds"] for r in got[a] if r["budget"] == pt), math.nan)
               for a in ids]
        t, dropped = tau(vals, targets)
        t *= sign  # a lower validation loss should mean a better target
        summary.append({"fidelity": f"val loss @ {pt:g} steps", "tau": t, "cpu": float(np.nanmean(cpu))})
        lines.append(f"| validation loss after {pt:g} steps | {t:.3f} | {dropped} | {np.nanmean(cpu):.1f} |")
    # the training-free metric beside it: published values where shipped, else trainfree's own
    cost_archs = [(names[a], cells[a][1]) for a in ids[: args.cost_n]]
    from trainfree.metrics import get_metric

    m = get_metric(part["metric"])
    settings = api.default_settings(bench)
    cost, values = metric_cost(space.name, cost_archs, part["metric"], {"settings": settings})
    if part["published"]:
        from trainfree.benchmarks.published import load_published

        pub = load_published()
        mvals = [pub.get(names[a], {}).get(part["published"], math.nan) for a in ids]
        what = f"`{part['metric']}` (published column '{part['published']}')"
    else:
        _, values = metric_cost(space.name, [(names[a], cells[a][1]) for a in ids], part["metric"],
                                {"settings": settings})
        mvals = [values.get(names[a], math.nan) for a in ids]
        what = f"`{part['metric']}` (trainfree)"
    t, dropped = tau(mvals, targets)
    t *= (1 if m.higher_is_better else -1) * -sign
    summary.append({"fidelity": part["metric"], "tau": t, "cpu": cost})
    lines.append(f"| {what} | {t:.3f} | {dropped} | {cost:.2f} (measured on {len(cost_archs)}) |")
    print("\n".join(lines))
    (out.with_suffix(".summary.json")).write_text(json.dumps({"lines": lines, "summary": summary}, indent=1))
    if args.plot:
        plot(summary, args.plot, bench.name)
    return 0


def plot(summary, path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("the plot needs matplotlib: pip install 'trainfree[report]'")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    train = [s for s in summary if s["fidelity"].startswith("val")]
    ax.plot([s["cpu"] for s in train], [s["tau"] for s in train], "o-", label="short training")
    for s in train:
        ax.annotate(s["fidelity"].split("@ ")[1], (s["cpu"], s["tau"]), fontsize=7, xytext=(3, -9),
                    textcoords="offset points")
    other = [s for s in summary if not s["fidelity"].startswith("val")]
    ax.plot([s["cpu"] for s in other], [s["tau"] for s in other], "s", label=other[0]["fidelity"] if other else "")
    ax.set_xscale("log")
    ax.set_xlabel("CPU-seconds per architecture")
    ax.set_ylabel("Kendall tau vs the benchmark")
    ax.set_title(title, fontsize=9)
    ax.axhline(0.5, color="grey", lw=0.5, ls="--")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
