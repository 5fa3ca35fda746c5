"""Recipe parsing, validation (every error class) and canonical ids."""
import json
import sys
import subprocess

import pytest

from trainfree.errors import InvalidArchitecture
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe
from tests.conftest import LSTM, RNN


def test_parses_lstm_and_tuple_size(lstm_json):
    r = parse_recipe(lstm_json)
    assert r.hidden_tuple_size == 2
    assert [n.name for n in r.nodes] == list(LSTM)
    order = [n.name for n in r.topological_order()]
    for node in r.nodes:
        for inp in node.inputs:
            if inp in order:
                assert order.index(inp) < order.index(node.name)


def test_round_trip_json(lstm_json):
    r = parse_recipe(lstm_json)
    assert parse_recipe(r.to_json()) == r


def test_id_ignores_intermediate_names_and_json_layout():
    renamed = {"a": {"input": ["x", "h_prev_0"], "op": "linear"}, "h_new_0": {"op": "activation_tanh", "input": ["a"]}}
    assert parse_recipe(RNN).arch_id == parse_recipe(json.dumps(renamed, indent=4)).arch_id


def test_id_changes_with_structure_and_node_order():
    other = dict(RNN, h_new_0={"op": "activation_sigm", "input": ["f"]})
    assert parse_recipe(RNN).arch_id != parse_recipe(other).arch_id
    two_linear = {"a": {"op": "linear", "input": ["x"]}, "b": {"op": "linear", "input": ["h_prev_0"]},
                  "h_new_0": {"op": "elementwise_sum", "input": ["a", "b"]}}
    swapped = {k: two_linear[k] for k in ("b", "a", "h_new_0")}
    # node order fixes the order of seeded weight draws, so it is part of the id
    assert parse_recipe(two_linear).arch_id != parse_recipe(swapped).arch_id


def test_id_is_stable():
    # golden: the id is part of stored results, so it must not drift between versions or machines
    assert parse_recipe(RNN).arch_id == "928bf616cc88c0c6"
    assert parse_recipe(RNN).arch_id == parse_recipe(json.dumps(RNN)).arch_id


BAD = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ("{}", "no nodes"),
    ('{"h_new_0": {"op": "linear", "input": ["x"]}, "h_new_0": {"op": "linear", "input": ["x"]}}', "defined twice"),
    ({"h_new_0": {"op": "conv", "input": ["x"]}}, "node 'h_new_0': unknown op 'conv'"),
    ({"h_new_0": {"op": "linear", "input": ["y"]}}, "node 'h_new_0': unknown input 'y'"),
    ({"h_new_0": {"op": "linear"}}, "node 'h_new_0': missing field 'input'"),
    ({"h_new_0": {"input": ["x"]}}, "node 'h_new_0': missing field 'op'"),
    ({"h_new_0": {"op": "linear", "input": ["x"], "w": 1}}, "unknown field"),
    ({"h_new_0": "linear"}, "expected an object"),
    ({"h_new_0": {"op": "linear", "input": "x"}}, "must be a list"),
    ({"h_new_0": {"op": "blend", "input": ["h_prev_0", "h_prev_0"]}}, "takes exactly 3 input(s), got 2"),
    ({"h_new_0": {"op": "elementwise_sum", "input": ["h_prev_0"]}}, "takes exactly 2 input(s), got 1"),
    ({"h_new_0": {"op": "activation_tanh", "input": ["h_prev_0", "h_prev_0"]}}, "takes exactly 1 input(s), got 2"),
    ({"h_new_0": {"op": "linear", "input": []}}, "takes at least 1 input(s), got 0"),
    ({"a": {"op": "linear", "input": ["x", "b"]}, "b": {"op": "activation_tanh", "input": ["a"]},
      "h_new_0": {"op": "activation_tanh", "input": ["b"]}}, "cycle: a -> b -> a"),
    ({"a": {"op": "linear", "input": ["x"]}}, "no output node 'h_new_0'"),
    ({"h_new_0": {"op": "linear", "input": ["x"]}, "h_new_2": {"op": "linear", "input": ["x"]}},
     "gap in the outputs: h_new_2 is defined but h_new_1 is not"),
    ({"h_new_0": {"op": "linear", "input": ["x", "h_prev_1"]}}, "input 'h_prev_1' does not exist"),
    ({"h_new_0": {"op": "activation_tanh", "input": ["x"]}}, "'x' can only feed a linear node"),
    ({"x": {"op": "linear", "input": ["h_prev_0"]}, "h_new_0": {"op": "linear", "input": ["x"]}}, "input leaf"),
]


@pytest.mark.parametrize("source,message", BAD, ids=[m for _, m in BAD])
def test_invalid_recipes_raise_one_clear_error(source, message):
    with pytest.raises(InvalidArchitecture) as info:
        parse_recipe(source, where="file.csv line 3")
    assert message in str(info.value)
    assert str(info.value).startswith("file.csv line 3: ")


def test_every_shipped_recipe_is_valid(ptb):
    import csv
    import gzip

    from trainfree.data import data_path

    with gzip.open(str(data_path("nasbench_nlp", "ptb_results.csv.gz")), "rt", newline="") as fh:
        raw = {row["log_name"]: json.loads(row["recipe"]) for row in csv.DictReader(fh)}
    assert len(ptb) == len(raw) == 6313 and ptb.skipped == 0  # every row loaded, none lost to validation
    for r in ptb.records:  # each parsed recipe is its row's recipe, node for node and in order
        assert list(r.arch.to_dict().items()) == list(raw[r.name].items()), r.name


def test_recipe_module_does_not_import_torch():
    code = "import sys, trainfree.spaces.nasbench_nlp.recipe; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_graph_features_count_ops_and_paths():
    from trainfree.spaces.nasbench_nlp.recipe import parse_recipe

    recipe = parse_recipe({
        "a": {"op": "linear", "input": ["x", "h_prev_0"]},
        "b": {"op": "activation_tanh", "input": ["a"]},
        "c": {"op": "linear", "input": ["b", "h_prev_1", "x"]},
        "h_new_0": {"op": "elementwise_sum", "input": ["c", "a"]},
        "h_new_1": {"op": "activation_sigm", "input": ["a"]},  # live: c reads h_prev_1
        "dead": {"op": "linear", "input": ["x"]},  # reaches no output
    })
    f = recipe.graph_features()
    assert (f["nodes"], f["live_nodes"], f["hidden_states"], f["linear_inputs"]) == (6, 5, 2, 6)
    assert (f["longest_path"], f["shortest_path"]) == (4, 2)  # x -> a -> b -> c -> h_new_0; x -> a -> h_new_0
    assert (f["n_linear"], f["n_activation_tanh"], f["n_activation_sigm"], f["n_elementwise_sum"], f["n_blend"]) == \
        (3, 1, 1, 1, 0)
