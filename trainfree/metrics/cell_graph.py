"""Features of a recurrent cell's graph, read off the recipe without building a model (GRAF: Jung et al.,
"Zero-Shot Neural Architecture Search with Graph Features", ICML 2024, which feeds such counts and path
lengths to a learned predictor beside zero-cost proxies). They are inputs for combinations
(``rnn_forward_combo``); each is also a metric in its own right (higher ranks higher), whose tau the
suite reports like any other's.
"""
from __future__ import annotations

from trainfree.metrics.base import metric
from trainfree.probe import Probe

#: metric name -> (feature key, description)
FEATURES = {
    "cell_nodes": ("nodes", "Nodes of the cell graph."),
    "cell_live_nodes": ("live_nodes", "Nodes of the cell graph that can affect its output h_new_0."),
    "cell_hidden_states": ("hidden_states", "Hidden states the cell carries between steps."),
    "cell_linear_inputs": ("linear_inputs", "Inputs summed by the cell's linear nodes."),
    "cell_longest_path": ("longest_path", "Longest path, in nodes, from a cell input (x, h_prev_i) to h_new_0."),
    "cell_shortest_path": ("shortest_path", "Shortest path, in nodes, from a cell input (x, h_prev_i) to h_new_0."),
    "cell_linear": ("n_linear", "Linear nodes of the cell."),
    "cell_blend": ("n_blend", "Blend nodes (z * a + (1 - z) * b) of the cell."),
    "cell_prod": ("n_elementwise_prod", "Elementwise-product nodes of the cell."),
    "cell_sum": ("n_elementwise_sum", "Elementwise-sum nodes of the cell."),
    "cell_tanh": ("n_activation_tanh", "Tanh nodes of the cell."),
    "cell_sigmoid": ("n_activation_sigm", "Sigmoid nodes of the cell."),
    "cell_leaky_relu": ("n_activation_leaky_relu", "Leaky-ReLU nodes of the cell."),
}


def _register(name: str, key: str, doc: str) -> None:
    def fn(probe: Probe) -> float:
        return float(probe.cached("cell_graph", lambda: probe.space.cell_graph(probe.arch))[key])

    fn.__doc__ = doc
    fn.__name__ = name
    fn.__module__ = __name__
    metric(name, higher_is_better=True, requires={"cell_graph"})(fn)


for _name, (_key, _doc) in FEATURES.items():
    _register(_name, _key, _doc)
