"""Decoder-only language models of the LTS benchmark (Javaheripi et al., NeurIPS 2022): GPT-2 and
Transformer-XL configs with per-layer heads and FFN widths, adaptive input embeddings and an adaptive
softmax. Parse, validate, canonical id. No torch here.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from trainfree.errors import InvalidArchitecture
from trainfree.spaces.parsing import exact_choice, integer, load_object, quote, reject_unknown

FAMILIES = ("GPT2", "TransXL")


@dataclass(frozen=True)
class DecoderGenotype:
    family: str
    n_layer: int
    d_model: int
    n_head: tuple[int, ...]
    d_inner: tuple[int, ...]
    d_embed: int  # the first cluster's embedding width (-1 in configs: d_model)
    div_val: int  # cluster i embeds in d_embed // div_val**i dimensions
    n_token: int
    cutoffs: tuple[int, ...]  # effective cluster ends, the last one n_token
    tie_projs: tuple[bool, ...]
    tie_weight: bool = True
    tgt_len: int = 192
    pre_lnorm: bool = False  # Transformer-XL only; GPT-2 is always pre-LN

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def arch_id(self) -> str:
        return hashlib.sha1(self.canonical_json().encode()).hexdigest()[:16]

    @property
    def n_clusters(self) -> int:
        return len(self.cutoffs) - 1


def _fail(where: str, msg: str) -> InvalidArchitecture:
    return InvalidArchitecture(f"{where}: {msg}" if where else msg)


#: every field parse_decoder reads: an LTS job config's and trainfree's own form's (mem_len is checked, not used)
FIELDS = ("family", "n_layer", "d_model", "n_head", "d_inner", "d_embed", "d_head", "div_val", "n_token", "cutoffs",
          "tie_projs", "tie_weight", "adaptive", "tgt_len", "mem_len", "attn_type", "pre_lnorm", "effective_cutoffs")

#: limits (docs/spaces.md, "Input limits"), checked before anything is built; the shipped LTS configs
#: reach 16 layers, d_model 960, d_inner 4032, 793,470 tokens, 8.2e7 weights in one matrix, 1.7e8 in all
MAX_LAYERS = 128
MAX_WIDTH = 16384  # d_model, d_embed
MAX_INNER = 65536  # d_inner
MAX_TOKENS = 1 << 21
MAX_CONTEXT = 16384  # tgt_len, mem_len
MAX_DIV_VAL = 64
MAX_CUTOFFS = 16  # entries of cutoffs (and of tie_projs, one more)
MAX_MATRIX = 1 << 28  # weights in one matrix: 1 GiB in float32
MAX_PARAMS = 1 << 31  # weights in the whole model (an estimate from its matrices): 8 GiB in float32


def _int(source: Mapping, key: str, where: str, minimum: int = 1, maximum: int = MAX_WIDTH) -> int:
    return integer(source.get(key), where, key, minimum, maximum)


def _ints(value: Any, where: str, key: str, lo: int, hi: int, count: int | None = None) -> list[int]:
    if not isinstance(value, list):
        want = f"a list of {count} integers (one per layer)" if count is not None else "a list of integers"
        raise _fail(where, f"{key}: expected {want}, got {type(value).__name__} {quote(value)}")
    if count is not None and len(value) != count:
        raise _fail(where, f"{key}: expected a list of {count} integers (one per layer), got {len(value)}: {quote(value)}")
    return [integer(v, where, f"{key}[{i}]", lo, hi) for i, v in enumerate(value)]


def _check_sizes(g: DecoderGenotype, where: str) -> None:
    """Every weight matrix and the whole model within MAX_MATRIX / MAX_PARAMS, from the config alone."""
    bounds = (0,) + g.cutoffs
    matrices = {"the position table": g.tgt_len * g.d_model if g.family == "GPT2" else 0}
    for i in range(g.n_clusters + 1):
        dim = g.d_embed // g.div_val ** i
        matrices[f"embedding cluster {i}"] = (bounds[i + 1] - bounds[i]) * dim
        matrices[f"projection {i}"] = dim * g.d_model
    for i, inner in enumerate(g.d_inner):
        matrices[f"layer {i} attention"] = 3 * g.d_model * g.d_model
        matrices[f"layer {i} FFN"] = g.d_model * inner
    name, largest = max(matrices.items(), key=lambda kv: kv[1])
    if largest > MAX_MATRIX:
        raise _fail(where, f"{name} would hold {largest:,} weights, above the limit of {MAX_MATRIX:,} per matrix")
    total = sum(v for k, v in matrices.items() if "attention" not in k) + 4 * g.d_model ** 2 * g.n_layer
    if total > MAX_PARAMS:
        raise _fail(where, f"the model would hold about {total:,} weights, above the limit of {MAX_PARAMS:,}")


def parse_decoder(source: str | Mapping[str, Any], where: str = "", family: str | None = None) -> DecoderGenotype:
    """From JSON text or a mapping: an LTS job config (``family`` given separately) or trainfree's own
    form (with ``family``). Errors name the field, e.g. ``n_head[3]``; unknown fields name the closest
    valid one; sizes beyond the limits above are refused before anything is built."""
    source = load_object(source, where)
    reject_unknown(source, FIELDS, where)
    family = source.get("family", family)
    if not exact_choice(family, FAMILIES):
        raise _fail(where, f"family: {quote(family)} is not one of {list(FAMILIES)}")
    n_layer = _int(source, "n_layer", where, maximum=MAX_LAYERS)
    d_model = _int(source, "d_model", where)
    n_token = _int(source, "n_token", where, maximum=MAX_TOKENS)
    per_layer = {}
    for key, hi in (("n_head", d_model), ("d_inner", MAX_INNER)):
        value = source.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value] * n_layer  # n_layer is bounded above
        per_layer[key] = tuple(_ints(value, where, key, 1, hi, n_layer))
    for i, h in enumerate(per_layer["n_head"]):
        if d_model % h:
            raise _fail(where, f"n_head[{i}]: d_model {d_model} is not divisible by {h} heads")
    d_head = source.get("d_head", -1)
    if not (d_head is None or exact_choice(d_head, (-1,))):
        raise _fail(where, f"d_head: only -1 (d_model // n_head) is supported, got {quote(d_head)}")
    d_embed = source.get("d_embed", -1)
    if d_embed is None or exact_choice(d_embed, (-1,)):
        d_embed = d_model
    d_embed = integer(d_embed, where, "d_embed", 1, MAX_WIDTH)
    div_val = _int(source, "div_val", where, maximum=MAX_DIV_VAL) if "div_val" in source else 1
    raw = source.get("cutoffs", [])
    if not isinstance(raw, list) or len(raw) > MAX_CUTOFFS:
        raise _fail(where, f"cutoffs: expected a list of at most {MAX_CUTOFFS} integers, got {quote(raw)}")
    raw = _ints(raw, where, "cutoffs", 0, 1 << 62)
    adaptive = source.get("adaptive", True)
    if not isinstance(adaptive, bool):
        raise _fail(where, f"adaptive: expected true or false, got {quote(adaptive)}")
    if not adaptive:
        raw = []
    cutoffs = tuple(sorted(c for c in set(raw) if 0 < c < n_token)) + (n_token,)
    given = source.get("effective_cutoffs")
    if given is not None:
        if not isinstance(given, list) or given != list(cutoffs) or not all(type(c) is int for c in given):
            raise _fail(where, f"effective_cutoffs: {quote(given)} disagrees with cutoffs below n_token: {list(cutoffs)}")
    if d_embed // div_val ** (len(cutoffs) - 1) < 1:
        raise _fail(where, f"div_val: {div_val} leaves the last of {len(cutoffs)} clusters no embedding dimension")
    tie_projs = source.get("tie_projs", [False] * len(cutoffs))
    if (not isinstance(tie_projs, list) or not all(exact_choice(t, (0, 1, False, True)) for t in tie_projs)
            or not len(cutoffs) <= len(tie_projs) <= MAX_CUTOFFS + 1):
        raise _fail(where, f"tie_projs: expected {len(cutoffs)} to {MAX_CUTOFFS + 1} booleans, got {quote(tie_projs)}")
    tie_weight = source.get("tie_weight", True)
    if tie_weight is not True:
        raise _fail(where, f"tie_weight: only tied input/output embeddings are supported, got {quote(tie_weight)}")
    if not exact_choice(source.get("attn_type", 0), (0,)):
        raise _fail(where, f"attn_type: only 0 (relative positions for Transformer-XL) is supported, "
                           f"got {quote(source.get('attn_type'))}")
    pre_lnorm = source.get("pre_lnorm", False)
    if not isinstance(pre_lnorm, bool):
        raise _fail(where, f"pre_lnorm: expected true or false, got {quote(pre_lnorm)}")
    tgt_len = _int(source, "tgt_len", where, maximum=MAX_CONTEXT) if "tgt_len" in source else 192
    if "mem_len" in source:
        _int(source, "mem_len", where, minimum=0, maximum=MAX_CONTEXT)
    genotype = DecoderGenotype(family, n_layer, d_model, per_layer["n_head"], per_layer["d_inner"], d_embed, div_val,
                               n_token, cutoffs, tuple(bool(t) for t in tie_projs[: len(cutoffs)]), True, tgt_len,
                               pre_lnorm)
    _check_sizes(genotype, where)
    return genotype
