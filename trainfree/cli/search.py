"""`trainfree search` and `trainfree search-eval`."""
from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

from trainfree.cli._common import (Progress, check_outputs, execution, invocation, metric_list, name_list, positive,
                                   print_table, seed, settings_args, settings_for, stored_run, write_csv)
from trainfree.errors import TrainfreeError


def _fmt_values(values: dict) -> str:
    return ", ".join(f"{k} {v:.6g}" for k, v in values.items())


def one_metric(text: str) -> str:
    """A search maximises one metric (a second one is --objective)."""
    import argparse

    names = [m.strip() for m in text.split(",") if m.strip()]
    if len(names) != 1:
        raise argparse.ArgumentTypeError(f"a search maximises one metric, got {len(names)}; give a cost to minimise "
                                         f"as well with --objective")
    return names[0]


def _print_trials(title: str, trials: list[dict], most: int = 12) -> None:
    """Up to ``most`` trials, by id, shape and values (a longer list: the first and last ones)."""
    print(title)
    shown = trials if len(trials) <= most else trials[: most // 2] + [None] + trials[-(most // 2):]
    width = max((len(t["shape"]) for t in trials), default=0)
    for t in shown:
        if t is None:
            print(f"  ... {len(trials) - 2 * (most // 2)} more (every one in --output)")
            continue
        print(f"  {t['arch_id']}  {t['shape'].ljust(width)}  {_fmt_values(t['values'])}")


def add_parser(sub) -> None:
    from trainfree.search.strategies import STRATEGIES

    from trainfree.spaces import space_names

    p = sub.add_parser("search", help="search a space (or a benchmark's architectures) with a training-free metric")
    p.add_argument("--space", default=None,
                   help=f"the space to search: {', '.join(space_names())}, or a space file .toml/.json "
                        "(default: the benchmark's)")
    p.add_argument("--metrics", "--metric", dest="metric", type=one_metric, default=None,
                   help="the metric to maximise in its registered direction (default: the best measured on the "
                        "space's family of benchmarks, with its evidence: decoders nonembedding_params; else the "
                        "space's first default metric, hidden_cov / head_confidence)")
    p.add_argument("--objective", default=None,
                   help="a cost to minimise as well, e.g. params or latency (multi-objective: nsga2, random, grid; "
                        "grid default: params)")
    p.add_argument("--strategy", default="random",  # checked by the registry, which suggests close names
                   help=f"{', '.join(STRATEGIES.names())} (default random)")
    p.add_argument("--budget", type=positive, default=None,
                   help="distinct architectures to evaluate (default 100; grid: every point of the grid)")
    p.add_argument("--search-seed", type=seed, default=0,
                   help="seed of the strategy's random choices (default 0; --seed seeds the models)")
    p.add_argument("--population", type=positive, default=None, help="population size (evolution, nsga2; default 20)")
    p.add_argument("--benchmark", default=None,
                   help="stay within this benchmark's architectures and report the trained result of the choice")
    p.add_argument("--top", type=positive, default=5, help="how many of the best to print (default 5)")
    p.add_argument("--output", type=Path, default=None, help="JSON with every trial, the best, the Pareto set")
    g = p.add_argument_group("budget-first search (--strategy grid): every architecture of a config space that "
                             "meets the budget")
    g.add_argument("--max-params", type=float, default=None, metavar="N", help="at most N parameters (e.g. 20e6)")
    g.add_argument("--max-memory", type=float, default=None, metavar="GIB",
                   help="at most GIB GiB for the weights plus the key/value cache of --context tokens at batch 1")
    g.add_argument("--context", type=positive, default=None, metavar="TOKENS", help="context length for --max-memory")
    g.add_argument("--memory-dtype", choices=["float32", "bfloat16", "float16", "int8"], default="bfloat16",
                   help="the dtype --max-memory counts in (default bfloat16)")
    g = p.add_argument_group("two-stage search: short-train the metric's K best, choose the best after training")
    g.add_argument("--verify-top", type=positive, default=None, metavar="K", help="train the K best by the metric")
    g.add_argument("--train-budget", type=float, default=None, help="training budget of each (in --train-unit)")
    g.add_argument("--train-unit", choices=["steps", "tokens", "cpu-seconds"], default="steps",
                   help="the unit of --train-budget (default steps)")
    g.add_argument("--train-protocol", default=None, help="training protocol (default: the space's own)")
    g.add_argument("--train-size", default=None, help="model size to train at (default: the protocol's)")
    g.add_argument("--train-seed", type=seed, default=0, help="training seed (default 0)")
    settings_args(p)
    p.set_defaults(func=run_search)

    p = sub.add_parser("search-eval", help="compare strategies and metrics by what their searches choose in a benchmark")
    p.add_argument("--benchmark", required=True, help="the benchmark whose architectures the searches stay within "
                                                      "and whose trained results judge their choices")
    p.add_argument("--metrics", type=metric_list, default=None, help="metrics to search with (default: the space's first)")
    p.add_argument("--strategies", type=name_list, default=["random", "evolution"],
                   help="comma-separated (default random,evolution)")
    p.add_argument("--seeds", type=positive, default=20, help="searches per row, search seeds 0..N-1 (default 20)")
    p.add_argument("--budget", type=positive, default=100, help="distinct architectures per search (default 100)")
    p.add_argument("--limit", type=positive, default=None,
                   help="only the benchmark's first N records (all are scored before the searches start)")
    p.add_argument("--output", type=Path, default=None, help="the table as CSV")
    g = p.add_argument_group("at equal CPU time: metric only, training only (random archs trained), two-stage")
    g.add_argument("--cpu-budget", type=float, default=None, help="CPU-seconds per search; with --verify-top and "
                                                                  "--train-budget, compares the three")
    g.add_argument("--verify-top", type=positive, default=None, metavar="K", help="two-stage: train the K best")
    g.add_argument("--train-budget", type=float, default=None, help="training budget per architecture (--train-unit)")
    g.add_argument("--train-unit", choices=["steps", "tokens", "cpu-seconds"], default="steps",
                   help="the unit of --train-budget (default steps)")
    g.add_argument("--train-protocol", default=None, help="training protocol (default: the space's own)")
    g.add_argument("--train-size", default=None, help="model size to train at (default: the protocol's)")
    g.add_argument("--metric-cpu", type=float, default=None,
                   help="the metric's CPU-seconds per architecture (default: measured on the first 5)")
    settings_args(p)
    p.set_defaults(func=run_search_eval)


def run_search(args) -> int:
    from trainfree import __version__, api
    from trainfree.benchmarks import load_benchmark
    from trainfree.files import atomic_write

    check_outputs(args, args.output)
    if (args.verify_top is None) != (args.train_budget is None):  # refused before the search runs
        raise TrainfreeError("a two-stage search needs both --verify-top K and --train-budget B")
    bench = load_benchmark(args.benchmark) if args.benchmark else None
    space_name = args.space or (bench.space if bench else None)
    if args.space:
        from trainfree.spaces import get_space

        space_name = get_space(args.space).name  # a space file registers the space it declares
    if space_name is None:
        from trainfree.spaces import space_names

        raise TrainfreeError(f"give --space ({', '.join(space_names())}) or --benchmark")
    settings = settings_for(args, space_name, bench.corpus if bench else None)
    options = {"population": args.population} if args.population else {}
    objective = args.objective
    if args.strategy == "grid":
        options.update({"max_params": args.max_params, "max_memory": args.max_memory, "context": args.context,
                        "dtype": args.memory_dtype})
        objective = objective or "params"
    elif args.max_params is not None or args.max_memory is not None or args.context is not None:
        raise TrainfreeError("--max-params, --max-memory and --context are the grid's budget: use --strategy grid")
    with stored_run(args, desc="searching") as (store, progress), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a backwards metric's warning is printed below, with the notes
        result = api.search(space_name, args.metric, args.strategy, args.budget, args.search_seed, settings,
                            objective=objective, benchmark=bench, store=store, on_progress=progress,
                            **execution(args), **options)
    out = result.as_dict()
    print(f"{args.strategy} search of {space_name} by {out['metric']}"
          + (f" against {objective}" if objective else "")
          + f": {len(result.trials)} architectures evaluated, search seed {args.search_seed}")
    for note in result.notes:
        print(f"  {note}")
    if args.strategy == "grid":
        from trainfree.search.strategies import make_strategy

        print(f"  grid: every architecture meeting the budget ({make_strategy('grid', **result.options).budget_text()})")
    _print_trials(f"best {min(args.top, len(out['best']))} by {out['metric']}:", out["best"][: args.top])
    if objective:
        _print_trials(f"Pareto front ({out['metric']} against {objective}, cheapest first):", out["pareto"])
    chosen = out["chosen"]
    print(f"chosen: {chosen['arch_id']} {chosen['shape']}  {_fmt_values(chosen['values'])}")
    if bench is not None:
        ev = out["evaluation"]
        print(f"  trained result: {bench.target} {ev['target']:.4f}, percentile {ev['percentile']:.1f} "
              f"(0 = best), regret {ev['regret']:.4f} against the best {ev['best']:.4f}")
    if args.verify_top is not None or args.train_budget is not None:
        out["two_stage"] = verify(args, result, store_path=None if args.no_store else args.store)
    if args.output:
        from trainfree.spaces import get_space

        out["settings"] = get_space(space_name).identity(settings)
        out["trainfree_version"] = __version__
        out["command"] = invocation("search", "search")
        atomic_write(args.output, lambda fh: json.dump(out, fh, indent=1, allow_nan=True))
        print(f"wrote {args.output}")
    return 0


def verify(args, result, store_path) -> dict:
    """The second stage: short-train the K best and print the choice after training."""
    from trainfree.cli._common import open_store
    from trainfree.cli.train import checkpoint_dir
    from trainfree.search.two_stage import verify_top

    if args.verify_top is None or args.train_budget is None or not args.train_budget > 0:
        raise TrainfreeError("a two-stage search needs both --verify-top K and a positive --train-budget")
    store = open_store(args)
    try:
        v = verify_top(result, args.verify_top, args.train_budget, args.train_unit, args.train_seed,
                       args.train_protocol, store=store, checkpoint_dir=checkpoint_dir(args), size=args.train_size,
                       **execution(args))
    finally:
        if store is not None:
            store.close()
    out = v.as_dict()
    print(f"two-stage: trained the {len(v.run.results)} best by the metric for {v.run.budget.label()} "
          f"({v.run.trained} trained, {v.run.reused} from the store, {v.train_cpu_seconds:.1f} CPU-s of training)")
    for r in v.run.results:
        print(f"  {r.arch_id}  val_loss {r.val_loss:.4f}")
    line = f"chosen after training {v.chosen_arch_id}: val_loss {v.chosen_val_loss:.4f}"
    ev = out.get("evaluation")
    if ev is not None:
        line += (f"; {result.benchmark.target} {ev['target']:.4f}, percentile {ev['percentile']:.1f}, regret "
                 f"{ev['regret']:.4f}")
    print(line)
    return out


def run_search_eval(args) -> int:
    from trainfree import api
    from trainfree.benchmarks import load_benchmark

    check_outputs(args, args.output)
    if args.cpu_budget is not None:
        return run_equal_cpu(args)
    bench = load_benchmark(args.benchmark).head(args.limit)
    settings = settings_for(args, bench.space, bench.corpus)
    searching = Progress(args, "searching", unit="eval")  # the searches' evaluations, after the scoring pass
    with tempfile.TemporaryDirectory(prefix="trainfree-") as scratch:  # --no-store: removed afterwards
        with stored_run(args, scratch) as (store, progress):
            try:
                rows, summary = api.search_eval(bench, args.metrics, args.strategies, args.seeds, args.budget,
                                                settings, store, on_progress=progress, on_search_progress=searching,
                                                **execution(args))
            finally:
                searching.close()
    print(f"{bench.name}: {summary['distinct_architectures']} distinct architectures, target {bench.target} "
          f"({'lower' if bench.lower_is_better else 'higher'} is better); best {summary['best']:.4f}, "
          f"10th percentile {summary['p10']:.4f}; budget {args.budget}, search seeds 0..{args.seeds - 1}")
    columns = ["strategy", "metric", "searches", "target_mean", "target_sd", "percentile_mean", "percentile_median",
               "share_beyond_p10", "regret_mean"]
    print_table(rows, columns)
    if args.output:
        write_csv(args.output, rows, columns)
        print(f"wrote {args.output}")
    return 0


def run_equal_cpu(args) -> int:
    """`search-eval --cpu-budget C --verify-top K --train-budget B`: the three ways at C CPU-seconds each."""
    import time

    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.cli.train import checkpoint_dir
    from trainfree.search.compare import compare_at_equal_cpu
    from trainfree.spaces import get_space

    if args.verify_top is None or args.train_budget is None or not args.cpu_budget > 0:
        raise TrainfreeError("--cpu-budget needs --verify-top K and --train-budget B (and a positive budget)")
    if args.no_store:
        raise TrainfreeError("--cpu-budget reads stored training runs: give --store, not --no-store")
    bench = load_benchmark(args.benchmark).head(args.limit)
    settings = settings_for(args, bench.space, bench.corpus)
    metric = (args.metrics or [get_space(bench.space).default_metrics[0]])[0]
    strategy = args.strategies[0]
    metric_cpu = args.metric_cpu
    if metric_cpu is None:  # measured here, in this process, model builds included
        first = [(r.name, r.arch) for r in bench.records[:5]]
        t0 = time.process_time()
        api.score(space=bench.space, archs=first, metrics=[metric], settings=settings, jobs=1, threads=1)
        metric_cpu = (time.process_time() - t0) / len(first)
    with stored_run(args, desc="searching") as (store, progress):
        ex = execution(args)
        rows, summary = compare_at_equal_cpu(bench, metric, strategy, range(args.seeds), args.cpu_budget,
                                             args.verify_top, args.train_budget, settings, store, metric_cpu,
                                             unit=args.train_unit, protocol=args.train_protocol,
                                             size=args.train_size, jobs=ex["jobs"], executor=ex["executor"],
                                             checkpoint_dir=checkpoint_dir(args))
    print(f"{bench.name}: {summary['pool']} distinct architectures, 10th percentile {summary['p10']:.4f}, best "
          f"{summary['best']:.4f}; {args.cpu_budget:g} CPU-s per search (metric {metric_cpu:.3f} s/arch, training "
          f"{summary['train_cpu_per_arch']:.1f} s/arch: {summary['protocol']}, {summary['budget']}); seeds 0..{args.seeds - 1}")
    columns = ["method", "setting", "searches", "target_mean", "target_sd", "percentile_mean", "share_beyond_p10",
               "cpu_mean"]
    print_table(rows, columns)
    if args.output:
        write_csv(args.output, rows, columns)
        print(f"wrote {args.output}")
    return 0
