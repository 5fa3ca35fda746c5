"""Inputs for fuzzing the architecture parsers: valid seeds (every shipped benchmark's architectures and
generated ones) and mutations of them, all drawn from a ``random.Random`` (seeded in
benchmarks/fuzz_parsers.py, driven by Hypothesis in tests/test_fuzz.py). ``outcome`` says what a
parser did with one input: accepted (and then its JSON parses back to the same id) or refused with a
TrainfreeError; anything else propagates."""
from __future__ import annotations

import copy
import gzip
import json
import random
import re
from functools import lru_cache
from typing import Any

from trainfree.errors import TrainfreeError
from trainfree.spaces.bert.genotype import parse_genotype
from trainfree.spaces.decoder.genotype import parse_decoder
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe

PARSERS = {"nasbench-nlp": parse_recipe, "nasbench-bert": parse_genotype, "decoder": parse_decoder}
SPACES = tuple(PARSERS)


def _deep(depth: int, leaf: Any = 0) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


#: replacement values: wrong types, confusable names, floats equal to ints, sizes far beyond any limit
NUMBERS = [None, True, False, 0, 1, -1, 2, 3, 256.0, 1.5, -0.0, 1e308, float("nan"), float("inf"), 10 ** 10, 2 ** 31,
           2 ** 63, 10 ** 400, 10 ** 5000]
NAMES = ["", "x", "linear", "blend", "SA", "GPT2", "TransXL", "h_new_0", "h_new_1", "h_prev_0", "h_prev_1",
         "h_prev_\u0660", "h_prev_\uff10", "h_prev_00", "h_prev_0\n", "h_new_\u0660", "h_new_01", "h_new_0\n",
         "h_new_99999999999999999999", "\ud800", "\x00", "\u00e9" * 3, "a" * 5000]
#: containers, made fresh for every use (mutations change values in place)
CONTAINERS = [list, dict, lambda: [0], lambda: ["x"], lambda: ["h_prev_0"] * 40, lambda: list(range(300)),
              lambda: {"op": "linear"}, lambda: {"op": ["linear"], "input": ["x"]}, lambda: _deep(40),
              lambda: _deep(3000), lambda: {str(i): i for i in range(50)}]


def nasty(rnd: random.Random) -> Any:
    kind = rnd.randrange(3)
    return rnd.choice(NUMBERS) if kind == 0 else rnd.choice(NAMES) if kind == 1 else rnd.choice(CONTAINERS)()


_CHARS = "[]{}\",:\\0123456789.-eE tfn\u0660\uff10\n\x00é"


@lru_cache(maxsize=None)
def _shipped(space: str) -> tuple[str, ...]:
    """Every distinct shipped architecture of the space, as JSON text in the form its file holds."""
    from trainfree.benchmarks import SHIPPED, LTS_FILE, load_benchmark
    from trainfree.data import data_path

    if space == "nasbench-nlp":
        texts = {r.arch.to_json() for name in ("nasbench-nlp-ptb", "nasbench-nlp-wikitext2")
                 for r in load_benchmark(name).records}
    elif space == "nasbench-bert":
        with gzip.open(str(data_path(*SHIPPED["nasbench-bert"][0].split("/"))), "rt") as fh:
            texts = {json.dumps(r["hparams"]["model_hparam_overrides"]) for r in json.load(fh)}
    else:
        with gzip.open(str(data_path(*LTS_FILE.split("/"))), "rt") as fh:
            texts = {json.dumps({**r["arch"], "family": r["family"]}) for recs in json.load(fh).values() for r in recs}
    return tuple(sorted(texts))


@lru_cache(maxsize=None)
def seeds(space: str, n_generated: int = 30) -> tuple[str, ...]:
    """The shipped architectures of ``space`` and ``n_generated`` drawn by its generator (seed 0)."""
    import numpy as np

    from trainfree.spaces.bert import generate as bert
    from trainfree.spaces.decoder import generate as decoder
    from trainfree.spaces.nasbench_nlp import generate as nlp

    module = {"nasbench-nlp": nlp, "nasbench-bert": bert, "decoder": decoder}[space]
    rng = np.random.default_rng(0)
    generated = [json.dumps(module.sample(rng).to_dict()) for _ in range(n_generated)]
    return _shipped(space) + tuple(generated)


def _paths(value: Any) -> list[tuple]:
    """Positions in a JSON value (down to 6 levels, 50 items a container), as paths of keys and indices."""
    out, stack = [], [((), value)]
    while stack:
        path, v = stack.pop()
        out.append(path)
        if len(path) < 6 and isinstance(v, dict):
            stack.extend((path + (k,), x) for k, x in list(v.items())[:50])
        elif len(path) < 6 and isinstance(v, list):
            stack.extend((path + (i,), x) for i, x in enumerate(v[:50]))
    return out


def _misspell(key: str, rnd: random.Random) -> str:
    key = key if isinstance(key, str) else str(key)[:20]
    i = rnd.randrange(len(key) + 1)
    how = rnd.randrange(5)
    if how == 0:
        return key[:i] + rnd.choice(_CHARS + "abcdefgh_") + key[i:]
    if how == 1 and key:
        return key[:i] + key[i + 1:]
    if how == 2 and key:
        return key[:i] + rnd.choice("abcdefgh_0\u0660") + key[i + 1:]
    if how == 3:
        return key.upper()
    return key + rnd.choice(["\n", " ", "0", "_"])


def _key(rnd: random.Random, depth: int) -> Any:
    """Mostly a string; below the top, sometimes another scalar (a mapping passed in from Python)."""
    key = random_value(rnd, 4)
    return key if depth and rnd.random() < 0.3 else rnd.choice(NAMES) if isinstance(key, int) else str(key)


def random_value(rnd: random.Random, depth: int = 0) -> Any:
    """A JSON-ish value: scalars of every type, nested lists and objects."""
    kind = rnd.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rnd.choice(NUMBERS)
    if kind == 1:
        return rnd.randint(-2 ** 40, 2 ** 40) if rnd.random() < 0.5 else rnd.randint(-3, 1100)
    if kind == 2:
        return rnd.uniform(-1e6, 1e6)
    if kind in (3, 4):
        return "".join(rnd.choice(_CHARS + "abcxyz_hnewprv") for _ in range(rnd.randrange(12)))
    if kind == 5:
        return rnd.choice(NAMES)
    if kind in (6, 7):
        return {_key(rnd, depth): random_value(rnd, depth + 1) for _ in range(rnd.randrange(5))}
    return [random_value(rnd, depth + 1) for _ in range(rnd.randrange(5))]


def _copy(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except RecursionError:  # a very deep value: share it
        return value


def _set(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return value


def mutate(value: Any, rnd: random.Random) -> Any:
    """One change somewhere in ``value`` (changed in place; the result is returned)."""
    path = rnd.choice(_paths(value))
    target = value
    for key in path:
        target = target[key]
    how = rnd.randrange(10)
    if how <= 2:
        return _set(value, path, nasty(rnd))
    if how == 3:
        return _set(value, path, random_value(rnd))
    if how == 4 and isinstance(target, int) and not isinstance(target, bool) and target.bit_length() < 900:
        new = rnd.choice([target + 1, target - 1, -target, target * 2, target * 10 ** rnd.randrange(1, 12),
                          float(target), str(target), bool(target % 2)])
        return _set(value, path, new)
    if how == 5 and isinstance(target, str):
        return _set(value, path, _misspell(target, rnd))
    if isinstance(target, dict) and target:
        key = rnd.choice(list(target))
        if how in (4, 5, 6):  # rename a key (a misspelt field, a confusable node name)
            target[_misspell(key, rnd)] = target.pop(key)
        elif how == 7:
            del target[key]
        else:
            target[rnd.choice([_misspell(key, rnd), key + "_extra", "h_new_1"])] = _copy(target[key])
        return value
    if isinstance(target, list) and target:
        i = rnd.randrange(len(target))
        if how in (4, 5, 6):
            target.insert(i, _copy(target[i]))
        elif how == 7:
            del target[i]
        elif how == 8:
            return _set(value, path, target[0])  # a list becomes a scalar (n_head: 2 for [2, 2, 2])
        else:
            rnd.shuffle(target)
        return value
    return _set(value, path, nasty(rnd))


def reshuffle(value: Any, rnd: random.Random) -> Any:
    """A change that often keeps the input valid: an object's keys reordered, or two values of one
    type swapped (a recipe's inputs, a layer's widths)."""
    paths = _paths(value)
    if rnd.random() < 0.5:
        path = rnd.choice(paths)
        parent = value
        for key in path:
            parent = parent[key]
        if isinstance(parent, dict):
            items = list(parent.items())
            rnd.shuffle(items)
            parent.clear()
            parent.update(items)
        return value
    a, b = rnd.choice(paths), rnd.choice(paths)
    if not a or not b or a[:len(b)] == b or b[:len(a)] == a:  # the root, or one inside the other
        return value
    va, vb = _get(value, a), _get(value, b)
    if type(va) is type(vb):
        _set(value, a, vb)
        _set(value, b, va)
    return value


def _get(value: Any, path: tuple) -> Any:
    for key in path:
        value = value[key]
    return value


def mutate_text(text: str, rnd: random.Random) -> str:
    how = rnd.randrange(6)
    i = rnd.randrange(len(text) + 1)
    if how == 0:
        return text[:i]
    if how == 1:
        return text[:i] + rnd.choice(_CHARS) + text[i:]
    if how == 2:
        return text[:i] + text[i + 1:]
    if how == 3:
        k = rnd.choice([2, 20, 1000, 100000])
        return "[" * k + text + "]" * k if rnd.random() < 0.5 else text[:i] + "{\"a\":" * k + text[i:]
    if how == 4:
        return text.replace("0", rnd.choice(["\u0660", "\uff10", "00", "0.0", "0e0"]), 1)
    return text + rnd.choice(["\n", " ", "x", "}", "]"])


def case(space: str, rnd: random.Random) -> Any:
    """One fuzz input for ``space``: a mutated seed (as a value or JSON text), a random value, or random text."""
    kind = rnd.random()
    if kind < 0.06:
        return random_value(rnd)
    if kind < 0.1:
        return "".join(rnd.choice(_CHARS) for _ in range(rnd.randrange(40)))
    text = rnd.choice(seeds(space))
    value = json.loads(text)
    for _ in range(rnd.choice([0, 1, 1, 1, 2, 3])):
        value = mutate(value, rnd) if rnd.random() < 0.8 else reshuffle(value, rnd)
    if rnd.random() < 0.6:
        return value
    try:
        text = json.dumps(value)
    except (ValueError, TypeError, RecursionError):  # a >4300-digit int, a deep value: keep the value
        return value
    return mutate_text(text, rnd) if rnd.random() < 0.5 else text


def outcome(space: str, source: Any) -> str:
    """'accepted' (after checking that the same input and its JSON give the same id) or 'error'
    (a TrainfreeError); any other exception propagates, and an id mismatch is an AssertionError."""
    parse = PARSERS[space]
    try:
        arch = parse(source)
    except TrainfreeError:
        return "error"
    assert parse(source).arch_id == arch.arch_id, "the same input parsed twice gave two ids"
    _check_accepted(space, source, arch)
    again = parse(json.dumps(arch.to_dict()))
    assert again.arch_id == arch.arch_id, f"to_json does not round-trip: {arch.to_dict()}"
    return "accepted"


#: the fields of an LTS job config and of trainfree's own decoder form
DECODER_FIELDS = {"family", "n_layer", "d_model", "n_head", "d_inner", "d_embed", "d_head", "div_val", "n_token",
                  "cutoffs", "tie_projs", "tie_weight", "adaptive", "tgt_len", "mem_len", "attn_type", "pre_lnorm",
                  "effective_cutoffs"}
_ASCII_NAME = re.compile(r"[A-Za-z0-9_]+", re.ASCII)


def _check_accepted(space: str, source: Any, arch: Any) -> None:
    """What an accepted input must be, whatever the parser's code: ASCII names, integers that are
    ints, no field the space does not know."""
    if space == "nasbench-nlp":
        names = [n.name for n in arch.nodes] + [i for n in arch.nodes for i in n.inputs]
        assert all(_ASCII_NAME.fullmatch(n) and not re.fullmatch(r"h_(new|prev)_0[0-9]+", n) for n in names), names
    elif space == "nasbench-bert":
        for layer in arch.layers:
            assert all(type(getattr(layer, f)) is int for f in ("num_operation_heads", "feed_forward_dimension",
                                                                  "num_feed_forward")), layer
            assert type(layer.operation_parameter) in (int, str), layer
        assert type(arch.hidden_size) is int, arch
    else:
        value = json.loads(source) if isinstance(source, (str, bytes, bytearray)) else source
        assert set(value) <= DECODER_FIELDS, sorted(set(value) - DECODER_FIELDS)
        ints = [arch.n_layer, arch.d_model, arch.d_embed, arch.div_val, arch.n_token, arch.tgt_len,
                *arch.n_head, *arch.d_inner, *arch.cutoffs]
        assert all(type(v) is int for v in ints), arch
