"""`trainfree search` and `trainfree search-eval`."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from trainfree.errors import TrainfreeError

SPACE_NAMES = ("nasbench-nlp", "nasbench-bert", "decoder")


def _space_settings(args, space_name: str, corpus: str | None = None):
    from trainfree.cli import _settings

    return _settings(args, argparse.Namespace(space=space_name, corpus=corpus))


def _open_store(args, scratch_dir: str | None = None):
    """The store the flags ask for; with --no-store, None, or a throwaway one in ``scratch_dir``."""
    from trainfree.store import Store, default_store_path

    if args.no_store:
        return Store(Path(scratch_dir) / "scores.sqlite") if scratch_dir else None
    return Store(args.store or default_store_path())


def _fmt_values(values: dict) -> str:
    return ", ".join(f"{k} {v:.6g}" for k, v in values.items())


def cmd_search(args) -> int:
    from trainfree import __version__
    from trainfree.benchmarks import load_benchmark
    from trainfree.cli import _Progress, _invocation
    from trainfree.executors import default_jobs
    from trainfree.scores import atomic_write
    from trainfree.search import run_search
    from trainfree.spaces import get_space

    bench = load_benchmark(args.benchmark) if args.benchmark else None
    space_name = args.space or (bench.space if bench else None)
    if space_name is None:
        raise TrainfreeError("give --space (nasbench-nlp or nasbench-bert) or --benchmark")
    metric = args.metric or get_space(space_name).default_metrics[0]
    settings = _space_settings(args, space_name, bench.corpus if bench else None)
    store = _open_store(args)
    progress = _Progress(args)
    try:
        result = run_search(space_name, metric, args.strategy, args.budget, args.search_seed, settings,
                            objective=args.objective, benchmark=bench, store=store, jobs=args.jobs or default_jobs(),
                            executor=args.executor, address=args.address, on_progress=progress, threads=args.threads,
                            **({"population": args.population} if args.population else {}))
    except KeyboardInterrupt:
        if store is not None:
            print(f"\ninterrupted: scores so far are kept in {store.path}; rerun the same command to resume",
                  file=sys.stderr)
        raise
    finally:
        progress.close()
        if store is not None:
            store.close()
    out = result.as_dict()
    print(f"{args.strategy} search of {space_name} by {metric}"
          + (f" against {args.objective}" if args.objective else "")
          + f": {len(result.trials)} architectures evaluated, seed {args.search_seed}")
    shown = out["pareto"] if args.objective else out["best"][: args.top]
    print("Pareto set (cheapest first):" if args.objective else f"best {len(shown)}:")
    for t in shown:
        print(f"  {t['arch_id']}  {_fmt_values(t['values'])}")
    if bench is not None:
        ev = out["evaluation"]
        print(f"chosen {out['chosen']['arch_id']}: {bench.target} {ev['target']:.4f}, percentile {ev['percentile']:.1f} "
              f"(0 = best), regret {ev['regret']:.4f} against the best {ev['best']:.4f}")
    if args.output:
        out["settings"] = settings.identity()
        out["trainfree_version"] = __version__
        out["command"] = _invocation("search", "search")
        atomic_write(args.output, lambda fh: json.dump(out, fh, indent=1, allow_nan=True))
        print(f"wrote {args.output}")
    return 0


def cmd_search_eval(args) -> int:
    from trainfree.benchmarks import load_benchmark
    from trainfree.cli import _Progress, _print_table, _write_csv
    from trainfree.executors import default_jobs
    from trainfree.search import search_eval
    from trainfree.spaces import get_space

    bench = load_benchmark(args.benchmark)
    metrics = args.metrics or [get_space(bench.space).default_metrics[0]]
    settings = _space_settings(args, bench.space, bench.corpus)
    progress = _Progress(args)
    with tempfile.TemporaryDirectory(prefix="trainfree-") as scratch:  # --no-store: removed afterwards
        store = _open_store(args, scratch)
        try:
            rows, summary = search_eval(bench, metrics, args.strategies, list(range(args.seeds)), args.budget,
                                        settings, store, jobs=args.jobs or default_jobs(), executor=args.executor,
                                        on_progress=progress, threads=args.threads)
        finally:
            progress.close()
            store.close()
    print(f"{bench.name}: {summary['distinct_architectures']} distinct architectures, target {bench.target} "
          f"({'lower' if bench.lower_is_better else 'higher'} is better); best {summary['best']:.4f}, "
          f"10th percentile {summary['p10']:.4f}; budget {args.budget}, seeds 0..{args.seeds - 1}")
    columns = ["strategy", "metric", "seeds", "target_mean", "target_sd", "percentile_mean", "percentile_median",
               "share_beyond_p10", "regret_mean"]
    _print_table(rows, columns)
    if args.output:
        _write_csv(args.output, rows, columns)
        print(f"wrote {args.output}")
    return 0


def add_parsers(sub, settings_args, positive, metric_list) -> None:
    from trainfree.search.strategies import STRATEGIES

    p = sub.add_parser("search", help="search a space (or a benchmark's architectures) with a training-free metric")
    p.add_argument("--space", choices=SPACE_NAMES, default=None, help="the space to search (default: the benchmark's)")
    p.add_argument("--metric", default=None, help="metric to maximise in its registered direction (default: the "
                                                  "space's first default metric, hidden_cov / head_confidence)")
    p.add_argument("--objective", default=None,
                   help="a cost to minimise as well, e.g. params or latency (multi-objective: nsga2 or random)")
    p.add_argument("--strategy", choices=list(STRATEGIES.names()), default="random")
    p.add_argument("--budget", type=positive, default=100, help="distinct architectures to evaluate (default 100)")
    p.add_argument("--seed", dest="search_seed", type=int, default=0,
                   help="seed of the strategy's random choices (default 0; --model-seed seeds the models)")
    p.add_argument("--population", type=positive, default=None, help="population size (evolution, nsga2; default 20)")
    p.add_argument("--benchmark", default=None,
                   help="stay within this benchmark's architectures and report the trained result of the choice")
    p.add_argument("--top", type=positive, default=5, help="how many of the best to print (default 5)")
    p.add_argument("--output", type=Path, default=None, help="JSON with every trial, the best, the Pareto set")
    settings_args(p, seed_flag="--model-seed")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("search-eval", help="compare strategies and metrics by what their searches choose in a benchmark")
    p.add_argument("--benchmark", required=True)
    p.add_argument("--metrics", type=metric_list, default=None, help="metrics to search with (default: the space's first)")
    p.add_argument("--strategies", type=lambda t: [s.strip() for s in t.split(",") if s.strip()],
                   default=["random", "evolution"], help="comma-separated (default random,evolution)")
    p.add_argument("--seeds", type=positive, default=20, help="searches per row, seeds 0..N-1 (default 20)")
    p.add_argument("--budget", type=positive, default=100, help="distinct architectures per search (default 100)")
    p.add_argument("--output", type=Path, default=None, help="the table as CSV")
    settings_args(p)
    p.set_defaults(func=cmd_search_eval)
