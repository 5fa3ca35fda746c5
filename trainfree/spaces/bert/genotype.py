"""NAS-Bench-BERT genotypes (Serianni & Kalita 2023, a FlexiBERT-like space): parse, validate, canonical id.

A genotype is a hidden size and a list of encoder layers, each with an operation type (SA, LT or
DSC), its parameter (SA: SDP / WMA; LT: DFT / DCT; DSC: kernel 5 / 9), a number of heads, an FFN
dimension and a number of FFN layers. No torch here.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from trainfree.errors import InvalidArchitecture
from trainfree.spaces.parsing import exact_choice, load_object, quote, reject_unknown

LAYER_FIELDS = ("operation_type", "operation_parameter", "num_operation_heads", "feed_forward_dimension",
                "num_feed_forward")


@dataclass(frozen=True)
class Layer:
    operation_type: str
    operation_parameter: str | int
    num_operation_heads: int
    feed_forward_dimension: int
    num_feed_forward: int


@dataclass(frozen=True)
class BertGenotype:
    hidden_size: int
    layers: tuple[Layer, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size,
                "encoder_layers": [{f: getattr(layer, f) for f in LAYER_FIELDS} for layer in self.layers]}

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def arch_id(self) -> str:
        return hashlib.sha1(self.canonical_json().encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def search_space() -> dict:
    """The shipped ``search_space.json``: allowed values of every field."""
    from trainfree.data import data_path

    return json.loads(data_path("nasbench_bert", "search_space.json").read_text())


def _fail(where: str, msg: str) -> InvalidArchitecture:
    return InvalidArchitecture(f"{where}: {msg}" if where else msg)


def parse_genotype(source: str | Mapping[str, Any], where: str = "") -> BertGenotype:
    """From JSON text or a mapping with ``hidden_size`` and ``encoder_layers`` (or ``nas_config.encoder_layers``).

    Every value must be one the search space allows, with its type (256, not 256.0); errors name the
    field, e.g. ``encoder_layers[2].operation_parameter``, and unknown fields the closest valid one.
    """
    source = load_object(source, where)
    space = search_space()
    reject_unknown(source, ("hidden_size", "encoder_layers", "nas_config"), where)
    if "hidden_size" not in source:
        raise _fail(where, "missing field 'hidden_size'")
    hidden = source["hidden_size"]
    if not exact_choice(hidden, space["hidden_size"]):
        raise _fail(where, f"hidden_size: {quote(hidden)} is not one of {space['hidden_size']}")
    nas_config = source.get("nas_config")
    if "nas_config" in source:
        if not isinstance(nas_config, Mapping):
            raise _fail(where, f"nas_config: expected an object, got {type(nas_config).__name__}")
        reject_unknown(nas_config, ("encoder_layers",), where, "nas_config: ")
        if "encoder_layers" in source and "encoder_layers" in nas_config:
            raise _fail(where, "encoder_layers given twice, at the top and in nas_config; give one")
    layers = source.get("encoder_layers")
    if layers is None and isinstance(nas_config, Mapping):
        layers = nas_config.get("encoder_layers")
    if not isinstance(layers, list):
        raise _fail(where, "missing list field 'encoder_layers'" if layers is None else
                    f"encoder_layers: expected a list, got {type(layers).__name__}")
    if len(layers) not in space["num_encoder_layers"]:
        raise _fail(where, f"encoder_layers: {len(layers)} layers, expected one of {space['num_encoder_layers']}")
    allowed = space["encoder_layer"]
    parsed = []
    for i, layer in enumerate(layers):
        at = f"encoder_layers[{i}]"
        if not isinstance(layer, Mapping):
            raise _fail(where, f"{at}: expected an object, got {type(layer).__name__}")
        reject_unknown(layer, LAYER_FIELDS, where, f"{at}: ")
        missing = [f for f in LAYER_FIELDS if f not in layer]
        if missing:
            raise _fail(where, f"{at}: missing field(s) {missing}")
        op = layer["operation_type"]
        if not exact_choice(op, allowed["operation_type"]):
            raise _fail(where, f"{at}.operation_type: {quote(op)} is not one of {allowed['operation_type']}")
        if not exact_choice(layer["operation_parameter"], allowed[op]):
            raise _fail(where, f"{at}.operation_parameter: {quote(layer['operation_parameter'])} is not valid for "
                               f"{op}; choose from {allowed[op]}")
        for f in ("num_operation_heads", "feed_forward_dimension", "num_feed_forward"):
            if not exact_choice(layer[f], allowed[f]):
                raise _fail(where, f"{at}.{f}: {quote(layer[f])} is not one of {allowed[f]}")
        parsed.append(Layer(op, layer["operation_parameter"], layer["num_operation_heads"],
                            layer["feed_forward_dimension"], layer["num_feed_forward"]))
    return BertGenotype(hidden, tuple(parsed))
