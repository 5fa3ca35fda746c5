"""NAS-Bench-NLP cell recipes: parse, validate, canonicalise. No torch here.

A recipe is an ordered mapping ``node -> {"op": ..., "input": [...]}``. Leaves are ``x`` (the layer
input at step t) and ``h_prev_i`` (the i-th previous hidden state); outputs are ``h_new_0 ..
h_new_{m-1}``, of which ``h_new_0`` is the layer's visible output.

Node order is part of the genotype: NAS-Bench-NLP creates (and so draws seeded weights for) the
linear nodes in recipe order, so two recipes listing the same nodes in another order build the same
function family with differently assigned initial weights. The architecture id therefore ignores
intermediate node *names* but keeps node *order*: same id, same seeded model, same numbers.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

from trainfree.errors import InvalidArchitecture
from trainfree.spaces.parsing import fail as _fail, load_json, quote

#: op -> (min inputs, max inputs); None = unbounded
OPS: dict[str, tuple[int, int | None]] = {
    "linear": (1, None),
    "blend": (3, 3),
    "elementwise_prod": (2, 2),
    "elementwise_sum": (2, 2),
    "activation_tanh": (1, 1),
    "activation_sigm": (1, 1),
    "activation_leaky_relu": (1, 1),
}
ACTIVATIONS = ("activation_tanh", "activation_sigm", "activation_leaky_relu")

#: limits (docs/spaces.md, "Input limits"): the shipped recipes have at most 16 nodes, 3 inputs a node
MAX_NODES = 256
MAX_INPUTS = 32
MAX_NAME = 64

# names are ASCII only, matched whole (no Unicode digits, no trailing newline); indices have no leading zeros
_NAME = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
_H_NEW = re.compile(r"h_new_(0|[1-9][0-9]*)", re.ASCII)
_H_PREV = re.compile(r"h_prev_(0|[1-9][0-9]*)", re.ASCII)
_STATE = re.compile(r"h_(new|prev)_[0-9]+", re.ASCII)  # what looks like a state name, canonical or not


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    """A validated cell recipe. Build one with :func:`parse_recipe`."""

    nodes: tuple[Node, ...]

    @property
    def hidden_tuple_size(self) -> int:
        return 1 + max(int(_H_NEW.fullmatch(n.name).group(1)) for n in self.nodes if _H_NEW.fullmatch(n.name))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {n.name: {"op": n.op, "input": list(n.inputs)} for n in self.nodes}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def canonical(self) -> "Recipe":
        """The same recipe with intermediate nodes renamed ``node_0, node_1, ...`` in recipe order."""
        rename = {}
        for node in self.nodes:
            if not _H_NEW.fullmatch(node.name):
                rename[node.name] = f"node_{len(rename)}"
        return Recipe(tuple(
            Node(rename.get(n.name, n.name), n.op, tuple(rename.get(i, i) for i in n.inputs))
            for n in self.nodes
        ))

    def canonical_json(self) -> str:
        return json.dumps(self.canonical().to_dict(), separators=(",", ":"))

    @cached_property  # a benchmark asks for it per record, several times
    def arch_id(self) -> str:
        """sha1 of the canonical JSON (first 16 hex digits): stable across runs and machines."""
        return hashlib.sha1(self.canonical_json().encode()).hexdigest()[:16]

    def live_nodes(self) -> set[str]:
        """Names of the nodes that can affect h_new_0 at some step: its ancestors, and the ancestors
        of every h_new_i whose h_prev_i is read by a live node (the state carries them to later steps)."""
        by_name = {n.name: n for n in self.nodes}
        needed, live = {"h_new_0"}, set()
        while True:
            live, stack = set(), list(needed)
            while stack:
                name = stack.pop()
                if name not in live:
                    live.add(name)
                    stack.extend(by_name[name].inputs if name in by_name else ())
            more = needed | {f"h_new_{i}" for i in range(self.hidden_tuple_size) if f"h_prev_{i}" in live}
            if more == needed:
                return {name for name in live if name in by_name}
            needed = more

    def graph_features(self) -> dict[str, int]:
        """Features of the cell graph (as GRAF reads a cell, Jung et al., ICML 2024): nodes of each op,
        nodes, live nodes (those that can affect h_new_0), hidden states, the inputs summed by linear
        nodes, and the longest and shortest path (in nodes) from a cell input (x, h_prev_i) to h_new_0."""
        from collections import Counter

        ops = Counter(n.op for n in self.nodes)
        out = {f"n_{op}": ops[op] for op in OPS}
        out.update(nodes=len(self.nodes), live_nodes=len(self.live_nodes()), hidden_states=self.hidden_tuple_size,
                   linear_inputs=sum(len(n.inputs) for n in self.nodes if n.op == "linear"))
        names = {n.name for n in self.nodes}
        longest: dict[str, int] = {}
        shortest: dict[str, int] = {}
        for node in self.topological_order():  # inputs first; a cell input is at 0
            longest[node.name] = 1 + max(longest[i] if i in names else 0 for i in node.inputs)
            shortest[node.name] = 1 + min(shortest[i] if i in names else 0 for i in node.inputs)
        out.update(longest_path=longest["h_new_0"], shortest_path=shortest["h_new_0"])
        return out

    def topological_order(self) -> list[Node]:
        """Nodes in an evaluation order (inputs before the nodes that use them)."""
        by_name = {n.name: n for n in self.nodes}
        order: list[Node] = []
        state: dict[str, int] = {}  # 1 = on stack, 2 = done

        def visit(name: str) -> None:
            # iterative DFS: recipes are small but keep clear of recursion limits anyway
            stack = [(name, iter(by_name[name].inputs))]
            state[name] = 1
            while stack:
                cur, it = stack[-1]
                for inp in it:
                    if inp in by_name and state.get(inp) is None:
                        state[inp] = 1
                        stack.append((inp, iter(by_name[inp].inputs)))
                        break
                else:
                    stack.pop()
                    state[cur] = 2
                    order.append(by_name[cur])

        for node in self.nodes:
            if node.name not in state:
                visit(node.name)
        return order


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidArchitecture(f"node or field {quote(key)} is defined twice")
        seen[key] = value
    return seen


def _check_name(name: Any, where: str, what: str) -> None:
    """A node or input name: ASCII letters, digits and '_', and a state index without leading zeros."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise _fail(where, f"{what} {quote(name)}: names are 1 to {MAX_NAME} ASCII letters, digits or '_'")
    if _STATE.fullmatch(name) and not (_H_NEW.fullmatch(name) or _H_PREV.fullmatch(name)):
        raise _fail(where, f"{what} {quote(name)}: state indices are written without leading zeros")


def parse_recipe(source: str | bytes | Mapping[str, Any], where: str = "") -> Recipe:
    """Parse and validate a recipe given as JSON text or an already-decoded mapping.

    ``where`` prefixes every error message (e.g. ``"ptb_results.csv line 12: recipe"``).
    Raises :class:`InvalidArchitecture` naming the node and the problem.
    """
    data = load_json(source, where, object_pairs_hook=_reject_duplicates)
    if not isinstance(data, Mapping):
        raise _fail(where, f"a recipe must be a JSON object of nodes, got {type(data).__name__}")
    if not data:
        raise _fail(where, "the recipe has no nodes")
    if len(data) > MAX_NODES:
        raise _fail(where, f"{len(data)} nodes, above the limit of {MAX_NODES}")

    nodes = []
    for name, spec in data.items():
        _check_name(name, where, "node")
        at = f"node {name!r}"
        if name == "x" or _H_PREV.fullmatch(name):
            raise _fail(where, f"{at}: {name!r} is an input leaf and cannot be defined")
        if not isinstance(spec, Mapping):
            raise _fail(where, f"{at}: expected an object with 'op' and 'input', got {type(spec).__name__}")
        extra = [k for k in spec if k not in ("op", "input")]
        if extra:
            raise _fail(where, f"{at}: unknown field(s) {quote(extra)}; a node has only 'op' and 'input'")
        if "op" not in spec:
            raise _fail(where, f"{at}: missing field 'op'")
        if "input" not in spec:
            raise _fail(where, f"{at}: missing field 'input'")
        op, inputs = spec["op"], spec["input"]
        if not isinstance(op, str):
            raise _fail(where, f"{at}: 'op' must be a string, got {type(op).__name__} {quote(op)}; "
                               f"choose from: {', '.join(OPS)}")
        if op not in OPS:
            raise _fail(where, f"{at}: unknown op {quote(op)}; choose from: {', '.join(OPS)}")
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise _fail(where, f"{at}: 'input' must be a list of node names, got {quote(inputs)}")
        lo, hi = OPS[op]
        if len(inputs) < lo or (hi is not None and len(inputs) > hi):
            want = f"exactly {lo}" if lo == hi else f"at least {lo}"
            raise _fail(where, f"{at}: op {op!r} takes {want} input(s), got {len(inputs)}")
        if len(inputs) > MAX_INPUTS:
            raise _fail(where, f"{at}: {len(inputs)} inputs, above the limit of {MAX_INPUTS}")
        for inp in inputs:
            _check_name(inp, where, f"{at}: input")
        nodes.append(Node(name, op, tuple(inputs)))

    outputs = {int(m.group(1)) for n in nodes if (m := _H_NEW.fullmatch(n.name))}
    if 0 not in outputs:
        raise _fail(where, "no output node 'h_new_0'")
    size = next(i for i in range(len(outputs) + 1) if i not in outputs)  # outputs are h_new_0..h_new_{size-1}
    if len(outputs) > size:
        raise _fail(where, f"gap in the outputs: h_new_{max(outputs)} is defined but h_new_{size} is not")

    names = {n.name for n in nodes}
    for node in nodes:
        for inp in node.inputs:
            if inp == "x" and node.op != "linear":
                raise _fail(where, f"node {node.name!r}: 'x' can only feed a linear node (its width is the "
                                   f"layer's input size, not the hidden size)")
            if inp in names or inp == "x":
                continue
            m = _H_PREV.fullmatch(inp)
            if m is None:
                raise _fail(where, f"node {node.name!r}: unknown input {inp!r} (not a node, 'x' or 'h_prev_i')")
            if int(m.group(1)) >= size:
                raise _fail(where, f"node {node.name!r}: input {inp!r} does not exist: the cell has "
                                   f"{size} hidden state(s), h_prev_0..h_prev_{size - 1}")

    cycle = _find_cycle(nodes)
    if cycle:
        raise _fail(where, "cycle: " + " -> ".join(cycle) + " (each node takes the next as input)")
    return Recipe(tuple(nodes))


def _find_cycle(nodes: list[Node]) -> list[str] | None:
    graph = {n.name: [i for i in n.inputs if i not in ("x",) and not _H_PREV.fullmatch(i)] for n in nodes}
    state: dict[str, int] = {}
    for start in graph:
        if start in state:
            continue
        path = [start]
        stack = [iter(graph[start])]
        state[start] = 1
        while stack:
            for nxt in stack[-1]:
                if state.get(nxt) == 1:
                    return path[path.index(nxt):] + [nxt]
                if nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append(iter(graph[nxt]))
                    break
            else:
                stack.pop()
                state[path.pop()] = 2
    return None
