"""Sampling and mutating NAS-Bench-BERT genotypes. No torch here.

Sampling makes the benchmark's choices in its order (the benchmark's ``space_maker.ipynb``):
hidden size, number of layers, then per layer operation type, its parameter, heads, FFN dimension
and number of FFN layers, each uniform over ``search_space.json``. A mutation changes one thing:
the hidden size, the depth (dropping trailing layers or sampling new ones), or one field of one layer.
"""
from __future__ import annotations

import numpy as np

from trainfree.spaces.bert.genotype import LAYER_FIELDS, BertGenotype, Layer, search_space
from trainfree.spaces.choices import GeneChooser, RandomChooser

#: decisions one genotype takes at most: hidden, depth, and five per layer
def n_genes() -> int:
    return 2 + 5 * max(search_space()["num_encoder_layers"])


def _layer(chooser) -> Layer:
    allowed = search_space()["encoder_layer"]
    op = chooser.pick(allowed["operation_type"])
    return Layer(op, chooser.pick(allowed[op]), chooser.pick(allowed["num_operation_heads"]),
                 chooser.pick(allowed["feed_forward_dimension"]), chooser.pick(allowed["num_feed_forward"]))


def construct(chooser) -> BertGenotype:
    space = search_space()
    hidden = chooser.pick(space["hidden_size"])
    depth = chooser.pick(space["num_encoder_layers"])
    return BertGenotype(hidden, tuple(_layer(chooser) for _ in range(depth)))


def decode(genes) -> BertGenotype:
    """The genotype a gene vector encodes (one gene per decision, in sampling order)."""
    return construct(GeneChooser(genes))


def sample(rng: np.random.Generator) -> BertGenotype:
    return construct(RandomChooser(rng))


def mutate(genotype: BertGenotype, rng: np.random.Generator) -> BertGenotype:
    """One change, always to a different value, so the child always differs from its parent."""
    space, chooser = search_space(), RandomChooser(rng)
    where = chooser.index(2 + len(genotype.layers))
    if where == 0:
        return BertGenotype(chooser.pick([h for h in space["hidden_size"] if h != genotype.hidden_size]),
                            genotype.layers)
    if where == 1:
        depth = chooser.pick([d for d in space["num_encoder_layers"] if d != len(genotype.layers)])
        layers = genotype.layers[:depth] + tuple(_layer(chooser) for _ in range(depth - len(genotype.layers)))
        return BertGenotype(genotype.hidden_size, layers)
    i = where - 2
    layer, allowed = genotype.layers[i], space["encoder_layer"]
    fields = [f for f in LAYER_FIELDS if f != "operation_parameter" or len(allowed[layer.operation_type]) > 1]
    field = chooser.pick(fields)
    values = dict(zip(LAYER_FIELDS, (getattr(layer, f) for f in LAYER_FIELDS)))
    if field == "operation_type":
        values["operation_type"] = chooser.pick([o for o in allowed["operation_type"] if o != layer.operation_type])
        values["operation_parameter"] = chooser.pick(allowed[values["operation_type"]])
    else:
        options = allowed[layer.operation_type] if field == "operation_parameter" else allowed[field]
        values[field] = chooser.pick([v for v in options if v != values[field]])
    layers = list(genotype.layers)
    layers[i] = Layer(**values)
    return BertGenotype(genotype.hidden_size, tuple(layers))


def features(genotype: BertGenotype) -> frozenset:
    """Positional genes, for the distance between genotypes (how many differ)."""
    out = {("hidden", genotype.hidden_size), ("depth", len(genotype.layers))}
    for i, layer in enumerate(genotype.layers):
        out |= {(i, f, getattr(layer, f)) for f in LAYER_FIELDS}
    return frozenset(out)
