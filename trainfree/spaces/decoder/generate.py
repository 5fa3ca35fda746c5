"""Sampling and mutating decoders within the ranges LTS's own random WikiText-103 settings cover
(``random_GPT2_wt103``, ``random_TransXL_wt103``): layer count, model width, per-layer heads and FFN
width, embedding width and adaptive-embedding divisor as observed there; vocabulary, cutoffs,
projection tying and context length fixed to that setting's. No torch here.
"""
from __future__ import annotations

import numpy as np

from trainfree.spaces.choices import GeneChooser, RandomChooser
from trainfree.spaces.decoder.genotype import FAMILIES, DecoderGenotype, parse_decoder

#: the LTS setting each family's ranges come from
TEMPLATES = {"GPT2": "random_GPT2_wt103", "TransXL": "random_TransXL_wt103"}

#: choices per field, as observed in the shipped benchmark's setting for each family (TEMPLATES): data of
#: the space, checked against the benchmark by tests/test_generate.py
RANGES = {
    "GPT2": {"n_layer": list(range(2, 17)), "d_model": [64, 128, 256, 512], "n_head": [2, 4, 8],
             "d_inner": (512, 2048), "d_embed": [128, 256, 512], "div_val": [1, 2, 4],
             "fixed": {"n_token": 50264, "cutoffs": (19997, 39997, 50264), "tie_projs": (False, True, True),
                       "tgt_len": 192}},
    "TransXL": {"n_layer": [5, 6, 7, 8], "d_model": [64, 128, 256, 512], "n_head": [2, 4, 8],
                "d_inner": (514, 2046), "d_embed": [128, 256, 512], "div_val": [1, 2, 4],
                "fixed": {"n_token": 267736, "cutoffs": (19997, 39997, 199997, 267736),
                          "tie_projs": (False, True, True, True), "tgt_len": 192}},
}


def ranges(family: str) -> dict:
    """Choices per field of the family (RANGES)."""
    return RANGES[family]


def n_genes() -> int:
    return 5 + 2 * max(max(ranges(f)["n_layer"]) for f in FAMILIES)


def _make(family, n_layer, d_model, heads, inners, d_embed, div_val) -> DecoderGenotype:
    fixed = ranges(family)["fixed"]
    return parse_decoder({"n_layer": n_layer, "d_model": d_model, "n_head": list(heads), "d_inner": list(inners),
                          "d_embed": d_embed, "div_val": div_val, "n_token": fixed["n_token"],
                          "cutoffs": list(fixed["cutoffs"]), "tie_projs": list(fixed["tie_projs"]),
                          "tgt_len": fixed["tgt_len"]}, family=family)


def construct(chooser) -> DecoderGenotype:
    family = chooser.pick(FAMILIES)
    r = ranges(family)
    n_layer, d_model = chooser.pick(r["n_layer"]), chooser.pick(r["d_model"])
    lo, hi = r["d_inner"]
    heads = [chooser.pick(r["n_head"]) for _ in range(n_layer)]
    inners = [lo + chooser.index(hi - lo + 1) for _ in range(n_layer)]
    return _make(family, n_layer, d_model, heads, inners, chooser.pick(r["d_embed"]), chooser.pick(r["div_val"]))


def sample(rng: np.random.Generator) -> DecoderGenotype:
    return construct(RandomChooser(rng))


def decode(genes) -> DecoderGenotype:
    return construct(GeneChooser(genes))


def mutate(g: DecoderGenotype, rng: np.random.Generator) -> DecoderGenotype:
    """One change: depth (a layer added as a copy of a random one, or the last removed), width, one layer's
    heads or FFN width, the embedding width or the divisor; always to a different value."""
    r, c = ranges(g.family), RandomChooser(rng)
    n_layer, d_model, heads, inners = g.n_layer, g.d_model, list(g.n_head), list(g.d_inner)
    d_embed, div_val = g.d_embed, g.div_val
    kinds = ["depth", "width", "heads", "inner"] + ["embed"] * (len(r["d_embed"]) > 1) + ["div"] * (len(r["div_val"]) > 1)
    kind = c.pick(kinds)
    if kind == "depth":
        n_layer = c.pick([n for n in r["n_layer"] if n != g.n_layer])
        while len(heads) < n_layer:
            i = c.index(len(heads))
            heads.append(heads[i])
            inners.append(inners[i])
        heads, inners = heads[:n_layer], inners[:n_layer]
    elif kind == "width":
        d_model = c.pick([d for d in r["d_model"] if d != g.d_model])
    elif kind == "heads":
        i = c.index(n_layer)
        heads[i] = c.pick([h for h in r["n_head"] if h != heads[i]])
    elif kind == "inner":
        i, (lo, hi) = c.index(n_layer), r["d_inner"]
        inners[i] = lo + (inners[i] - lo + 1 + c.index(hi - lo)) % (hi - lo + 1)
    elif kind == "embed":
        d_embed = c.pick([x for x in r["d_embed"] if x != g.d_embed])
    else:
        div_val = c.pick([v for v in r["div_val"] if v != g.div_val])
    child = _make(g.family, n_layer, d_model, heads, inners, d_embed, div_val)
    return child if child.arch_id != g.arch_id else mutate(g, rng)


def features(g: DecoderGenotype) -> frozenset:
    out = {("family", g.family), ("n_layer", g.n_layer), ("d_model", g.d_model), ("d_embed", g.d_embed),
           ("div_val", g.div_val)}
    out |= {(i, "n_head", h) for i, h in enumerate(g.n_head)}
    return frozenset(out | {(i, "d_inner", d // 128) for i, d in enumerate(g.d_inner)})
