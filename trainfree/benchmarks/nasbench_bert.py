"""NAS-Bench-BERT: 500 ELECTRA-pretrained architectures scored on GLUE (361 shipped), JSON records."""
from __future__ import annotations

from pathlib import Path

from trainfree.benchmarks.base import Benchmark, Record, check_unique, finite_or_none, mapping, quote, read_json
from trainfree.errors import InvalidArchitecture, InvalidBenchmark
from trainfree.spaces.bert.genotype import parse_genotype

TASKS = ("glue", "cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst", "sts")


def load_bert(path: Path, name: str | None = None, target: str = "glue") -> Benchmark:
    """Records ``{id, scores: {glue, cola, ...}, hparams: {model_hparam_overrides: {hidden_size, nas_config}}}``.

    ``target`` is ``glue`` (the mean of the 8 task scores) or one task; higher is better.
    """
    if target not in TASKS:
        raise InvalidBenchmark(f"unknown NAS-Bench-BERT target {target!r}; choose from: {', '.join(TASKS)}")
    data = read_json(path)
    if not isinstance(data, list):
        raise InvalidBenchmark(f"{path}: expected a JSON list of architecture records")
    records, skipped, names = [], 0, []
    for i, rec in enumerate(data):
        where = f"{path} record {i}"
        if not isinstance(rec, dict) or "id" not in rec:
            raise InvalidBenchmark(f"{where}: expected an object with an 'id'")
        if isinstance(rec["id"], bool) or not isinstance(rec["id"], (int, str)):
            raise InvalidBenchmark(f"{where}: field 'id' must be an integer or a string, got {quote(rec['id'])}")
        where = f"{path} record {i} (id {str(rec['id'])[:60]})"
        overrides = mapping(rec.get("hparams"), where, "hparams").get("model_hparam_overrides")
        if not isinstance(overrides, dict):
            raise InvalidBenchmark(f"{where}: missing hparams.model_hparam_overrides")
        try:
            genotype = parse_genotype(overrides, f"{where}: hparams.model_hparam_overrides")
        except InvalidArchitecture as err:
            raise InvalidBenchmark(str(err)) from None
        scores = mapping(rec.get("scores"), where, "scores")
        value = finite_or_none(scores.get(target), where, f"scores.{target}")
        names.append(str(rec["id"]))
        if value is None:
            skipped += 1
            continue
        extra = {"id": rec["id"], "scores": scores, "time_to_train": rec.get("time_to_train")}
        records.append(Record(str(rec["id"]), genotype, value, extra))
    check_unique(names, path)
    if not records:
        raise InvalidBenchmark(f"{path}: no record has a finite {target!r} score")
    return Benchmark(name or path.name, "nasbench-bert", records, target=target, lower_is_better=False,
                     skipped=skipped, source=str(path))
