"""`trainfree combine`: fit a combination of metric values, report its nested cross-validated tau."""
from __future__ import annotations

import argparse
from pathlib import Path

from trainfree.cli._common import check_outputs, metric_list, positive, seed, settings_args, settings_for


def folds(text: str) -> int:
    value = positive(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected at least 2 folds, got {value}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("combine", help="fit a combination of metrics on a benchmark (nested cross-validation); "
                                       "save it for use as the metric combo:PATH")
    p.add_argument("--benchmark", required=True, help="the benchmark the inputs were computed on")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--scores", type=Path, default=None,
                        help="a scores CSV (`trainfree score --output`, or an export of one settings fingerprint)")
    source.add_argument("--store", type=Path, default=None,
                        help="a results store: the benchmark's scores under the settings flags below")
    p.add_argument("--published", nargs="?", const="shipped", default=None, metavar="PATH",
                   help="the paper's published metric columns (default: those shipped for the benchmark's space); a "
                        "column a trainfree metric reproduces goes by that metric's name; with --scores or --store, "
                        "beside their metrics (one settings fingerprint)")
    p.add_argument("--metrics", type=metric_list, default=None, help="the inputs (default: every metric given)")
    p.add_argument("--learner", choices=["linear", "boosted"], default="linear",
                   help="linear: ridge regression on ranks; boosted: gradient-boosted trees (needs "
                        "trainfree[combine]) (default linear)")
    p.add_argument("--folds", type=folds, default=5, help="outer cross-validation folds (default 5)")
    p.add_argument("--inner-folds", type=folds, default=3,
                   help="inner folds that choose the hyper-parameters (default 3)")
    p.add_argument("--repeats", type=positive, default=1, help="repeat the outer folds with other seeds (default 1)")
    p.add_argument("--cv-seed", type=seed, default=0, help="seed of the fold assignment and learner (default 0)")
    p.add_argument("--raw-target", action="store_true",
                   help="fit the learner to the target's values instead of its ranks")
    p.add_argument("--output", type=Path, default=None,
                   help="save the model refitted on every architecture (JSON) for use as combo:PATH")
    settings_args(p, execution=False)
    p.set_defaults(func=run)


def run(args) -> int:
    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.errors import TrainfreeError
    from trainfree.scores import read_scores

    check_outputs(args, args.output)
    bench = load_benchmark(args.benchmark)
    settings = None
    if args.scores is not None:
        scores, source = read_scores(args.scores), str(args.scores)
    elif args.store is not None:
        if not args.store.exists():
            raise TrainfreeError(f"--store {args.store}: no such store")
        settings = settings_for(args, bench.space, bench.corpus)
        scores, _ = api.stored_scores(args.store, bench, settings)
        source = f"store {args.store}"
    else:
        if args.published is None:
            raise TrainfreeError("give the inputs: --scores, --store or --published (or --published with one of "
                                 "the others)")
        scores, source = None, None
    result = api.combine(bench, scores, metrics=args.metrics, learner=args.learner, folds=args.folds,
                         inner_folds=args.inner_folds, repeats=args.repeats, seed=args.cv_seed,
                         raw_target=args.raw_target, published=args.published, settings=settings, source=source)
    print("\n".join(result.summary()))
    if args.output is not None:
        result.model.save(args.output)
        print(f"saved the model (refitted on all {result.cv.n} architectures) to {args.output}; use it as the "
              f"metric combo:{args.output}")
    return 0
