"""What every sub-command shares: flag types, the settings and execution flags, progress, tables."""
from __future__ import annotations

import argparse
import csv
import math
import sys
from contextlib import contextmanager
from pathlib import Path


def metric_list(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of metric names")
    return names


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def int_list(text: str) -> list[int]:
    return [positive(x.strip()) for x in text.split(",") if x.strip()]


def name_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def settings_args(p: argparse.ArgumentParser, execution: bool = True) -> None:
    """The model settings (``--seed`` is the model seed in every sub-command) and, with ``execution``,
    where the work runs and where its results go."""
    g = p.add_argument_group("settings (defaults: the paper's protocol for the benchmark's space)")
    g.add_argument("--seed", "--model-seed", dest="seed", type=int, default=0,
                   help="seed the models are built under (default 0)")
    from trainfree.spaces import SPACES

    g.add_argument("--size", default=None,
                   help="model size preset (default paper). " + "; ".join(f"{e.name}: {', '.join(e.sizes)}"
                                                                         for e in SPACES))
    g.add_argument("--corpus", default=None,
                   help="input corpus: ptb, wikitext-2 (default: the benchmark's own; NAS-Bench-BERT: wikitext-2)")
    g.add_argument("--batch-size", type=positive, default=None,
                   help="sequences per batch (default 50 for RNNs, 32 for BERT)")
    g.add_argument("--seq-len", type=positive, default=None, help="tokens per sequence (default 70 for RNNs, 128 for BERT)")
    g.add_argument("--offset", type=int, default=0, help="token offset of the input window (default 0)")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    if not execution:
        return
    g = p.add_argument_group("execution and storage")
    g.add_argument("--jobs", type=positive, default=None,
                   help="parallel jobs, each on --threads cores (default: the number of cores)")
    g.add_argument("--threads", type=positive, default=1,
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


def settings_for(args, space_name: str, corpus: str | None = None):
    """The space's defaults, overridden by the flags given; the corpus defaults to the benchmark's."""
    from trainfree.spaces import get_space

    base = get_space(space_name).default_settings()
    given = {"size": args.size, "corpus": args.corpus or corpus, "batch_size": args.batch_size,
             "seq_len": args.seq_len}
    return base.with_(seed=args.seed, offset=args.offset, device=args.device,
                      **{k: v for k, v in given.items() if v is not None})


class Progress:
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


def open_store(args, scratch_dir: str | None = None):
    """The store the flags ask for; with --no-store, None, or a throwaway one in ``scratch_dir``."""
    from trainfree.store import Store, default_store_path

    if args.no_store:
        return Store(Path(scratch_dir) / "scores.sqlite") if scratch_dir else None
    return Store(args.store or default_store_path())


def execution(args) -> dict:
    """The execution flags as keyword arguments of the api verbs."""
    from trainfree.executors import default_jobs

    return {"jobs": args.jobs or default_jobs(), "executor": args.executor, "address": args.address,
            "threads": args.threads}


@contextmanager
def stored_run(args, scratch_dir: str | None = None):
    """(store, progress) for a long command; on Ctrl-C says where the finished work is kept."""
    store = open_store(args, scratch_dir)
    progress = Progress(args)
    try:
        yield store, progress
    except KeyboardInterrupt:
        if store is not None and scratch_dir is None:
            print(f"\ninterrupted: finished work is kept in {store.path}; rerun the same command to resume",
                  file=sys.stderr)
        raise
    finally:
        progress.close()
        if store is not None:
            store.close()


def fmt(x) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4f}"
    return str(x)


def print_table(rows: list[dict], columns: list[str]) -> None:
    cells = [[fmt(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    from trainfree.scores import atomic_write

    def write(fh):
        out = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        out.writeheader()
        out.writerows(rows)

    atomic_write(path, write)


def invocation(command: str, fallback: str) -> str:
    """The command line that produced an output, for the record (the fallback when called from Python)."""
    return "trainfree " + (" ".join(sys.argv[1:]) if sys.argv[1:2] == [command] else fallback)
