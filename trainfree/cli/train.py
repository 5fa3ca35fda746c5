"""`trainfree train`: short-train architectures under the space's protocol, results in the store."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from trainfree.errors import TrainfreeError

from trainfree.cli._common import Progress, check_outputs, positive, seed


def number_list(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or not all(v > 0 and math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def positive_number(text: str) -> float:
    return number_list(text)[0] if "," not in text else _one(text)


def _one(text: str) -> float:
    raise argparse.ArgumentTypeError(f"expected one positive number, got {text!r}")


def budget_args(p: argparse.ArgumentParser, required: bool = True,
                seed_flags: tuple[str, ...] = ("--train-seed", "--seed")) -> None:
    """The training flags `train` and `make-benchmark` share."""
    from trainfree.train.protocol import PROTOCOLS, UNITS

    g = p.add_argument_group("training (see docs/fidelity.md for the protocols)")
    g.add_argument("--train-budget", "--budget", dest="budget", type=positive_number, required=required,
                   help="where training stops, in --unit")
    g.add_argument("--unit", choices=UNITS, default="steps",
                   help="budget unit: optimiser steps (default), training tokens, or CPU-seconds of training")
    g.add_argument("--record-at", type=number_list, default=(),
                   help="also record validation loss at these budget points on the way (comma-separated, --unit)")
    g.add_argument("--protocol", default=None,
                   help=f"training protocol (default: the space's own; {', '.join(PROTOCOLS.names())}; other "
                        "spaces with an LM loss get a generic causal-LM one)")
    g.add_argument("--train-size", dest="train_size", default=None, help="model size preset to train (default: "
                                                                         "the protocol's)")
    g.add_argument("--lr", type=positive_number, default=None, help="learning rate (default: the protocol's)")
    g.add_argument(*seed_flags, dest="train_seed", type=seed, default=0,
                   help="seed of the model's initialisation and of the training's draws (default 0)")
    g.add_argument("--checkpoint-dir", type=Path, default=None,
                   help="where runs keep their checkpoints so that a killed run resumes (default: beside the "
                        "store, STORE-checkpoints/; none with --no-store)")
    g.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each finished run's checkpoint, so that a later, longer --train-budget continues "
                        "it rather than training from the start")


def execution_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution and storage")
    g.add_argument("--jobs", type=positive, default=None, help="architectures trained at once (default: the cores)")
    g.add_argument("--threads", type=positive, default=1, help="torch threads per job (default 1)")
    g.add_argument("--executor", choices=["local", "process", "ray"], default=None,
                   help="local (in-process), process (a process pool, the default with --jobs > 1), ray")
    g.add_argument("--address", default=None, help="Ray cluster address for --executor ray")
    g.add_argument("--store", type=Path, default=None,
                   help="results store; trained keys are reused (default: $TRAINFREE_STORE or "
                        "~/.cache/trainfree/scores.sqlite)")
    g.add_argument("--no-store", action="store_true", help="train everything afresh and store nothing")
    g.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(device="cpu")  # training runs on the CPU (check_outputs reads it)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="short-train architectures (the second fidelity): validation loss, tokens "
                                     "and CPU-seconds, stored and resumable")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--benchmark", help="train the records of a benchmark (with --limit)")
    what.add_argument("--archs", type=Path, help="a JSON-lines file of architectures of --space")
    what.add_argument("--arch", help="one architecture of --space, as JSON")
    p.add_argument("--space", default=None, help="the space of --arch / --archs")
    p.add_argument("--limit", type=positive, default=None, help="train only the first N")
    p.add_argument("--output", type=Path, default=None, help="JSON of the results, with the protocol and versions")
    budget_args(p)
    execution_args(p)
    p.set_defaults(func=run)


def checkpoint_dir(args):
    from trainfree.store import default_store_path

    if getattr(args, "checkpoint_dir", None) is not None:
        return args.checkpoint_dir
    if args.no_store:
        return None
    store = args.store or default_store_path()
    return store.with_name(store.name + "-checkpoints")


def items_of(args):
    from trainfree.archs import read_archs
    from trainfree.spaces import get_space

    if args.benchmark is not None:
        if args.space is not None:
            raise TrainfreeError("--space goes with --arch / --archs (a benchmark names its own space)")
        return None
    if args.space is None:
        raise TrainfreeError("--arch / --archs need --space (the space of the architectures)")
    space = get_space(args.space)
    if args.arch is not None:
        try:
            value = json.loads(args.arch)
        except (ValueError, RecursionError) as err:
            raise TrainfreeError(f"--arch: not valid JSON ({str(err)[:200] or 'nested too deeply'})") from None
        arch = space.from_json(value, "--arch")
        return [(space.arch_id(arch), arch)]
    return read_archs(args.archs, space, limit=args.limit)


def run(args) -> int:
    from trainfree import api
    from trainfree.cli._common import open_store
    from trainfree.executors import default_jobs

    check_outputs(args, args.output)
    items = items_of(args)
    store = open_store(args)
    jobs = args.jobs or default_jobs()
    archs_progress = Progress(args, "training", unit="arch")
    step_progress = Progress(args, "training", unit=args.unit.replace("cpu-seconds", "cpu-s"))
    try:
        run = api.train(space=args.space, archs=items, benchmark=args.benchmark, budget=args.budget, unit=args.unit,
                        record_at=args.record_at, seed=args.train_seed, protocol=args.protocol, limit=args.limit,
                        store=store, checkpoint_dir=checkpoint_dir(args), jobs=jobs, executor=args.executor,
                        address=args.address, threads=args.threads, size=args.train_size, lr=args.lr,
                        keep_checkpoints=args.keep_checkpoints,
                        on_progress=archs_progress, on_step=lambda d, t: step_progress(int(d), int(math.ceil(t))))
    except KeyboardInterrupt:
        if store is not None:
            import sys

            print(f"\ninterrupted: finished architectures are kept in {store.path} and the one in flight in its "
                  f"checkpoint; rerun the same command to resume", file=sys.stderr)
        raise
    finally:
        archs_progress.close()
        step_progress.close()
        if store is not None:
            store.close()
    return report(args, run)


def summary(run) -> dict:
    from trainfree import __version__
    import platform

    import torch

    return {"trainfree_version": __version__, "torch_version": torch.__version__, "python": platform.python_version(),
            "protocol": run.protocol.identity(), "protocol_fingerprint": run.protocol.fingerprint(),
            "protocol_source": run.protocol.source, "seed": run.seed, "unit": run.budget.unit,
            "points": list(run.budget.points)}


def report(args, run) -> int:
    from trainfree.cli._common import print_table

    points = list(run.budget.points)
    rows = []
    for r in run.results:
        row = {"name": r.name, "arch_id": r.arch_id, "status": r.status}
        for p in points:
            row[f"val@{p:g}"] = r.points[p]["val_loss"]
        row["tokens"] = r.final["tokens"]
        row["cpu_s"] = r.cpu_seconds
        rows.append(row)
    print_table(rows, list(rows[0]) if rows else ["name"])
    print(f"protocol {run.protocol.name} ({run.protocol.fingerprint()}), budget {run.budget.label()}: trained "
          f"{run.trained}, reused {run.reused} from the store")
    if args.output is not None:
        from trainfree.files import atomic_write

        data = dict(summary(run), results=[{"name": r.name, "arch_id": r.arch_id, "reused": r.reused,
                                             "points": [r.points[p] for p in points]} for r in run.results])
        atomic_write(args.output, lambda fh: json.dump(data, fh, indent=1, allow_nan=True))
        print(f"wrote {args.output}")
    failed = [r for r in run.results if r.status == "failed"]
    if failed:
        import sys

        print(f"trainfree: error: {len(failed)} of {len(run.results)} architectures failed (the first: "
              f"{failed[0].final['error']})", file=sys.stderr)
        return 1
    return 0
