"""LTS (Javaheripi et al., NeurIPS 2022): trained GPT-2 and Transformer-XL decoders, one benchmark per
setting of ``lts_decoder_benchmark.json`` (``random_GPT2_wt103``, ..., ``pareto_*_lm1b_<device>``)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from trainfree.benchmarks.base import Benchmark, Record, check_unique, finite_or_none, mapping, quote, read_json
from trainfree.errors import InvalidArchitecture, InvalidBenchmark
from trainfree.spaces.decoder.genotype import parse_decoder

#: target -> where it is in a record; perplexities are lower-is-better, as are latency and memory
TARGETS = {"valid_ppl": ("ppl", "valid_ppl"), "test_ppl": ("ppl", "test_ppl"), "latency": ("latency",),
           "memory": ("memory",)}


@lru_cache(maxsize=4)
def _read(path: str) -> dict:
    data = read_json(Path(path))
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise InvalidBenchmark(f"{path}: expected an object of settings, each a list of records")
    return data


def settings_of(path: Path) -> list[str]:
    return sorted(_read(str(path)))


def _raw(rec: dict, target: str, where: str):
    """(the record's ``target`` as stored, the field it came from)."""
    path = TARGETS[target]
    if len(path) == 1:
        return rec.get(path[0]), path[0]
    ppl = mapping(rec.get(path[0]), where, path[0])
    value, field = ppl.get(path[1]), f"{path[0]}.{path[1]}"
    if value is None and target == "valid_ppl":  # the Pareto sets report one perplexity
        value, field = ppl.get("valid_ppl_or_reported_ppl"), f"{path[0]}.valid_ppl_or_reported_ppl"
    return value, field


def _value(rec: dict, target: str, where: str) -> float | None:
    """The record's ``target`` as a finite float, None when missing or not finite."""
    value, field = _raw(rec, target, where)
    return finite_or_none(value, where, field)


def load_lts(path: Path, setting: str, name: str | None = None, target: str | None = None) -> Benchmark:
    """One setting's records: the job's model config, its ``valid_ppl`` (or ``test_ppl``, ``latency``,
    ``memory``: all lower-is-better) and the recomputed parameter counts in ``extra``."""
    target = target or "valid_ppl"
    if target not in TARGETS:
        raise InvalidBenchmark(f"unknown LTS target {target!r}; choose from: {', '.join(TARGETS)}")
    data = _read(str(path))
    if setting not in data:
        from trainfree.registry import did_you_mean

        raise InvalidBenchmark(f"{path}: no setting {setting!r}{did_you_mean(setting, data)}; choose from: "
                               f"{', '.join(sorted(data))}")
    records, skipped, names = [], 0, []
    for i, rec in enumerate(data[setting]):
        where = f"{path} {setting} record {i}"
        if not isinstance(rec, dict) or not isinstance(rec.get("arch"), dict):
            raise InvalidBenchmark(f"{where}: expected an object with an 'arch' config")
        job = rec.get("job", i)
        if isinstance(job, bool) or not isinstance(job, (int, str)):
            raise InvalidBenchmark(f"{where}: field 'job' must be a string or an integer, got {quote(job)}")
        where += f" (job {str(job)[:60]})"
        try:
            genotype = parse_decoder(rec["arch"], f"{where}: arch", family=rec.get("family"))
        except InvalidArchitecture as err:
            raise InvalidBenchmark(str(err)) from None
        value = _value(rec, target, where)
        names.append(f"{setting}/{job}")
        if value is None:
            skipped += 1
            continue
        counts = (mapping(rec.get("params_recomputed_gpt2_formula"), where, "params_recomputed_gpt2_formula")
                  or mapping(rec.get("params_recomputed_transxl_formula"), where, "params_recomputed_transxl_formula"))
        extra = {"job": rec.get("job"), "family": rec.get("family"), "params": counts,
                 **{t: _raw(rec, t, where)[0] for t in TARGETS if t != target}}
        records.append(Record(f"{setting}/{job}", genotype, value, extra))
    check_unique(names, f"{path} {setting}")
    if not records:
        raise InvalidBenchmark(f"{path} {setting}: no record has a finite {target!r}")
    return Benchmark(name or f"lts:{setting}", "decoder", records, target=target, lower_is_better=True,
                     skipped=skipped, source=f"{path}#{setting}", corpus=None)
