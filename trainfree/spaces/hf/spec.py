"""Reading and validating a space file: what a user declares, checked before anything is built.

Every mistake is one TrainfreeError that names the file and the field (``FILE: searched.hidden_size:
...``). The config fields are checked against the model class's own config class, so a typo in a
field name is caught here instead of being stored silently by ``transformers``. No torch here.
"""
from __future__ import annotations

import difflib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainfree.errors import TrainfreeError
from trainfree.spaces.hf import transformers
from trainfree.spaces.parsing import quote

TOP_KEYS = ("name", "description", "model", "fixed", "searched", "constraints", "example")
CONSTRAINT_KEYS = ("divisible", "max_params", "min_params")
#: set by trainfree, not by the file
RESERVED: dict[str, str] = {}
#: the model classes a space file may name: language models whose outputs every metric of the space can
#: use (block hidden states, MLP activations, an LM loss), each scored in tests/test_hf_spaces.py
SUPPORTED_MODELS = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                    "GemmaForCausalLM", "Gemma2ForCausalLM", "OlmoForCausalLM", "GPT2LMHeadModel",
                    "GPTNeoXForCausalLM", "BertForMaskedLM", "RobertaForMaskedLM")
#: options one searched field may expand to (a range such as 1..1e9 would hang the sampler)
MAX_OPTIONS = 4096
SCALARS = (bool, int, float, str)
#: a space file is a few hundred bytes; this bounds what is read
MAX_FILE_BYTES = 1 << 20
#: the largest magnitude of a number in a space file (config fields are counts and sizes)
MAX_NUMBER = 2 ** 53


@dataclass(frozen=True)
class SpaceSpec:
    name: str
    model: str  # the transformers model class, e.g. LlamaForCausalLM
    kind: str  # "causal" or "masked": which language-model loss the class has
    fixed: dict[str, Any]
    searched: dict[str, list]  # field -> its choices, in the file's order
    divisible: tuple[tuple[str, str], ...] = ()  # (a, b): a % b == 0
    max_params: int | None = None
    min_params: int | None = None
    description: str = ""
    example: dict | None = None  # the architecture tests and docs use (default: the draw of seed 0)
    where: str = ""  # the file, for messages
    text: str = field(default="", repr=False)  # the file's text, so that workers rebuild the same space
    aliases: dict = field(default_factory=dict, repr=False)  # the config's attribute_map (hidden_size -> n_embd)

    def key(self, name: str) -> str:
        """The searched or fixed key that sets config field ``name`` (through an alias), else ``name``."""
        canon = self.aliases.get(name, name)
        for key in (*self.searched, *self.fixed):
            if self.aliases.get(key, key) == canon:
                return key
        return name

    def value(self, name: str, arch: dict):
        """Field ``name``'s value in ``arch`` (searched values), else fixed, else the config default."""
        key = self.key(name)
        if key in arch:
            return arch[key]
        if key in self.fixed:
            return self.fixed[key]
        return getattr(config_class(self.model)(), name)

    def value_sets(self, name: str) -> list:
        """The values ``name`` can take: its choices, its fixed value, or the config class's default."""
        key = self.key(name)
        return self.searched[key] if key in self.searched else [self.value(name, {})]


def _fail(where: str, at: str, msg: str) -> TrainfreeError:
    return TrainfreeError(f"{where}: {at}: {msg}" if at else f"{where}: {msg}")


def _hint(name: str, choices) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def lm_classes() -> dict[str, str]:
    """Model class name -> "causal" or "masked", for every language-model class transformers has."""
    transformers()  # a missing install names the extra
    from transformers.models.auto import modeling_auto as auto

    kinds = {}
    for mapping, kind in ((auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES, "masked"),
                          (auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, "causal")):
        for names in mapping.values():
            for n in (names if isinstance(names, (list, tuple)) else [names]):
                kinds[n] = kind
    return kinds


def model_class(name: str):
    return getattr(transformers(), name)


def config_class(name: str):
    return model_class(name).config_class


def parse_text(text: str, where: str, fmt: str) -> dict:
    """The decoded file (``fmt``: toml or json); malformed text names the file and the place."""
    try:
        data = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    except RecursionError:
        raise TrainfreeError(f"{where}: not a space file: nested too deeply") from None
    except tomllib.TOMLDecodeError as err:
        raise TrainfreeError(f"{where}: not valid TOML ({err})") from None
    except ValueError as err:
        raise TrainfreeError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise TrainfreeError(f"{where}: expected a table (object) at the top, got {type(data).__name__}")
    return data


def _bounded(where: str, at: str, value) -> None:
    """A number within MAX_NUMBER in magnitude and finite (a 400-digit integer or 1e999 is no config value)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and value != value or abs(value) > MAX_NUMBER:
        raise _fail(where, at, f"{quote(value)} is out of range (numbers up to 2**53 in magnitude)")


def _options(where: str, at: str, value) -> list:
    """A searched field's choices: a non-empty list of scalars, or a {min, max, step} integer range."""
    if isinstance(value, dict):
        unknown = set(value) - {"min", "max", "step"}
        if unknown or not {"min", "max"} <= set(value):
            raise _fail(where, at, f"a range is {{min = ..., max = ..., step = ...}} (integers; step optional), "
                                   f"got {quote(value)}")
        lo, hi, step = value["min"], value["max"], value.get("step", 1)
        for v in (lo, hi, step):
            _bounded(where, at, v)
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (lo, hi, step)) or step < 1 or hi < lo:
            raise _fail(where, at, f"a range needs integers min <= max and step >= 1, got {quote(value)}")
        if (hi - lo) // step + 1 > MAX_OPTIONS:
            raise _fail(where, at, f"the range has more than {MAX_OPTIONS} values; use a larger step")
        return list(range(lo, hi + 1, step))
    if not isinstance(value, list) or not value:
        raise _fail(where, at, f"give a non-empty list of choices or a {{min, max, step}} range, got {quote(value)}")
    if len(value) > MAX_OPTIONS:
        raise _fail(where, at, f"more than {MAX_OPTIONS} choices")
    out = []
    for v in value:
        if not isinstance(v, SCALARS):
            raise _fail(where, at, f"choice {quote(v)} is not a number, boolean or string")
        _bounded(where, at, v)
        if any(type(v) is type(o) and v == o for o in out):
            raise _fail(where, at, f"choice {quote(v)} is listed twice")
        out.append(v)
    return out


def _check_field(where: str, at: str, name, config) -> None:
    if not isinstance(name, str):
        raise _fail(where, at, f"field names are strings, got {quote(name)}")
    if name in RESERVED:
        raise _fail(where, f"{at}.{name}", f"not settable here: {RESERVED[name]}")
    if not hasattr(config, name):
        fields = [k for k in vars(config) if not k.startswith("_")] + list(getattr(config, "attribute_map", {}))
        raise _fail(where, f"{at}.{name}", f"unknown config field of {type(config).__name__}{_hint(name, fields)}")


def _positive_int(where: str, at: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(where, at, f"expected a positive integer, got {quote(value)}")
    return value


def parse_spec(text: str, where: str, fmt: str, default_name: str = "") -> SpaceSpec:
    """Validate a space file's text; see docs/spaces.md for the format."""
    data = parse_text(text, where, fmt)
    for key in data:
        if key not in TOP_KEYS:
            raise _fail(where, str(key), f"unknown key{_hint(key, TOP_KEYS)} (keys: {', '.join(TOP_KEYS)})")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise _fail(where, "name", f"a space name is a word without spaces, got {quote(name)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(where, "description", f"expected a string, got {quote(description)}")
    model = data.get("model")
    if not isinstance(model, str):
        raise _fail(where, "model", f"name the transformers model class, e.g. \"LlamaForCausalLM\" (got {quote(model)})")
    kinds = lm_classes()
    if model not in SUPPORTED_MODELS or model not in kinds or not hasattr(transformers(), model):
        known = "a transformers class trainfree does not support" if model in kinds else "unknown model class"
        raise _fail(where, "model", f"{known} {model[:80]!r}{_hint(model, SUPPORTED_MODELS)}: give one of "
                                    f"{', '.join(SUPPORTED_MODELS)} (language models whose outputs the metrics use)")
    config = config_class(model)()
    fixed, searched = data.get("fixed", {}), data.get("searched")
    for at, table in (("fixed", fixed), ("searched", searched)):
        if not isinstance(table, dict) or (at == "searched" and not table):
            raise _fail(where, at, f"expected a table of config fields{' (at least one)' if at == 'searched' else ''}, "
                                   f"got {quote(table)}")
        for key in table:
            _check_field(where, at, key, config)
    for key, value in fixed.items():
        if key in searched:
            raise _fail(where, f"fixed.{key}", "is also a searched field; give it in one table")
        if not isinstance(value, (*SCALARS, list)):
            raise _fail(where, f"fixed.{key}", f"expected a number, boolean, string or list, got {quote(value)}")
        for v in value if isinstance(value, list) else [value]:
            _bounded(where, f"fixed.{key}", v)
    options = {key: _options(where, f"searched.{key}", value) for key, value in searched.items()}
    for at, values in (("fixed.vocab_size", [fixed["vocab_size"]] if "vocab_size" in fixed else []),
                       ("searched.vocab_size", options.get("vocab_size", []))):
        for v in values:  # the model's vocabulary: what the budget counts, and what token ids must fit in
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise _fail(where, at, f"the vocabulary size is an integer of at least 2, got {quote(v)}")
    constraints = data.get("constraints", {})
    if not isinstance(constraints, dict):
        raise _fail(where, "constraints", f"expected a table, got {quote(constraints)}")
    for key in constraints:
        if key not in CONSTRAINT_KEYS:
            raise _fail(where, f"constraints.{key}", f"unknown constraint{_hint(key, CONSTRAINT_KEYS)} "
                                                    f"(constraints: {', '.join(CONSTRAINT_KEYS)})")
    pairs = constraints.get("divisible", [])
    if not isinstance(pairs, list):
        raise _fail(where, "constraints.divisible", "expected a list of [field, divisor field] pairs")
    divisible = []
    for i, pair in enumerate(pairs):
        at = f"constraints.divisible[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise _fail(where, at, f"expected a [field, divisor field] pair, got {quote(pair)}")
        for name_ in pair:
            _check_field(where, at, name_, config)
        divisible.append((pair[0], pair[1]))
    bounds = {k: _positive_int(where, f"constraints.{k}", constraints[k]) for k in ("max_params", "min_params")
              if k in constraints}
    example = data.get("example")
    if example is not None and not isinstance(example, dict):
        raise _fail(where, "example", f"expected a table of the searched fields, got {quote(example)}")
    spec = SpaceSpec(name, model, kinds[model], dict(fixed), options, tuple(divisible), bounds.get("max_params"),
                     bounds.get("min_params"), description, example, where, text,
                     dict(getattr(config, "attribute_map", {})))
    _check_divisible(spec)
    return spec


def _check_divisible(spec: SpaceSpec) -> None:
    """Every choice can meet every divisibility constraint with some value of the other field; a
    choice that cannot is named (it would break the constraint whatever else is chosen)."""
    for a, b in spec.divisible:
        values = {}
        for name in (a, b):
            values[name] = spec.value_sets(name)
            for v in values[name]:
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    at = _at(spec, name)
                    raise _fail(spec.where, at, f"constraint {a} divisible by {b}: {quote(v)} is not a positive integer")
        for x in values[a]:
            if not any(x % y == 0 for y in values[b]):
                at = _at(spec, a)
                raise _fail(spec.where, at, f"choice {x} breaks the constraint {a} divisible by {b}: no {b} among "
                                            f"{values[b]} divides it")
        for y in values[b]:
            if not any(x % y == 0 for x in values[a]):
                at = _at(spec, b)
                raise _fail(spec.where, at, f"choice {y} breaks the constraint {a} divisible by {b}: it divides no "
                                            f"{a} among {values[a]}")


def _at(spec: SpaceSpec, name: str) -> str:
    key = spec.key(name)
    return f"searched.{key}" if key in spec.searched else f"fixed.{key}" if key in spec.fixed else f"(default) {name}"


def read_spec(path: str | Path) -> SpaceSpec:
    """The space file at ``path`` (.toml or .json); its name defaults to the file's stem."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("toml", "json"):
        raise TrainfreeError(f"{path}: a space file ends in .toml or .json")
    try:
        if not path.is_file():
            raise TrainfreeError(f"space file {path}: " + ("no such file" if not path.exists() else
                                                          "not a regular file (a folder, a device or a pipe)"))
        if path.stat().st_size > MAX_FILE_BYTES:
            raise TrainfreeError(f"space file {path}: larger than {MAX_FILE_BYTES >> 10} KiB")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise TrainfreeError(f"space file {path}: cannot read ({err})") from None
    return parse_spec(text, str(path), fmt, default_name=path.stem.replace("_", "-"))
