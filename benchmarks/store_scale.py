"""Store time at scale: a store holding 1,000,000 score rows, then 10 new architectures scored
against it through the runner. Prints the time spent inside the store (opening it, with its
integrity check, and every store call the runner makes), next to the scoring itself.

    python benchmarks/store_scale.py [--rows 1000000] [--new 10] [--store PATH]

Goal: scoring 10 new architectures adds under a second of store time. Opening a store
runs ``PRAGMA quick_check``, which reads the whole file, unless the file is as trainfree's last clean
close left it; the third run forces the check to show what it costs at this size. The rows are
synthetic (random architecture ids, four metrics, two settings fingerprints, one of them the run's),
inserted in bulk; the 10 architectures are sampled from NAS-Bench-NLP with a fixed seed and scored
with the ``params`` metric at the tiny size, so the scoring itself is short.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from trainfree.config import ScoreSettings
from trainfree.metrics import get_metric
from trainfree.runner import score_architectures
from trainfree.spaces import get_space
from trainfree.store import Store

METRICS = ("params", "hidden_cov", "hidden_cov_l2", "synflow")
STORE_CALLS = ("add_architectures", "add_settings", "add_names", "done", "put", "get")


class TimedStore(Store):
    """A Store that adds up the wall time of each call the runner makes."""

    def __init__(self, path, verify="changed"):
        self.seconds = defaultdict(float)
        start = time.perf_counter()
        super().__init__(path, verify=verify)
        self.seconds["open" + (" (with quick_check)" if self.checked else " (file unchanged: no check)")] += (
            time.perf_counter() - start)


def _timed(name):
    method = getattr(Store, name)

    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.seconds[name] += time.perf_counter() - start

    return wrapper


for _name in STORE_CALLS:
    setattr(TimedStore, _name, _timed(_name))


def build(path: Path, rows: int, fingerprint: str, seed: int) -> None:
    """``rows`` synthetic scores: rows / 8 architectures x 4 metrics x 2 fingerprints."""
    rng = np.random.default_rng(seed)
    n_arch = rows // (2 * len(METRICS))
    ids = [f"{x:016x}" for x in rng.integers(0, 2**63, size=n_arch)]
    versions = {m: get_metric(m).version for m in METRICS}
    with Store(path) as store:
        store.add_settings(fingerprint, {"synthetic": True})
        store.add_settings("0" * 12, {"synthetic": "other"})
        with store.conn:
            store.conn.executemany("INSERT OR IGNORE INTO architectures VALUES (?, 'nasbench-nlp', '{}')",
                                   ((a,) for a in ids))
            store.conn.executemany(
                "INSERT OR IGNORE INTO scores VALUES (?, ?, ?, ?, ?, 'ok', '', 0.1, 'synthetic', 0)",
                ((a, m, versions[m], fp, float(i)) for i, a in enumerate(ids) for m in METRICS
                 for fp in (fingerprint, "0" * 12)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=10, help="new architectures to score (default 10)")
    parser.add_argument("--store", type=Path, default=None, help="where to build the store (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = ScoreSettings(size="tiny", device="cpu", batch_size=4, seq_len=8)
    space = get_space("nasbench-nlp")
    rng = np.random.default_rng(args.seed)
    distinct: dict[str, object] = {}
    while len(distinct) < args.new:  # distinct architectures, so each is one new key
        arch = space.sample(rng)
        distinct.setdefault(space.arch_id(arch), arch)
    items = [(f"new{i}", arch) for i, arch in enumerate(distinct.values())]
    with tempfile.TemporaryDirectory(prefix="trainfree-scale-") as scratch:
        path = args.store or Path(scratch) / "scale.sqlite"
        start = time.perf_counter()
        build(path, args.rows, settings.fingerprint(), args.seed)
        size = path.stat().st_size / 2**20
        print(f"built {args.rows:,} score rows in {time.perf_counter() - start:.1f} s ({size:.0f} MiB)")

        score_architectures("nasbench-nlp", items, ["params"], settings)  # warm-up: imports, first models
        start = time.perf_counter()
        score_architectures("nasbench-nlp", items, ["params"], settings)
        bare = time.perf_counter() - start
        runs = (("first run (all new)", "changed"), ("second run (all stored)", "changed"),
                ("third run (all stored), integrity check forced", "always"))
        for label, verify in runs:
            store = TimedStore(path, verify)
            start = time.perf_counter()
            run = score_architectures("nasbench-nlp", items, ["params"], settings, store=store)
            total = time.perf_counter() - start
            store_time = sum(store.seconds.values())
            print(f"\n{label}: {len(items)} architectures, computed {run.computed}, reused {run.reused}; "
                  f"store time {store_time:.3f} s (goal < 1 s), runner {total:.3f} s, without a store {bare:.3f} s")
            for name, seconds in store.seconds.items():
                print(f"  {name:32s} {seconds:.4f} s")
            key = ("params", get_metric("params").version, settings.fingerprint())
            whole = time.perf_counter()
            for sql in ("SELECT arch_id FROM scores NOT INDEXED WHERE metric = ? AND metric_version = ? AND "
                        "fingerprint = ? AND status != 'failed'",
                        "SELECT arch_id, value, status, error, seconds FROM scores NOT INDEXED WHERE metric = ? AND "
                        "metric_version = ? AND fingerprint = ?"):
                store.conn.execute(sql, key).fetchall()
            print(f"  (for comparison, the done() and get() queries before: SCAN scores, "
                  f"{time.perf_counter() - whole:.3f} s)")
            store.close()


if __name__ == "__main__":
    main()
