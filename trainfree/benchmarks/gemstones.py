"""Gemstones (McLeish et al., NeurIPS 2025): 22 decoders of one Gemma-style family, width x depth shapes
from 48M to 2.0B parameters, each trained on the same data to 350B tokens.

The shipped file (``trainfree/data/gemstones/gemstones.json.gz``, made by
``benchmarks/convert_gemstones.py`` from the suite's released tables; see DATA.md) holds per shape its
width, depth, published parameter count, and every checkpoint's training loss, FineWeb-Edu and DCLM
validation losses and downstream accuracies (nine lighteval tasks), by training tokens.

Targets: ``loss`` (the training loss; lower is better), ``fineweb_edu`` and ``dclm`` (validation losses;
lower is better), ``downstream`` (the mean accuracy of the nine tasks; higher is better), each at the final
checkpoint (350B tokens) or at ``@TOKENS`` (``loss@100B``, ``dclm@50B``: the checkpoint nearest that many
tokens, within 5%).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from trainfree.benchmarks.base import Benchmark, BenchmarkFormat, Record, head_text, quote, read_json, register_format
from trainfree.errors import InvalidArchitecture, InvalidBenchmark

FORMAT = "trainfree-gemstones"
#: target -> (the record's table, lower is better)
TARGETS = {"loss": ("train_loss", True), "fineweb_edu": ("fineweb_edu", True), "dclm": ("dclm", True),
           "downstream": ("downstream", False)}
_AT = re.compile(r"^(?P<target>[a-z_]+)(?:@(?P<tokens>[0-9.]+)(?P<unit>[kMBT]?))?$")
_UNITS = {"": 1, "k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def parse_target(target: str) -> tuple[str, float | None]:
    """(target, tokens or None for the final checkpoint) from ``loss``, ``loss@100B``, ``dclm@2e11``..."""
    m = _AT.match(target or "")
    if m is None or m.group("target") not in TARGETS:
        choices = ", ".join(TARGETS)
        raise InvalidBenchmark(f"unknown Gemstones target {quote(target)}; choose from: {choices}, each optionally "
                               f"at a token count (loss@100B)")
    tokens = None
    if m.group("tokens") is not None:
        try:
            tokens = float(m.group("tokens")) * _UNITS[m.group("unit")]
        except ValueError:
            raise InvalidBenchmark(f"Gemstones target {quote(target)}: {quote(m.group('tokens'))} is not a number") from None
    return m.group("target"), tokens


def _value(table: dict, tokens: float | None, where: str, target: str) -> tuple[float, int]:
    """(value, tokens of the checkpoint): the final one, or the one nearest ``tokens`` (within 5%)."""
    if not isinstance(table, dict) or not table:
        raise InvalidBenchmark(f"{where}: no {target} checkpoints")
    points = sorted(int(t) for t in table)
    if tokens is None:
        at = points[-1]
    else:
        at = min(points, key=lambda t: abs(t - tokens))
        if abs(at - tokens) > 0.05 * tokens:
            shown = ", ".join(f"{t / 1e9:.0f}B" for t in points)
            raise InvalidBenchmark(f"{where}: no {target} checkpoint within 5% of {tokens / 1e9:g}B tokens "
                                   f"(checkpoints: {shown})")
    value = table[str(at)]
    if isinstance(value, dict):  # downstream: the mean accuracy of the tasks
        scores = [float(v) for v in value.values()]
        value = sum(scores) / len(scores) if scores else math.nan
    return float(value), at


def load_gemstones(path: Path, name: str | None = None, target: str | None = None) -> Benchmark:
    from trainfree.spaces import get_space

    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidBenchmark(f"{path}: not a Gemstones file (no \"format\": \"{FORMAT}\")")
    target = target or "loss"
    which, tokens = parse_target(target)
    table, lower = TARGETS[which]
    space = get_space("gemstones")
    records, names = [], set()
    for i, rec in enumerate(data.get("records") or []):
        where = f"{path} record {i}"
        if not isinstance(rec, dict) or not isinstance(rec.get("name"), str):
            raise InvalidBenchmark(f"{where}: expected an object with a \"name\"")
        where = f"{path} record {i} ({rec['name'][:60]})"
        try:
            arch = space.from_json({"hidden_size": rec.get("width"), "num_hidden_layers": rec.get("depth")}, where)
        except InvalidArchitecture as err:
            raise InvalidBenchmark(str(err)) from None
        if rec.get("params") != space.params_of(arch.config):
            raise InvalidBenchmark(f"{where}: published parameter count {quote(rec.get('params'))} is not the "
                                   f"{space.params_of(arch.config)} of the Gemstones config")
        if rec["name"] in names:
            raise InvalidBenchmark(f"{where}: name {quote(rec['name'])} is given twice")
        names.add(rec["name"])
        value, at = _value(rec.get(table), tokens, where, which)
        records.append(Record(rec["name"], arch, value, {"width": rec["width"], "depth": rec["depth"],
                                                         "params": rec["params"], "tokens": at}))
    if not records:
        raise InvalidBenchmark(f"{path}: no records")
    return Benchmark(name or path.name, "gemstones", records, target=target, lower_is_better=lower, source=str(path))


def _sniff(path: Path) -> bool:
    return f'"format":"{FORMAT}"' in head_text(path).replace(" ", "")


def _load_format(path: Path, name: str | None = None, target: str | None = None, setting=None) -> Benchmark:
    return load_gemstones(path, name=name, target=target)


register_format(BenchmarkFormat("gemstones", "Gemstones tables (.json.gz, \"format\": \"trainfree-gemstones\")",
                                (".json", ".json.gz"), _sniff, _load_format))
