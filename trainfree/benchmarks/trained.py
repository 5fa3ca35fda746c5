"""Benchmarks trainfree made itself (``trainfree make-benchmark``): sampled architectures of any space,
each short-trained under a recorded protocol.

The file is JSON (``.json`` or ``.json.gz``)::

    {"format": "trainfree-benchmark", "format_version": 1,
     "name": ..., "space": ..., "corpus": ..., "target": "val_loss", "lower_is_better": true,
     "protocol": {...every protocol field...}, "protocol_fingerprint": ..., "protocol_source": ...,
     "budget": {"unit": "steps", "points": [..]}, "train_seed": 0, "sample_seed": 0,
     "versions": {"trainfree": ..., "torch": ..., "python": ...}, "command": ...,
     "records": [{"name": ..., "arch_id": ..., "arch": {...the space's JSON...}, "status": "ok",
                  "val_loss": ..., "fidelities": {"<point>": val_loss, ...}, "tokens": ..., "steps": ...,
                  "cpu_seconds": ..., "eval_cpu_seconds": ...}]}

The target is the validation loss at the last budget point (``val_loss``), or at another recorded
point (``val_loss@POINT``). Records with a non-finite loss (diverged or failed runs) are skipped
and counted, as in the other formats.
"""
from __future__ import annotations

from pathlib import Path

from trainfree.benchmarks.base import (Benchmark, BenchmarkFormat, Record, check_unique, finite_or_none, head_text,
                                       mapping, quote, read_json, register_format)
from trainfree.errors import InvalidArchitecture, InvalidBenchmark, TrainfreeError

FORMAT = "trainfree-benchmark"
FORMAT_VERSION = 1


def _sniff(path: Path) -> bool:
    head = head_text(path, 4096)
    return f'"format": "{FORMAT}"' in head or f'"format":"{FORMAT}"' in head


def load(path: Path, name: str | None = None, target: str | None = None, setting=None) -> Benchmark:
    from trainfree.spaces import get_space

    data = mapping(read_json(path), str(path), "(top level)", optional=False)
    if data.get("format") != FORMAT:
        raise InvalidBenchmark(f"{path}: not a {FORMAT} file (its 'format' is {quote(data.get('format'))})")
    if data.get("format_version") != FORMAT_VERSION:
        raise InvalidBenchmark(f"{path}: format_version {quote(data.get('format_version'))}; this trainfree reads "
                               f"version {FORMAT_VERSION}")
    try:
        space = get_space(str(data.get("space")))
    except TrainfreeError as err:
        raise InvalidBenchmark(f"{path}: {err}") from None
    points = [float(p) for p in mapping(data.get("budget"), str(path), "budget").get("points", [])]
    target = target or "val_loss"
    point = None
    if target != "val_loss":
        if not target.startswith("val_loss@"):
            raise InvalidBenchmark(f"{path}: unknown target {target!r}; choose val_loss or val_loss@POINT "
                                   f"(points: {', '.join(f'{p:g}' for p in points)})")
        try:
            point = float(target.split("@", 1)[1])
        except ValueError:
            raise InvalidBenchmark(f"{path}: target {target!r}: the point is not a number") from None
        if point not in points:
            raise InvalidBenchmark(f"{path}: no budget point {point:g} recorded (points: "
                                   f"{', '.join(f'{p:g}' for p in points)})")
    records, skipped = [], 0
    raw = data.get("records")
    if not isinstance(raw, list):
        raise InvalidBenchmark(f"{path}: field 'records' must be a list")
    for i, rec in enumerate(raw):
        where = f"{path} record {i}"
        rec = mapping(rec, where, "record", optional=False)
        try:
            arch = space.from_json(rec.get("arch"), where)
        except InvalidArchitecture as err:
            raise InvalidBenchmark(str(err)) from None
        if point is None:
            value = finite_or_none(rec.get("val_loss"), where, "val_loss")
        else:
            fid = mapping(rec.get("fidelities"), where, "fidelities")
            value = finite_or_none(fid.get(f"{point:g}"), where, f"fidelities.{point:g}")
        if value is None:
            skipped += 1
            continue
        extra = {k: rec[k] for k in ("tokens", "steps", "cpu_seconds", "eval_cpu_seconds") if k in rec}
        records.append(Record(str(rec.get("name", space.arch_id(arch))), arch, value, extra))
    if not records:
        raise InvalidBenchmark(f"{path}: no record has a finite {target}")
    check_unique([r.name for r in records], path)
    return Benchmark(name or data.get("name") or path.name, space.name, records, target=target, lower_is_better=True,
                     skipped=skipped, source=str(path), corpus=mapping(data.get("protocol"), str(path),
                                                                          "protocol").get("corpus"))


register_format(BenchmarkFormat(
    FORMAT, "a trainfree make-benchmark .json/.json.gz (any space, short-trained)", (".json", ".json.gz"), _sniff,
    load))
