"""A recurrent layer that evaluates a NAS-Bench-NLP recipe (NAS-Bench-NLP's CustomRNNCell / CustomRNN)."""
from __future__ import annotations

import math

import torch
from torch import nn

from trainfree.spaces.nasbench_nlp.recipe import Recipe
from trainfree.spaces.nasbench_nlp.tangent import step0_tangent_log_norms

_ACT = {
    "activation_tanh": torch.tanh,
    "activation_sigm": torch.sigmoid,
    "activation_leaky_relu": lambda t: nn.functional.leaky_relu(t, 0.01),
}


class MultiLinear(nn.Module):
    """y = in_0 W_0^T + b + sum_{i>=1} in_i W_i^T: one weight per input, a single bias."""

    def __init__(self, input_sizes: list[int], out_size: int, init: bool = True):
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(out_size, s)) for s in input_sizes)
        self.bias = nn.Parameter(torch.empty(out_size))
        if not init:  # the caller sets the values (trainfree.spaces.nasbench_nlp.draws)
            return
        # Construction-time init, kept because it advances the seeded RNG exactly as the benchmark did;
        # RecipeRNN then re-draws every parameter.
        for w in self.weights:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        bound = 1 / math.sqrt(sum(input_sizes))
        nn.init.uniform_(self.bias, -bound, bound)


class RecipeRNN(nn.Module):
    """One recurrent layer: the hidden tuple starts at zeros and is updated by the recipe each step."""

    activations = _ACT  # op -> function (trainfree.spaces.nasbench_nlp.tangent differentiates them)

    def __init__(self, recipe: Recipe, input_size: int, hidden_size: int, init: bool = True):
        """With ``init`` False no random draws are made and the parameters are left uninitialised."""
        super().__init__()
        self.recipe = recipe
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.tuple_size = recipe.hidden_tuple_size
        self.components = nn.ModuleDict()
        for node in recipe.nodes:  # recipe order fixes the order of the seeded draws
            if node.op == "linear":
                sizes = [input_size if i == "x" else hidden_size for i in node.inputs]
                self.components[node.name] = MultiLinear(sizes, hidden_size, init)
        self._order = recipe.topological_order()
        live = recipe.live_nodes()
        self._live_order = [node for node in self._order if node.name in live]
        # value name -> the (linear node, input position) terms that read it, of live and of dead nodes
        self._live_consumers: dict[str, list[tuple[str, int]]] = {}
        self._dead_consumers: dict[str, list[tuple[str, int]]] = {}
        for node in recipe.nodes:
            if node.op == "linear":
                for k, inp in enumerate(node.inputs):
                    into = self._live_consumers if node.name in live else self._dead_consumers
                    into.setdefault(inp, []).append((node.name, k))
        if init:
            self.reset_parameters()

    def init_bound(self) -> float:
        return 1.0 / math.sqrt(self.hidden_size)

    def reset_parameters(self) -> None:
        bound = self.init_bound()
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, inputs: torch.Tensor, activation_hook=None, state_hook=None,
                rows: torch.Tensor | None = None, carry: list | None = None, step_hook=None) -> torch.Tensor:
        """inputs (T, B, input_size) -> outputs (T, B, hidden): h_new_0 after each step.

        With ``rows`` (T, B), ``inputs`` (U, input_size) are the distinct input vectors and step t of
        sequence b reads ``inputs[rows[t, b]]``: each distinct vector is projected once (a batch of
        token embeddings repeats most tokens).
        ``activation_hook(node_name, tensor)`` sees every activation output (B, H);
        ``state_hook(t, h)`` sees the h_prev_0 that step t receives (the zero state at t = 0).
        Without an activation hook, nodes that cannot reach the output (``Recipe.live_nodes``) are
        skipped: the outputs are the same, with less work.
        ``step_hook(t, hidden)`` sees the hidden tuple after step t and returns the tuple to carry on with
        (trainfree.metrics.rnn_dynamics rescales the gradient flowing back through it).
        ``carry`` (training across windows, as the benchmark trained): a list holding the hidden tuple
        to start from (empty: zeros); on return it holds the final tuple.
        """
        every_node = activation_hook is not None
        order = self._order if every_node else self._live_order
        steps, batch = (inputs.shape[0], inputs.shape[1]) if rows is None else rows.shape
        fused = self.fused_weights(every_node)
        x_parts, biased = self.input_parts(inputs, rows, fused.pop("x", []))
        hidden = [inputs.new_zeros(batch, self.hidden_size) for _ in range(self.tuple_size)]
        if carry:
            hidden = list(carry)
        outputs = []
        for t in range(steps):
            values = {f"h_prev_{i}": h for i, h in enumerate(hidden)}
            if state_hook is not None:
                state_hook(t, hidden[0])
            parts = {term: part[t] for term, part in x_parts.items()}
            for name in list(values):
                self._project(name, values[name], fused, parts)
            for node in order:
                if node.op == "linear":
                    out = parts[(node.name, 0)]
                    if node.name not in biased:
                        out = out + self.components[node.name].bias
                    for k in range(1, len(node.inputs)):
                        out = out + parts[(node.name, k)]
                elif node.op in _ACT:
                    out = _ACT[node.op](values[node.inputs[0]])
                    if activation_hook is not None:
                        activation_hook(node.name, out)
                elif node.op == "elementwise_prod":
                    out = values[node.inputs[0]] * values[node.inputs[1]]
                elif node.op == "elementwise_sum":
                    out = values[node.inputs[0]] + values[node.inputs[1]]
                else:  # blend(z, a, b) = z*a + (1-z)*b
                    z, a, b = (values[i] for i in node.inputs)
                    out = z * a + (1 - z) * b
                values[node.name] = out
                self._project(node.name, out, fused, parts)
            # a skipped h_new_i is never read: its h_prev_i feeds no live node
            hidden = [values.get(f"h_new_{i}", hidden[i]) for i in range(self.tuple_size)]
            if step_hook is not None:
                hidden = list(step_hook(t, hidden))
            outputs.append(hidden[0])
        if carry is not None:
            carry[:] = hidden
        return torch.stack(outputs, dim=0)

    def fused_weights(self, every_node: bool = False) -> dict[str, list]:
        """value name -> [(terms, W)]: every linear term of a live node reading the same value is one
        product with the weights concatenated. With ``every_node``, dead nodes' terms are a product of
        their own, so the live values are the same with or without them, bit for bit."""
        fused: dict[str, list] = {}
        for consumers in (self._live_consumers, self._dead_consumers if every_node else {}):
            for value, terms in consumers.items():
                weight = torch.cat([self.components[n].weights[k] for n, k in terms], dim=0)
                fused.setdefault(value, []).append((terms, weight.t()))
        return fused

    def input_parts(self, inputs: torch.Tensor, rows: torch.Tensor | None, x_terms: list):
        """The x-terms for all steps at once (they do not depend on the recurrence), the bias joined to
        each node's term 0: {(node, k): per-step tensors}, and the names of the nodes whose bias is in."""
        parts = {}
        for terms, weight in x_terms:
            projected = inputs @ weight
            if rows is not None:
                projected = projected[rows]
            parts.update(zip(terms, projected.split(self.hidden_size, dim=-1)))
        for (name, k), part in parts.items():
            if k == 0:  # the step adds the bias to term 0 first: done here for all steps, same sums
                parts[(name, k)] = part + self.components[name].bias
        biased = {name for name, k in parts if k == 0}
        # per-step views taken at once: indexing part[t] each step makes autograd scatter every step's
        # gradient into a zero (T, B, H) tensor (T^2 work); unbind's backward stacks them once
        return {term: part.unbind(0) for term, part in parts.items()}, biased

    def step0_tangent_log_norms(self, inputs: torch.Tensor, direction: torch.Tensor,
                                rows: torch.Tensor | None = None):
        """log ||(dh_t / dx_0) direction|| per step and sequence (T, B) along the trajectory of ``inputs``,
        and the log of h_0's smallest share of the tangent (``rows`` as in forward;
        trainfree.spaces.nasbench_nlp.tangent)."""
        return step0_tangent_log_norms(self, inputs, direction, rows)

    def _project(self, name, value, fused, parts) -> None:
        for terms, weight in fused.get(name, ()):
            parts.update(zip(terms, (value @ weight).split(self.hidden_size, dim=-1)))
