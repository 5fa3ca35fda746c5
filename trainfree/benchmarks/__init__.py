"""Benchmark loaders. ``load_benchmark`` takes a shipped name or a path to any file in a known format."""
from __future__ import annotations

from pathlib import Path

from trainfree.benchmarks.base import Benchmark, Record
from trainfree.errors import InvalidBenchmark

#: shipped benchmark name -> (file under trainfree/data, format)
SHIPPED = {
    "nasbench-nlp-ptb": ("nasbench_nlp/ptb_results.csv.gz", "nasbench-nlp-csv"),
    "nasbench-nlp-wikitext2": ("nasbench_nlp/wikitext2_logs.zip", "nasbench-nlp-logs"),
}

__all__ = ["Benchmark", "Record", "SHIPPED", "load_benchmark"]


def load_benchmark(source: str | Path) -> Benchmark:
    """Load a shipped benchmark by name, or a file: ``.csv``/``.csv.gz`` results, ``.zip`` or folder of logs."""
    from trainfree.benchmarks import nasbench_nlp

    text = str(source)
    if text in SHIPPED:
        from trainfree.data import data_path

        rel, fmt = SHIPPED[text]
        path = Path(str(data_path(*rel.split("/"))))
        loader = nasbench_nlp.load_csv if fmt == "nasbench-nlp-csv" else nasbench_nlp.load_logs
        return loader(path, name=text)
    path = Path(text)
    if not path.exists():
        raise InvalidBenchmark(f"{path}: no such file or directory (shipped benchmarks: {', '.join(SHIPPED)})")
    if path.is_dir() or path.suffix == ".zip":
        return nasbench_nlp.load_logs(path)
    if path.name.endswith((".csv", ".csv.gz")):
        return nasbench_nlp.load_csv(path)
    raise InvalidBenchmark(f"{path}: unknown benchmark format; expected a .csv/.csv.gz results file, "
                           f"a .zip of logs or a folder of logs")
