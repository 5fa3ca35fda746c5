import json

import pytest

LSTM = {  # NAS-Bench-NLP recipe 1000001, with its output gate made a sigmoid (see test_models)
    "i": {"op": "linear", "input": ["x", "h_prev_0"]},
    "i_act": {"op": "activation_tanh", "input": ["i"]},
    "j": {"op": "linear", "input": ["x", "h_prev_0"]},
    "j_act": {"op": "activation_sigm", "input": ["j"]},
    "f": {"op": "linear", "input": ["x", "h_prev_0"]},
    "f_act": {"op": "activation_sigm", "input": ["f"]},
    "o": {"op": "linear", "input": ["x", "h_prev_0"]},
    "o_act": {"op": "activation_sigm", "input": ["o"]},
    "h_new_1_part1": {"op": "elementwise_prod", "input": ["f_act", "h_prev_1"]},
    "h_new_1_part2": {"op": "elementwise_prod", "input": ["i_act", "j_act"]},
    "h_new_1": {"op": "elementwise_sum", "input": ["h_new_1_part1", "h_new_1_part2"]},
    "h_new_1_act": {"op": "activation_tanh", "input": ["h_new_1"]},
    "h_new_0": {"op": "elementwise_prod", "input": ["h_new_1_act", "o_act"]},
}

RNN = {"f": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_tanh", "input": ["f"]}}


@pytest.fixture
def lstm_json():
    return json.dumps(LSTM)


@pytest.fixture(scope="session")
def ptb():
    from trainfree.benchmarks import load_benchmark

    return load_benchmark("nasbench-nlp-ptb")


@pytest.fixture(scope="session")
def wt2():
    from trainfree.benchmarks import load_benchmark

    return load_benchmark("nasbench-nlp-wikitext2")
