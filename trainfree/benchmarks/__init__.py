"""Benchmark loaders. ``load_benchmark`` takes a shipped name or a path to any file in a known format."""
from __future__ import annotations

from pathlib import Path

from trainfree.benchmarks.base import Benchmark, Record
from trainfree.errors import InvalidBenchmark

#: shipped benchmark name -> (file under trainfree/data, format)
SHIPPED = {
    "nasbench-nlp-ptb": ("nasbench_nlp/ptb_results.csv.gz", "nasbench-nlp-csv"),
    "nasbench-nlp-wikitext2": ("nasbench_nlp/wikitext2_logs.zip", "nasbench-nlp-logs"),
    "nasbench-bert": ("nasbench_bert/bert_benchmark.json.gz", "nasbench-bert"),
}

LTS_FILE = "lts/lts_decoder_benchmark.json.gz"

__all__ = ["Benchmark", "Record", "SHIPPED", "load_benchmark", "shipped_names"]


def shipped_names() -> list[str]:
    """Every shipped benchmark name, the LTS settings as ``lts:SETTING``."""
    from trainfree.benchmarks.lts import settings_of
    from trainfree.data import data_path

    return list(SHIPPED) + [f"lts:{s}" for s in settings_of(Path(str(data_path(*LTS_FILE.split("/")))))]


def load_benchmark(source: str | Path, target: str | None = None) -> Benchmark:
    """Load a shipped benchmark by name, or a file: NAS-Bench-NLP ``.csv``/``.csv.gz`` results or a
    ``.zip``/folder of training logs; NAS-Bench-BERT ``.json``/``.json.gz`` (``target``: glue or a task);
    LTS settings as ``lts:SETTING`` (shipped) or ``PATH.json#SETTING`` (``target``: valid_ppl, test_ppl,
    latency or memory)."""
    from trainfree.benchmarks import nasbench_bert, nasbench_nlp

    text = str(source)
    name = None
    if text.startswith("lts:") or "#" in text:
        from trainfree.benchmarks.lts import load_lts
        from trainfree.data import data_path

        if text.startswith("lts:"):
            return load_lts(Path(str(data_path(*LTS_FILE.split("/")))), text[4:], name=text, target=target)
        file, setting = text.rsplit("#", 1)
        if not Path(file).exists():
            raise InvalidBenchmark(f"{file}: no such file")
        return load_lts(Path(file), setting, target=target)
    if text in SHIPPED:
        from trainfree.data import data_path

        rel, fmt = SHIPPED[text]
        path, name = Path(str(data_path(*rel.split("/")))), text
    else:
        path = Path(text)
        if not path.exists():
            from trainfree.registry import did_you_mean

            raise InvalidBenchmark(f"{path}: no such file or directory{did_you_mean(text, shipped_names())} "
                                   f"(shipped benchmarks: {', '.join(SHIPPED)}, lts:SETTING)")
        if path.is_dir() or path.suffix == ".zip":
            fmt = "nasbench-nlp-logs"
        elif path.name.endswith((".csv", ".csv.gz")):
            fmt = "nasbench-nlp-csv"
        elif path.name.endswith((".json", ".json.gz")):
            fmt = "nasbench-bert"
        else:
            raise InvalidBenchmark(f"{path}: unknown benchmark format; expected a NAS-Bench-NLP .csv/.csv.gz results "
                                   f"file, a .zip or folder of logs, or a NAS-Bench-BERT .json/.json.gz")
    if fmt == "nasbench-bert":
        return nasbench_bert.load_bert(path, name=name, target=target or "glue")
    if target not in (None, "test_loss"):
        raise InvalidBenchmark(f"{path}: NAS-Bench-NLP benchmarks have one target, test_loss (got {target!r})")
    loader = nasbench_nlp.load_csv if fmt == "nasbench-nlp-csv" else nasbench_nlp.load_logs
    return loader(path, name=name)
