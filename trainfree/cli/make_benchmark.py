"""`trainfree make-benchmark`: sample architectures of a space, short-train each, write a benchmark file
that score, correlate, analyze, report and search --benchmark read (format: trainfree.benchmarks.trained)."""
from __future__ import annotations

import math
from pathlib import Path

from trainfree.cli._common import Progress, check_outputs, invocation, positive, seed
from trainfree.cli.train import budget_args, checkpoint_dir, execution_args


def add_parser(sub) -> None:
    p = sub.add_parser("make-benchmark", help="sample N architectures of a space, short-train each and write a "
                                              "benchmark file of your own")
    p.add_argument("--space", required=True, help="the space to sample from")
    p.add_argument("--n", type=positive, required=True, help="distinct architectures to sample and train")
    p.add_argument("--sample-seed", type=seed, default=0,
                   help="seed of the sample of architectures (default 0; the models' is --train-seed / --seed)")
    p.add_argument("--output", type=Path, required=True, help="the benchmark file to write (.json)")
    budget_args(p, seed_flags=("--train-seed", "--seed"))
    execution_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree import api
    from trainfree.cli._common import open_store
    from trainfree.executors import default_jobs

    check_outputs(args, args.output)
    store = open_store(args)
    progress = Progress(args, "training", unit="arch")
    try:
        data = api.make_benchmark(args.space, args.n, args.budget, unit=args.unit, record_at=args.record_at,
                                  sample_seed=args.sample_seed, train_seed=args.train_seed, protocol=args.protocol,
                                  output=args.output, store=store, checkpoint_dir=checkpoint_dir(args),
                                  keep_checkpoints=args.keep_checkpoints,
                                  jobs=args.jobs or default_jobs(), executor=args.executor, address=args.address,
                                  threads=args.threads, size=args.train_size, lr=args.lr, on_progress=progress,
                                  command=invocation("make-benchmark", f"make-benchmark --space {args.space} "
                                                                       f"--n {args.n}"))
    finally:
        progress.close()
        if store is not None:
            store.close()
    recs = data["records"]
    finite = sum(math.isfinite(r["val_loss"]) for r in recs)
    print(f"wrote {args.output}: {len(recs)} architectures of {args.space} ({finite} with a finite validation loss), "
          f"protocol {data['protocol']['name']} ({data['protocol_fingerprint']}), budget "
          f"{data['budget']['points'][-1]:g} {data['budget']['unit']}; trained {data['trained']}, reused "
          f"{data['reused']} from the store")
    return 0 if finite else 1
