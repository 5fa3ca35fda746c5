"""Decoder-only language models of the LTS benchmark (Javaheripi et al., NeurIPS 2022): GPT-2 and
Transformer-XL configs with per-layer heads and FFN widths, adaptive input embeddings and an adaptive
softmax. Parse, validate, canonical id. No torch here.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from trainfree.errors import InvalidArchitecture, json_object

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


def _int(source: Mapping, key: str, where: str, minimum: int = 1) -> int:
    value = source.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def parse_decoder(source: str | Mapping[str, Any], where: str = "", family: str | None = None) -> DecoderGenotype:
    """From JSON text or a mapping: an LTS job config (``family`` given separately) or trainfree's own
    form (with ``family``). Errors name the field, e.g. ``n_head[3]``."""
    source = json_object(source, where)
    family = source.get("family", family)
    if family not in FAMILIES:
        raise _fail(where, f"family: {family!r} is not one of {list(FAMILIES)}")
    n_layer, d_model, n_token = (_int(source, k, where) for k in ("n_layer", "d_model", "n_token"))
    per_layer = {}
    for key in ("n_head", "d_inner"):
        value = source.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value] * n_layer
        if not isinstance(value, list) or len(value) != n_layer:
            raise _fail(where, f"{key}: expected a list of {n_layer} integers (one per layer), got {value!r}")
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise _fail(where, f"{key}[{i}]: expected a positive integer, got {v!r}")
        per_layer[key] = tuple(value)
    for i, h in enumerate(per_layer["n_head"]):
        if d_model % h:
            raise _fail(where, f"n_head[{i}]: d_model {d_model} is not divisible by {h} heads")
    d_head = source.get("d_head", -1)
    if d_head not in (-1, None):
        raise _fail(where, f"d_head: only -1 (d_model // n_head) is supported, got {d_head!r}")
    d_embed = source.get("d_embed", -1)
    d_embed = d_model if d_embed in (-1, None) else d_embed
    if isinstance(d_embed, bool) or not isinstance(d_embed, int) or d_embed < 1:
        raise _fail(where, f"d_embed: expected a positive integer or -1, got {d_embed!r}")
    div_val = _int(source, "div_val", where) if "div_val" in source else 1
    raw = source.get("cutoffs", [])
    if not isinstance(raw, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in raw):
        raise _fail(where, f"cutoffs: expected a list of integers, got {raw!r}")
    if source.get("adaptive", True) is False:
        raw = []
    cutoffs = tuple(sorted(c for c in set(raw) if 0 < c < n_token)) + (n_token,)
    given = source.get("effective_cutoffs")
    if given is not None and list(given) != list(cutoffs):
        raise _fail(where, f"effective_cutoffs: {given!r} disagrees with cutoffs below n_token: {list(cutoffs)}")
    if d_embed // div_val ** (len(cutoffs) - 1) < 1:
        raise _fail(where, f"div_val: {div_val} leaves the last of {len(cutoffs)} clusters no embedding dimension")
    tie_projs = source.get("tie_projs", [False] * len(cutoffs))
    if not isinstance(tie_projs, list) or not all(t in (0, 1) for t in tie_projs) or len(tie_projs) < len(cutoffs):
        raise _fail(where, f"tie_projs: expected at least {len(cutoffs)} booleans, got {tie_projs!r}")
    tie_weight = source.get("tie_weight", True)
    if tie_weight is not True:
        raise _fail(where, f"tie_weight: only tied input/output embeddings are supported, got {tie_weight!r}")
    if source.get("attn_type", 0) != 0:
        raise _fail(where, f"attn_type: only 0 (relative positions for Transformer-XL) is supported, "
                           f"got {source.get('attn_type')!r}")
    pre_lnorm = source.get("pre_lnorm", False)
    if not isinstance(pre_lnorm, bool):
        raise _fail(where, f"pre_lnorm: expected true or false, got {pre_lnorm!r}")
    tgt_len = _int(source, "tgt_len", where) if "tgt_len" in source else 192
    return DecoderGenotype(family, n_layer, d_model, per_layer["n_head"], per_layer["d_inner"], d_embed, div_val,
                           n_token, cutoffs, tuple(bool(t) for t in tie_projs[: len(cutoffs)]), True, tgt_len, pre_lnorm)
