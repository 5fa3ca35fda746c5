"""The parser defects issue #18 found, one test each, the documented input limits, and the ids of every
shipped architecture, which the hardening must leave as they were."""
import csv
import gzip
import hashlib
import io
import json
import zipfile

import pytest

from trainfree.data import data_path
from trainfree.errors import InvalidArchitecture
from trainfree.spaces.parsing import load_object as json_object
from trainfree.spaces.bert.genotype import parse_genotype
from trainfree.spaces.decoder.genotype import MAX_LAYERS, MAX_MATRIX, parse_decoder
from trainfree.spaces.nasbench_nlp.recipe import MAX_NODES, parse_recipe
from trainfree.spaces.parsing import MAX_JSON_CHARS, MAX_JSON_DEPTH, QUOTE_CHARS, quote
from tests.conftest import LSTM, RNN
from tests.test_bert_space import LAYER, _genotype
from trainfree.spaces.decoder.space import EXAMPLE as DECODER

PARSERS = [parse_recipe, parse_genotype, parse_decoder]


def _deep(depth):
    value = 0
    for _ in range(depth):
        value = [value]
    return value


def _error(parse, source, **kw) -> str:
    with pytest.raises(InvalidArchitecture) as info:
        parse(source, **kw)
    return str(info.value)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("text", ["[" * 100000, '{"a":' * 100000, "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)])
def test_deeply_nested_json_text_is_refused_before_decoding(parse, text):
    assert "nests deeper than" in _error(parse, text, where="f.csv line 2")


@pytest.mark.parametrize("parse", PARSERS)
def test_too_long_text_and_deep_values_are_refused(parse):
    assert "above the limit" in _error(parse, " " * (MAX_JSON_CHARS + 1))
    assert "above the limit" in _error(parse, b" " * (MAX_JSON_CHARS + 1))
    assert "nested deeper than" in _error(parse, {"a": _deep(100000)})
    loop = []
    loop.append(loop)  # a list that contains itself: the walk stops at the depth limit
    assert "nested deeper than" in _error(parse, {"a": loop})


def test_error_messages_quote_a_bounded_prefix_of_deep_and_huge_values():
    node = {"op": "linear", "input": ["x"]}
    cases = [(parse_recipe, {"h_new_0": {"op": "linear", "input": _deep(MAX_JSON_DEPTH - 3)}}),
             (parse_recipe, {"h_new_0": {"op": "x" * 10 ** 6, "input": ["x"]}}),
             (parse_recipe, {"h_new_0": node, "a" * 10 ** 6: node}),
             (parse_genotype, {"hidden_size": _deep(MAX_JSON_DEPTH - 1), "encoder_layers": []}),
             (parse_genotype, {"hidden_size": 10 ** 5000, "encoder_layers": []}),
             (parse_decoder, {**DECODER, "n_head": _deep(MAX_JSON_DEPTH - 1)}),
             (parse_decoder, {**DECODER, "d_model": 10 ** 5000})]
    for parse, source in cases:
        message = _error(parse, source)
        assert len(message) < 400, message
    assert "hidden_size: <a 16610-bit integer>" in _error(parse_genotype, {"hidden_size": 10 ** 5000, "encoder_layers": []})
    assert len(quote("y" * 10 ** 6)) == QUOTE_CHARS and len(quote(_deep(5000))) <= QUOTE_CHARS


@pytest.mark.parametrize("op", [["linear"], {"linear": 1}, 3, None])
def test_an_op_that_is_not_a_string_is_named(op):
    message = _error(parse_recipe, {"h_new_0": {"op": op, "input": ["x"]}})
    assert f"node 'h_new_0': 'op' must be a string, got {type(op).__name__}" in message


@pytest.mark.parametrize("name", ["h_prev_\u0660", "h_prev_\uff10", "h_prev_00", "h_prev_0\n", "h_prev_01"])
def test_state_names_are_exact_ascii(name):
    recipe = {"f": {"op": "linear", "input": ["x", name]}, "h_new_0": {"op": "activation_tanh", "input": ["f"]}}
    assert "input" in _error(parse_recipe, recipe)
    assert "input" in _error(parse_recipe, json.dumps(recipe))


@pytest.mark.parametrize("name", ["h_new_\u0660", "h_new_\uff10", "h_new_00", "h_new_0\n", "node\u00e9", "", "a" * 65])
def test_node_names_are_exact_ascii(name):
    recipe = {name: {"op": "linear", "input": ["x"]}, "h_new_0": {"op": "linear", "input": ["x"]}}
    assert "node" in _error(parse_recipe, recipe)


def test_recipe_limits():
    many = {f"n{i}": {"op": "linear", "input": ["x"]} for i in range(MAX_NODES)} | {"h_new_0": RNN["h_new_0"]}
    assert f"above the limit of {MAX_NODES}" in _error(parse_recipe, many)
    wide = {"h_new_0": {"op": "linear", "input": ["x"] * 33}}
    assert "33 inputs, above the limit" in _error(parse_recipe, wide)
    # a far-off output index is a gap, found without building a range of that size
    far = {"h_new_0": {"op": "linear", "input": ["x"]}, "h_new_" + "9" * 50: {"op": "linear", "input": ["x"]}}
    assert "gap in the outputs" in _error(parse_recipe, far)


def test_bert_integers_are_integers():
    assert parse_genotype(_genotype()).hidden_size == 256
    for source, field in [({**_genotype(), "hidden_size": 256.0}, "hidden_size: 256.0"),
                          ({**_genotype(), "hidden_size": True}, "hidden_size: True"),
                          (_genotype(feed_forward_dimension=512.0), "feed_forward_dimension: 512.0"),
                          (_genotype(operation_type="DSC", operation_parameter=5.0), "operation_parameter: 5.0")]:
        assert field in _error(parse_genotype, source)
    assert "encoder_layers[0].operation_parameter" in _error(parse_genotype, _genotype(operation_type="DSC",
                                                                                      operation_parameter="5"))


def test_bert_unknown_fields_name_the_closest():
    assert "did you mean 'hidden_size'" in _error(parse_genotype, {"hiden_size": 256, "encoder_layers": [LAYER] * 2})
    message = _error(parse_genotype, _genotype(num_feedforward=1))
    assert "encoder_layers[0]: unknown field 'num_feedforward'; did you mean 'num_feed_forward'" in message
    nested = {"hidden_size": 256, "nas_config": {"encoder_layer": [LAYER] * 2}}
    assert "nas_config: unknown field 'encoder_layer'; did you mean 'encoder_layers'" in _error(parse_genotype, nested)


@pytest.mark.parametrize("wrong,right", [("div_vall", "div_val"), ("pre_lnorn", "pre_lnorm"), ("n_heads", "n_head"),
                                         ("cutofs", "cutoffs")])
def test_decoder_misspelled_fields_name_the_closest(wrong, right):
    assert f"unknown field {wrong!r}; did you mean {right!r}?" in _error(parse_decoder, {**DECODER, wrong: 1})


@pytest.mark.parametrize("change,message", [
    ({"n_layer": 10 ** 10, "n_head": 2, "d_inner": 512}, "n_layer: 10000000000 is outside [1, 128]"),
    ({"n_layer": MAX_LAYERS + 1, "n_head": 2, "d_inner": 512}, "n_layer"),
    ({"d_model": 2 ** 40}, "d_model"),
    ({"n_token": 10 ** 9}, "n_token"),
    ({"d_inner": [900, 10 ** 9, 1500]}, r"d_inner[1]"),
    # fields within their limits whose product is not: 2,000,000 x 16,384 floats is 131 GB
    ({"n_token": 2_000_000, "cutoffs": [], "tie_projs": [False], "d_embed": 16384, "div_val": 1},
     "embedding cluster 0 would hold"),
    ({"n_layer": 100, "d_model": 16384, "n_head": 2, "d_inner": 16384}, "weights, above the limit"),
    ({"effective_cutoffs": 5}, "effective_cutoffs: 5 disagrees"),
    ({"effective_cutoffs": [19997.0, 39997, 199997, 267736]}, "effective_cutoffs"),
    ({"n_layer": 3.0}, "n_layer: expected an integer, got float 3.0"),
    ({"attn_type": False}, "attn_type"),
    ({"d_embed": -1.0}, "d_embed"),
    ({"tie_projs": [0.0, 1, 1, 1]}, "tie_projs"),
    ({"adaptive": "no"}, "adaptive"),
    ({"mem_len": "192"}, "mem_len"),
    ({"n_token": None}, "n_token: expected an integer, got NoneType None"),
])
def test_decoder_sizes_and_types_are_checked_before_anything_is_built(change, message):
    assert message in _error(parse_decoder, {**DECODER, **change})
    assert MAX_MATRIX == 1 << 28


def test_decoder_missing_field_is_named():
    assert "missing field 'd_model'" in _error(parse_decoder, {k: v for k, v in DECODER.items() if k != "d_model"})


def test_json_object_is_the_guarded_loader():
    assert json_object('{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidArchitecture, match="nests deeper"):
        json_object("[" * 100000)


def test_valid_inputs_still_parse_and_round_trip():
    for parse, source in [(parse_recipe, LSTM), (parse_genotype, _genotype()), (parse_decoder, DECODER)]:
        arch = parse(source)
        assert parse(json.dumps(source)).arch_id == arch.arch_id == parse(source).arch_id
        assert parse(json.dumps(arch.to_dict())).arch_id == arch.arch_id
        assert parse(json.dumps(source).encode()).arch_id == arch.arch_id


# (count, distinct ids, sha256 of the ids one per line in file order), computed with the parsers
# before the hardening (commit 8f8f2ec)
SHIPPED_IDS = {
    "ptb": (6313, 1999, "3f0afbff1b08506ab8e327043a78612a40acebbbb937bdbdcb2ad3ff0f83ac99"),
    "wt2": (345, 277, "26f4b46306e0f41312a5c14ad090234c613652f02eb8f0092d644b793e48e6b5"),
    "bert": (361, 356, "e5449a53aef2bec446068644a7f61b28dce5c52a8049a86b829a90d694db1752"),
    "lts": (800, 800, "8bd0e318096e3414b2591856d72f2f05e5d3600cb7927ca209fb27ffc7b97260"),
}


def _path(*parts):
    return str(data_path(*parts))


def _shipped_ids() -> dict[str, list[str]]:
    """The id of every architecture in every shipped file, in file order (also those the loaders skip
    for a missing target)."""
    with gzip.open(_path("nasbench_nlp", "ptb_results.csv.gz"), "rt") as fh:
        rows = list(csv.reader(io.StringIO(fh.read())))
    col = rows[0].index("recipe")
    ids = {"ptb": [parse_recipe(r[col]).arch_id for r in rows[1:] if r], "wt2": []}
    with zipfile.ZipFile(_path("nasbench_nlp", "wikitext2_logs.zip")) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            base = info.filename.rsplit("/", 1)[-1]
            if base.startswith("log_stats_model_") and base.endswith(".json"):
                ids["wt2"].append(parse_recipe(json.loads(zf.read(info))["recepie"]).arch_id)
    with gzip.open(_path("nasbench_bert", "bert_benchmark.json.gz"), "rt") as fh:
        ids["bert"] = [parse_genotype(r["hparams"]["model_hparam_overrides"]).arch_id for r in json.load(fh)]
    with gzip.open(_path("lts", "lts_decoder_benchmark.json.gz"), "rt") as fh:
        lts = json.load(fh)
    ids["lts"] = [parse_decoder(r["arch"], family=r["family"]).arch_id for s in sorted(lts) for r in lts[s]]
    return ids


def test_every_shipped_architecture_keeps_its_id():
    for name, ids in _shipped_ids().items():
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        assert (len(ids), len(set(ids)), digest) == SHIPPED_IDS[name], name
