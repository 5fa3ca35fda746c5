"""The ``trainfree`` command line: sub-commands map onto trainfree.api; no logic of its own."""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from trainfree import __version__
from trainfree.errors import TrainfreeError


def _metric_list(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of metric names")
    return names


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _int_list(text: str) -> list[int]:
    return [_positive(x.strip()) for x in text.split(",") if x.strip()]


def _settings_args(p: argparse.ArgumentParser, seed_flag: str = "--seed", execution: bool = True) -> None:
    g = p.add_argument_group("settings (defaults: the paper's protocol for the benchmark's space)")
    g.add_argument(seed_flag, dest="seed", type=int, default=0, help="seed the models are built under (default 0)")
    g.add_argument("--size", default=None,
                   help="model size preset (default paper). NAS-Bench-NLP: paper, small, tiny; "
                        "NAS-Bench-BERT: paper (the paper's metric model), as-specified, tiny")
    g.add_argument("--corpus", default=None,
                   help="input corpus: ptb, wikitext-2 (default: the benchmark's own; NAS-Bench-BERT: wikitext-2)")
    g.add_argument("--batch-size", type=_positive, default=None,
                   help="sequences per batch (default 50 for RNNs, 32 for BERT)")
    g.add_argument("--seq-len", type=_positive, default=None, help="tokens per sequence (default 70 for RNNs, 128 for BERT)")
    g.add_argument("--offset", type=int, default=0, help="token offset of the input window (default 0)")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    if not execution:
        return
    g = p.add_argument_group("execution and storage")
    g.add_argument("--jobs", type=_positive, default=None,
                   help="parallel jobs, each on --threads cores (default: the number of cores)")
    g.add_argument("--threads", type=_positive, default=1,
                   help="torch threads per job (default 1, so --jobs N uses N cores: separate jobs "
                        "scale better than threads on the small recurrent matmuls)")
    g.add_argument("--executor", choices=["local", "process", "ray"], default=None,
                   help="local (in-process), process (a process pool; the default when --jobs > 1), "
                        "or ray (needs trainfree[ray]; with --address for a cluster)")
    g.add_argument("--address", default=None, help="Ray cluster address for --executor ray (default: start a local one)")
    g.add_argument("--store", type=Path, default=None,
                   help="results store (SQLite); finished keys are reused and a killed run resumes "
                        "(default: $TRAINFREE_STORE or ~/.cache/trainfree/scores.sqlite)")
    g.add_argument("--no-store", action="store_true", help="compute everything afresh and store nothing")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _settings(args, bench):
    """The space's defaults, overridden by the flags given; the corpus defaults to the benchmark's."""
    from trainfree.spaces import get_space

    base = get_space(bench.space).default_settings()
    given = {"size": args.size, "corpus": args.corpus or bench.corpus, "batch_size": args.batch_size,
             "seq_len": args.seq_len}
    return base.with_(seed=args.seed, offset=args.offset, device=args.device,
                      **{k: v for k, v in given.items() if v is not None})


class _Progress:
    """A tqdm bar with rate and ETA on a terminal; silent otherwise or with --quiet."""

    def __init__(self, args):
        self.enabled = not args.quiet and sys.stderr.isatty()
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="arch", desc="scoring", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_scoring(args, bench, metrics, settings):
    """Score with the store and executor the flags ask for; the rows come back from the store."""
    from trainfree import api
    from trainfree.executors import default_jobs
    from trainfree.store import Store, default_store_path

    store = None if args.no_store else Store(args.store or default_store_path())
    progress = _Progress(args)
    try:
        return api.score(bench, metrics, settings, limit=args.limit, jobs=args.jobs or default_jobs(),
                         executor=args.executor, store=store, address=args.address, on_progress=progress,
                         threads=args.threads)
    except KeyboardInterrupt:
        if store is not None:
            print(f"\ninterrupted: finished scores are kept in {store.path}; rerun to resume", file=sys.stderr)
        raise
    finally:
        progress.close()
        if store is not None:
            store.close()


def _fmt(x) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4f}"
    return str(x)


def _print_table(rows: list[dict], columns: list[str]) -> None:
    cells = [[_fmt(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    from trainfree.scores import atomic_write

    def write(fh):
        out = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        out.writeheader()
        out.writerows(rows)

    atomic_write(path, write)


def cmd_score(args) -> int:
    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.scores import write_scores
    from trainfree.spaces import get_space

    bench = load_benchmark(args.benchmark)
    settings = _settings(args, bench)
    metrics = args.metrics or list(get_space(bench.space).default_metrics)
    run = _run_scoring(args, bench, metrics, settings)
    rows = run.rows
    meta = api.provenance(settings, metrics, bench.head(args.limit))
    write_scores(args.output, rows, meta)
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "nonfinite", "failed")}
    print(f"wrote {len(rows)} scores ({counts['ok']} ok, {counts['nonfinite']} nonfinite, "
          f"{counts['failed']} failed) for {len({r.name for r in rows})} architectures to {args.output} "
          f"(computed {run.computed}, reused {run.reused} from the store)")
    return 0


def cmd_correlate(args) -> int:
    from trainfree import api
    from trainfree.scores import read_scores

    results = [r.as_dict() for r in api.correlate(args.benchmark, read_scores(args.scores),
                                                  ci_resamples=args.resamples if args.ci else 0,
                                                  topk=args.topk, seed=args.seed, baseline=args.baseline,
                                                  resamples=args.resamples)]
    columns = ["metric", "n", "dropped", "kendall_tau", "spearman", "pearson"]
    if args.ci:
        columns += [f"{s}_{e}" for s in ("kendall_tau", "spearman", "pearson") for e in ("low", "high")]
    columns += [f"top{k}_precision" for k in args.topk]
    if args.baseline:
        columns += ["tau_minus_baseline", "tau_minus_baseline_low", "tau_minus_baseline_high"]
    _print_table(results, columns)
    print("(signed: positive = the metric ranks better-trained architectures higher)")
    if args.baseline:
        print(f"(tau_minus_baseline: Kendall tau minus {args.baseline}'s on the architectures both scored, with a "
              f"95% paired-bootstrap interval; an interval above 0 means the metric ranks better)")
    if args.output:
        _write_csv(args.output, results, columns)
    return 0


#: what `reproduce PART` compares by default
PARTS = {
    "rnn": {"benchmark": "nasbench-nlp-ptb", "space": "nasbench-nlp", "published": None, "key": "log name"},
    "bert": {"benchmark": "nasbench-bert", "space": "nasbench-bert",
             "published": "nasbench_bert/paper_bert_metrics.csv.gz", "key": "ID"},
}


def cmd_reproduce(args) -> int:
    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.benchmarks.published import load_published
    from trainfree.evaluation.reproduce import default_metrics, reproduce_table, to_markdown
    from trainfree.scores import atomic_write

    part = PARTS[args.part]
    bench = load_benchmark(args.benchmark or part["benchmark"])
    if bench.space != part["space"]:
        raise TrainfreeError(f"reproduce {args.part} needs a {part['space']} benchmark, got {bench.space}")
    settings = _settings(args, bench)
    published = None
    if args.published != "none":
        path = part["published"] if args.published == "shipped" else args.published
        published = load_published(path, key=part["key"])
    metrics = args.metrics or default_metrics(bench.space)
    rows = _run_scoring(args, bench, metrics, settings).rows
    table = reproduce_table(bench.head(args.limit), rows, published)
    dicts = [r.as_dict() for r in table]
    _print_table(dicts, ["metric", "ours_n", "ours_kendall_tau", "published_kendall_tau", "ours_spearman",
                         "agreement_spearman", "seconds_median"])
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    args.name = args.name or f"results-{args.part}"
    _write_csv(out / f"{args.name}.csv", dicts, list(dicts[0]))
    meta = api.provenance(settings, metrics, bench.head(args.limit))
    note = (f"Benchmark `{bench.name}` ({len(bench.head(args.limit))} architectures, target `{bench.target}`, "
            f"{'lower' if bench.lower_is_better else 'higher'} is better); signed so that positive = the metric ranks better-trained architectures higher. "
            f"Settings fingerprint `{meta['fingerprint']}`, trainfree {meta['trainfree_version']}, "
            f"torch {meta['torch_version']}, corpus `{settings.corpus}`.\n\n"
            f"Command: `{_invocation('reproduce', 'reproduce ' + args.part)}`")
    title = f"{'RNN' if args.part == 'rnn' else 'Transformer'} metrics on {bench.name}"
    atomic_write(out / f"{args.name}.md", lambda fh: fh.write(to_markdown(table, title, note)))
    atomic_write(out / f"{args.name}.meta.json", lambda fh: json.dump(meta, fh, indent=2, sort_keys=True))
    print(f"wrote {out / (args.name + '.csv')} and {out / (args.name + '.md')}")
    return 0


def cmd_analyze(args) -> int:
    from trainfree import api
    from trainfree.scores import atomic_write

    result = api.analyze(args.benchmark, target=args.target, alpha=args.alpha, permutations=args.permutations,
                         max_conditions=args.max_conditions, min_leaf=args.min_leaf, resamples=args.resamples,
                         seed=args.seed)
    print("\n".join(result.summary()))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / f"{args.name}.csv", result.table_rows(), ["factor", "level", "n", "mean", "sd"])
    command = _invocation("analyze", "analyze")
    atomic_write(out / f"{args.name}.md", lambda fh: fh.write(result.markdown(command)))
    print(f"wrote {out / (args.name + '.csv')} and {out / (args.name + '.md')}")
    return 0


def cmd_export(args) -> int:
    from trainfree.store import Store, default_store_path

    path = args.store or default_store_path()
    if not path.exists():
        raise TrainfreeError(f"{path}: no such store")
    with Store(path) as store:
        rows = store.export_rows()
    columns = ["arch_id", "benchmark", "name", "space", "metric", "metric_version", "fingerprint", "value", "status",
               "error", "seconds", "trainfree_version", "settings"]
    if args.format == "csv":
        _write_csv(args.output, rows, columns)
    else:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise TrainfreeError("parquet export needs pyarrow: pip install 'trainfree[parquet]'") from None
        from trainfree.scores import atomic_write_binary

        table = pa.Table.from_pylist([{c: r[c] for c in columns} for r in rows])
        atomic_write_binary(args.output, lambda fh: pq.write_table(table, fh))
    print(f"exported {len(rows)} rows from {path} to {args.output}")
    return 0


def _invocation(command: str, fallback: str) -> str:
    """The command line that produced an output, for the record (the fallback when called from Python)."""
    return "trainfree " + (" ".join(sys.argv[1:]) if sys.argv[1:2] == [command] else fallback)


def cmd_metrics(args) -> int:
    from trainfree.metrics import METRICS

    shown = [m for m in METRICS if not args.space or args.space in m.spaces]
    width = max(len(m.name) for m in shown)
    for m in shown:
        direction = "higher" if m.higher_is_better else "lower"
        print(f"{m.name:{width}s} {direction:6s} v{m.version:3s} needs={','.join(sorted(m.needs)):24s} "
              f"spaces={','.join(m.spaces):14s} {m.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainfree", description="Training-free architecture search for language models.")
    parser.add_argument("--version", action="version", version=f"trainfree {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("score", help="score a benchmark's architectures with training-free metrics")
    p.add_argument("--benchmark", required=True, help="a shipped name (nasbench-nlp-ptb, nasbench-nlp-wikitext2) or a "
                                                      "path: results .csv/.csv.gz, or a .zip/folder of training logs")
    p.add_argument("--metrics", type=_metric_list, default=None,
                   help="comma-separated metric names (default: the space's default set, hidden_cov,params for "
                        "NAS-Bench-NLP; see `trainfree metrics`)")
    p.add_argument("--limit", type=_positive, default=None, help="score only the first N records")
    p.add_argument("--output", type=Path, required=True, help="scores CSV to write (with a .meta.json beside it)")
    _settings_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("correlate", help="correlate scores with a benchmark's trained results")
    p.add_argument("--benchmark", required=True, help="the benchmark the scores were computed on")
    p.add_argument("--scores", type=Path, required=True, help="a scores CSV written by `trainfree score`")
    p.add_argument("--output", type=Path, default=None, help="also write the table as CSV")
    p.add_argument("--ci", action="store_true", help="add 95%% percentile-bootstrap intervals")
    p.add_argument("--resamples", type=_positive, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--topk", type=_int_list, default=[], help="comma-separated k for top-k precision, e.g. 10,50")
    p.add_argument("--baseline", default=None,
                   help="a metric among the scores (e.g. params): add each metric's tau minus the baseline's, "
                        "with a paired-bootstrap 95%% interval")
    p.set_defaults(func=cmd_correlate)

    p = sub.add_parser("reproduce", help="reproduce the paper's tables")
    p.add_argument("part", choices=["rnn", "bert"], help="which table")
    p.add_argument("--benchmark", default=None, help="benchmark (default nasbench-nlp-ptb / nasbench-bert)")
    p.add_argument("--published", default="shipped",
                   help="published metrics CSV: 'shipped' (default), a path, or 'none' (e.g. for WikiText-2)")
    p.add_argument("--metrics", type=_metric_list, default=None, help="metrics (default: all with a published column)")
    p.add_argument("--limit", type=_positive, default=None, help="use only the first N records")
    p.add_argument("--output-dir", default="results", help="where to write NAME.csv, NAME.md (default results/)")
    p.add_argument("--name", default=None, help="output file stem (default results-PART)")
    _settings_args(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("analyze", help="analyse a benchmark's search space and find a shrinking rule from the data")
    p.add_argument("--benchmark", required=True, help="a shipped name (e.g. nasbench-bert) or a benchmark file")
    p.add_argument("--target", default=None, help="NAS-Bench-BERT: glue (default) or a task (cola, mnli, ...)")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="a split is kept only if it beats the permutation null of the best of all candidate "
                        "splits at this level (default 0.01)")
    p.add_argument("--permutations", type=_positive, default=999, help="permutations per test (default 999)")
    p.add_argument("--min-leaf", type=_positive, default=5, help="fewest architectures on either side of a split (default 5)")
    p.add_argument("--resamples", type=int, default=100,
                   help="bootstrap refits for the rule's stability; 0 skips it (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutations and resamples (default 0)")
    p.add_argument("--max-conditions", type=_positive, default=3, help="most conditions in the rule (default 3)")
    p.add_argument("--output-dir", default="results", help="where to write NAME.csv and NAME.md (default results/)")
    p.add_argument("--name", default="analysis", help="output file stem (default analysis)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("export", help="export a results store as CSV or Parquet")
    p.add_argument("--store", type=Path, default=None, help="the store (default: the default store)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("metrics", help="list the registered metrics")
    p.add_argument("--space", choices=["nasbench-nlp", "nasbench-bert", "decoder"], default=None,
                   help="only the metrics of this space")
    p.set_defaults(func=cmd_metrics)

    from trainfree import cli_report, cli_search

    cli_search.add_parsers(sub, _settings_args, _positive, _metric_list)
    cli_report.add_parser(sub, _settings_args, _positive)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TrainfreeError as err:
        print(f"trainfree: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trainfree: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # never a bare traceback for users; --debug shows it
        if args.debug:
            raise
        print(f"trainfree: internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
