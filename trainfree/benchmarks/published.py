"""The training-free metric values published with Serianni & Kalita (2023), joined on log name."""
from __future__ import annotations

import math
from pathlib import Path

from trainfree.benchmarks.base import csv_table, number, read_text
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
    col, rows = csv_table(read_text(path), path, (key,), (key, "metric columns..."))
    header = list(col)
    out = {}
    for _, where, row in rows:
        values = {}
        for column, text_value in zip(header, row):
            if column == key:
                continue
            values[column] = number(text_value, where, column) if text_value != "" else math.nan
        name = row[col[key]]
        if name in out:
            raise InvalidBenchmark(f"{where}: {key} {name[:60]!r} appears twice")
        out[name] = values
    return out
