"""What every sub-command shares: flag types, the settings and execution flags, progress, tables."""
from __future__ import annotations

import argparse
import csv
import math
import os
import signal
import sys
import threading
import time
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


def seed(text: str) -> int:
    """A seed flag: an integer from 0 to 2**32 - 1 (what every generator trainfree seeds accepts)."""
    from trainfree.config import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {text[:40]!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED} (2**32 - 1), got {text[:40]}")
    return value


def device(text: str) -> str:
    from trainfree.config import check_device
    from trainfree.errors import InvalidSetting

    try:
        return check_device(text)
    except InvalidSetting as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def int_list(text: str) -> list[int]:
    return [positive(x.strip()) for x in text.split(",") if x.strip()]


def name_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def settings_args(p: argparse.ArgumentParser, execution: bool = True) -> None:
    """The model settings (``--seed`` is the model seed in every sub-command) and, with ``execution``,
    where the work runs and where its results go."""
    g = p.add_argument_group("settings (defaults: the paper's protocol for the benchmark's space)")
    g.add_argument("--seed", "--model-seed", dest="seed", type=seed, default=0,
                   help="seed the models are built under (default 0)")
    from trainfree.spaces import SPACES

    g.add_argument("--size", default=None,
                   help="model size preset (default paper). " + "; ".join(f"{e.name}: {', '.join(e.sizes)}"
                                                                         for e in SPACES))
    g.add_argument("--corpus", default=None,
                   help="input corpus: ptb, wikitext-2, or a plain text file of your own (a path; every split reads "
                        "the whole file) (default: the benchmark's own, else wikitext-2)")
    g.add_argument("--tokenizer", default=None, metavar="PATH",
                   help="a tokenizers JSON file (tokenizer.json, read offline) for the hf spaces and space files "
                        "(default: the shipped uncased WordPiece, 30,522 entries)")
    batches = "; ".join(f"{e.name} {e.batch[0]} x {e.batch[1]}" for e in SPACES if e.batch)
    g.add_argument("--batch-size", type=positive, default=None,
                   help=f"sequences per batch (default: the space's own; sequences x tokens: {batches})")
    g.add_argument("--seq-len", type=positive, default=None, help="tokens per sequence (default: the space's own)")
    g.add_argument("--offset", type=int, default=0, help="token offset of the input window (default 0)")
    g.add_argument("--device", type=device, default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
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
    g.add_argument("--quiet", action="store_true",
                   help="no progress (otherwise a bar on a terminal, a line every 10 s or 10%% in a log)")


def settings_for(args, space_name: str, corpus: str | None = None):
    """The space's defaults, overridden by the flags given; the corpus defaults to the benchmark's."""
    from trainfree.spaces import get_space

    base = get_space(space_name).default_settings()
    given = {"size": args.size, "corpus": args.corpus or corpus, "batch_size": args.batch_size,
             "seq_len": args.seq_len, "tokenizer": getattr(args, "tokenizer", None)}
    return base.with_(seed=args.seed, offset=args.offset, device=args.device,
                      **{k: v for k, v in given.items() if v is not None})


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


#: what a progress unit counts, in words
UNIT_NAMES = {"arch": "architectures", "eval": "evaluations", "cpu-s": "CPU-seconds"}


class Progress:
    """Progress on stderr: a tqdm bar (rate, ETA) on a terminal; elsewhere (a log, nohup, CI) a plain
    line every ``every`` seconds and every tenth of the work; nothing with --quiet."""

    def __init__(self, args, desc: str = "scoring", every: float = 10.0, stream=None, unit: str = "arch"):
        self.stream = stream or sys.stderr
        self.enabled = not getattr(args, "quiet", False)
        self.tty = self.enabled and self.stream.isatty()
        self.desc, self.every, self.unit = desc, every, unit
        self.bar = None
        self.started = self.last = self.base = None
        self.next_tenth = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit=self.unit, desc=self.desc, file=self.stream)
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        if self.started is None:
            self.started, self.last, self.base = now, now, done
            self.next_tenth = done * 10 // total + 1
            left = f"{total - done} of {total}" if done else str(total)
            print(f"{self.desc}: {left} {UNIT_NAMES.get(self.unit, self.unit)} to go", file=self.stream, flush=True)
            return
        tenth = done * 10 // total
        if done < total and now - self.last < self.every and tenth < self.next_tenth:
            return
        self.last, self.next_tenth = now, tenth + 1
        elapsed = now - self.started
        rate = (done - self.base) / elapsed if elapsed > 0 else math.inf
        eta = (total - done) / rate if rate > 0 else math.inf
        line = f"{self.desc}: {done}/{total} ({100 * done / total:.0f}%), {rate:.2f} {self.unit}/s, elapsed {duration(elapsed)}"
        if done < total:
            line += ", ETA " + (duration(eta) if math.isfinite(eta) else "unknown")
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: stop the run, keep what finished."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def signals_stop_the_run():
    """The first Ctrl-C or SIGTERM stops the run: workers are ended, finished work stored, the command
    exits. A second one exits at once (the workers end with the driver)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    seen = []

    def on_signal(signum, frame):
        if seen:
            os._exit(128 + signum)
        seen.append(signum)
        print("\ntrainfree: stopping: ending the workers and storing the finished work "
              "(Ctrl-C again to exit at once)", file=sys.stderr, flush=True)
        raise Interrupted(signum)

    before = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def check_outputs(args, *outputs, dirs: dict | None = None) -> None:
    """Refuse, before any work, ``--output`` files (and files beside them), output folders (``dirs``:
    flag -> folder) and a ``--store`` that cannot be written; a cuda ``--device`` without CUDA too."""
    from trainfree.errors import TrainfreeError
    from trainfree.files import check_writable

    for path in outputs:
        if path is not None:
            try:
                check_writable(Path(path))
            except TrainfreeError as err:
                raise TrainfreeError(f"--output: {err}") from None
    for flag, folder in (dirs or {}).items():
        if folder is not None:
            _check_folder(Path(folder), f"{flag} {folder}: ")
    if hasattr(args, "no_store") and not args.no_store:  # a command that writes a store
        from trainfree.store import default_store_path

        store = args.store or default_store_path()
        if store.is_dir():
            raise TrainfreeError(f"--store {store}: is a directory; give a file name, e.g. {store / 'scores.sqlite'}")
        _check_folder(store.parent, f"--store {store}: ")
    if hasattr(args, "no_store") and args.device.startswith("cuda"):  # a command that runs models
        from trainfree.config import ScoreSettings

        try:
            ScoreSettings(device=args.device).resolved_device()
        except TrainfreeError as err:
            raise TrainfreeError(f"--device: {err}") from None


def _check_folder(folder: Path, prefix: str) -> None:
    """A folder that is there and writable, or can be made: its nearest existing ancestor is a writable folder."""
    import os

    from trainfree.errors import TrainfreeError

    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise TrainfreeError(f"{prefix}{probe} is not a directory" + (f", so {folder} cannot be made" if probe != folder else ""))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise TrainfreeError(f"{prefix}directory {probe} is not writable")


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
def stored_run(args, scratch_dir: str | None = None, desc: str = "scoring"):
    """(store, progress) for a long command; on Ctrl-C says where the finished work is kept."""
    store = open_store(args, scratch_dir)
    progress = Progress(args, desc)
    try:
        yield store, progress
    except KeyboardInterrupt:
        if store is not None and scratch_dir is None:
            print(f"\ninterrupted: finished work is kept in {store.path}; rerun to resume (the same command "
                  f"continues where this one stopped)",
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
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    from trainfree.files import atomic_write

    def write(fh):
        out = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        out.writeheader()
        out.writerows(rows)

    atomic_write(path, write)


def invocation(command: str, fallback: str) -> str:
    """The command line that produced an output, for the record (the fallback when called from Python)."""
    return "trainfree " + (" ".join(sys.argv[1:]) if sys.argv[1:2] == [command] else fallback)
