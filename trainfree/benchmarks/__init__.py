"""Benchmark loaders. ``load_benchmark`` takes a shipped name or a path to any file in a known format."""
from __future__ import annotations

from pathlib import Path

from trainfree.benchmarks.base import FORMATS, Benchmark, BenchmarkFormat, Record, detect_format, register_format
from trainfree.errors import InvalidBenchmark

#: shipped benchmark name -> (file under trainfree/data, format)
SHIPPED = {
    "nasbench-nlp-ptb": ("nasbench_nlp/ptb_results.csv.gz", "nasbench-nlp-csv"),
    "nasbench-nlp-wikitext2": ("nasbench_nlp/wikitext2_logs.zip", "nasbench-nlp-logs"),
    "nasbench-bert": ("nasbench_bert/bert_benchmark.json.gz", "nasbench-bert"),
    "gemstones": ("gemstones/gemstones.json.gz", "gemstones"),
}

LTS_FILE = "lts/lts_decoder_benchmark.json.gz"

__all__ = ["Benchmark", "BenchmarkFormat", "Record", "SHIPPED", "formats", "load_benchmark", "register_format",
           "shipped_names"]


def shipped_names() -> list[str]:
    """Every shipped benchmark name, the LTS settings as ``lts:SETTING``."""
    from trainfree.benchmarks.lts import settings_of
    from trainfree.data import data_path

    return list(SHIPPED) + [f"lts:{s}" for s in settings_of(Path(str(data_path(*LTS_FILE.split("/")))))]


def formats() -> dict:
    """Every registered benchmark format by name (importing the loaders registers theirs)."""
    # importing a loader registers its formats; this order is the order formats are listed in
    from trainfree.benchmarks import nasbench_nlp  # noqa: F401
    from trainfree.benchmarks import nasbench_bert  # noqa: F401
    from trainfree.benchmarks import lts  # noqa: F401
    from trainfree.benchmarks import trained  # noqa: F401
    from trainfree.benchmarks import gemstones  # noqa: F401

    return FORMATS


def load_benchmark(source: str | Path, target: str | None = None) -> Benchmark:
    """Load a shipped benchmark by name, or a file in a registered format (see :func:`formats`):
    NAS-Bench-NLP ``.csv``/``.csv.gz`` results or a ``.zip``/folder of training logs; NAS-Bench-BERT
    ``.json``/``.json.gz`` (``target``: glue or a task); LTS settings as ``lts:SETTING`` (shipped) or
    ``PATH.json#SETTING`` (``target``: valid_ppl, test_ppl, latency or memory). The format is told by the
    extension and a look at the content; ``#`` names a setting only when the part before it is a file."""
    from trainfree.data import data_path

    registry = formats()
    text = str(source)
    if text.startswith("lts:"):
        return registry["lts"].load(Path(str(data_path(*LTS_FILE.split("/")))), name=text, target=target,
                                    setting=text[4:])
    if text in SHIPPED:
        rel, fmt = SHIPPED[text]
        return registry[fmt].load(Path(str(data_path(*rel.split("/")))), name=text, target=target)
    path, setting = Path(text), None
    if not path.exists() and "#" in text and Path(text.rsplit("#", 1)[0]).is_file():
        file, setting = text.rsplit("#", 1)
        path = Path(file)
    if not path.exists():
        from trainfree.registry import did_you_mean

        raise InvalidBenchmark(f"{path}: no such file or directory{did_you_mean(text, shipped_names())} "
                               f"(shipped benchmarks: {', '.join(SHIPPED)}, lts:SETTING)")
    if setting is not None and not any(f.settings and f.claims(path) for f in registry.values()):
        fmt = detect_format(path)
        raise InvalidBenchmark(f"{text}: {path} is a {fmt.name} file, which holds one benchmark; '#SETTING' names "
                               f"a setting of an LTS file")
    return detect_format(path, setting=setting is not None).load(path, target=target, setting=setting)
