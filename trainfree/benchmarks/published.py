"""The training-free metric values published with Serianni & Kalita (2023), joined on log name."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from trainfree.benchmarks.base import read_text
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
    reader = csv.reader(io.StringIO(read_text(path)))
    header = next(reader, None)
    if not header or key not in header:
        raise InvalidBenchmark(f"{path} line 1: missing column {key!r}")
    out = {}
    for row in reader:
        if not row:
            continue
        where = f"{path} line {reader.line_num}"
        if len(row) != len(header):
            raise InvalidBenchmark(f"{where}: expected {len(header)} fields, got {len(row)}")
        values = {}
        for col, text_value in zip(header, row):
            if col == key:
                continue
            try:
                values[col] = float(text_value) if text_value != "" else math.nan
            except ValueError:
                raise InvalidBenchmark(f"{where}: column {col!r}: {text_value!r} is not a number") from None
        out[row[header.index(key)]] = values
    return out
