"""The training-free metric values published with Serianni & Kalita (2023), joined on log name."""
from __future__ import annotations

import math
from pathlib import Path

from trainfree.benchmarks.base import csv_rows, number, read_text
from trainfree.errors import InvalidBenchmark

SHIPPED_RNN = "nasbench_nlp/paper_rnn_metrics.csv.gz"


def load_published(path: str | Path | None = None, key: str = "log name") -> dict[str, dict[str, float]]:
    """``{log name: {column: value}}`` from a published metrics CSV (the shipped RNN one by default)."""
    if path is None:
        path = SHIPPED_RNN
    if not Path(path).exists() and str(path).startswith(("nasbench_nlp/", "nasbench_bert/")):
        from trainfree.data import data_path  # a shipped file, named relative to trainfree/data

        path = Path(str(data_path(*str(path).split("/"))))
    path = Path(path)
    rows = csv_rows(read_text(path), path)
    header = next(rows, (None, None))[1]
    if not header or key not in header:
        raise InvalidBenchmark(f"{path} line 1: missing column {key!r}")
    out = {}
    for line, row in rows:
        if not row:
            continue
        where = f"{path} line {line}"
        if len(row) != len(header):
            raise InvalidBenchmark(f"{where}: expected {len(header)} fields, got {len(row)}")
        values = {}
        for col, text_value in zip(header, row):
            if col == key:
                continue
            values[col] = number(text_value, where, col) if text_value != "" else math.nan
        name = row[header.index(key)]
        if name in out:
            raise InvalidBenchmark(f"{where}: {key} {name[:60]!r} appears twice")
        out[name] = values
    return out
