"""Sampling and mutating NAS-Bench-NLP cells. No torch here.

Sampling follows the benchmark's own generator (Klyuchnikov et al. 2022, ``search_space.py``): for
a hidden-tuple size m in 1..3 and a node budget of m + (7..13) intermediate nodes, grow a graph
where each step adds either a linear node (2 inputs with weight 4, 3 with weight 1, from x,
h_prev_* and earlier activation nodes) followed by its activation (tanh, sigmoid or leaky ReLU),
or a blend (3 inputs) / elementwise product / sum (2 inputs) over anything but x, with op weights
linear 3 : blend 1 : prod 1 : sum 1; then m of the nodes become h_new_0..h_new_{m-1} (moved to the
end), unreachable nodes are dropped, and the cell is kept only if it uses x and every h_prev_i and
no h_new_i reads an h_prev directly. Mutations keep those rules (and parse_recipe's), but may
give a linear node a non-activation input, as the hand-written GRU cell has.

Which budgets the benchmark's 14k cells were drawn with is not recorded; rejection favours small
hidden tuples, so samples hold more 1-state cells than the shipped benchmark (documented, tested
only for validity).
"""
from __future__ import annotations

import numpy as np

from trainfree.errors import InvalidArchitecture, TrainfreeError
from trainfree.spaces.choices import GeneChooser, RandomChooser
from trainfree.spaces.nasbench_nlp.recipe import ACTIVATIONS, Recipe, parse_recipe

HIDDEN_SIZES = (1, 2, 3)
MIN_INTERMEDIATE, MAX_INTERMEDIATE = 7, 13  # the generator's default budget, up to 13
MAIN_OPS, MAIN_WEIGHTS = ("linear", "blend", "elementwise_prod", "elementwise_sum"), (3, 1, 1, 1)
LINEAR_FANIN, LINEAR_FANIN_WEIGHTS = (2, 3), (4, 1)
ARITY = {"blend": 3, "elementwise_prod": 2, "elementwise_sum": 2}
def n_genes() -> int:
    return N_GENES


N_GENES = 64  # enough for most first attempts; the rest come from the fallback generator
MUTATIONS = ("op", "rewire", "add", "remove", "hidden")
MAX_TRIES = 1000


def construct(chooser) -> Recipe | None:
    """One attempt of the benchmark's generator with the chooser's decisions; None if rejected."""
    m = chooser.pick(HIDDEN_SIZES)
    budget = m + chooser.pick(range(MIN_INTERMEDIATE, MAX_INTERMEDIATE + 1))
    base = ["x"] + [f"h_prev_{i}" for i in range(m)]
    cell: dict[str, dict] = {}
    activations: list[str] = []
    i = 0
    while i < budget:
        op = chooser.pick(MAIN_OPS, MAIN_WEIGHTS)
        if op == "linear":
            pool = base + activations
            fanin = min(chooser.pick(LINEAR_FANIN, LINEAR_FANIN_WEIGHTS), len(pool))
            cell[f"node_{i}"] = {"op": "linear", "input": chooser.sample(pool, fanin)}
            cell[f"node_{i + 1}"] = {"op": chooser.pick(ACTIVATIONS), "input": [f"node_{i}"]}
            activations.append(f"node_{i + 1}")
            i += 2
        else:
            pool = base[1:] + list(cell)
            if ARITY[op] <= len(pool):
                cell[f"node_{i}"] = {"op": op, "input": chooser.sample(pool, ARITY[op])}
                i += 1
    chosen = chooser.sample(list(cell), m)
    return _finish(cell, chosen)


def _finish(cell: dict[str, dict], outputs: list[str]) -> Recipe | None:
    """Rename ``outputs`` to h_new_0.. (moved to the end), drop unreachable nodes, check the rules."""
    rename = {name: f"h_new_{k}" for k, name in enumerate(outputs)}
    body = {rename.get(k, k): {"op": v["op"], "input": [rename.get(x, x) for x in v["input"]]}
            for k, v in cell.items() if k not in rename}
    for name in outputs:
        v = cell[name]
        body[rename[name]] = {"op": v["op"], "input": [rename.get(x, x) for x in v["input"]]}
    return _checked(body, len(outputs))


def _checked(cell: dict[str, dict], m: int) -> Recipe | None:
    reachable, queue = set(), [f"h_new_{k}" for k in range(m)]
    while queue:
        name = queue.pop()
        if name in reachable:
            continue
        reachable.add(name)
        queue += cell[name]["input"] if name in cell else []
    cell = {k: v for k, v in cell.items() if k in reachable}
    leaves = {"x"} | {f"h_prev_{k}" for k in range(m)}
    if not leaves <= reachable or any(x.startswith("h_prev_") for k in range(m) for x in cell[f"h_new_{k}"]["input"]):
        return None
    if any(len(set(v["input"])) != len(v["input"]) for v in cell.values()):
        return None
    try:
        return parse_recipe(cell)
    except InvalidArchitecture:
        return None


def sample(rng: np.random.Generator) -> Recipe:
    """A cell from the benchmark's generator (rejected draws are redrawn)."""
    chooser = RandomChooser(rng)
    for _ in range(MAX_TRIES):
        recipe = construct(chooser)
        if recipe is not None:
            return recipe
    raise TrainfreeError(f"no valid cell in {MAX_TRIES} draws")  # rejection rate is ~60%: unreachable


def decode(genes) -> Recipe:
    """The cell a gene vector encodes: the generator's first attempt reads the genes; rejected attempts
    continue on the generator the chooser falls back to, so every vector decodes to a valid cell."""
    chooser = GeneChooser(genes)
    for _ in range(MAX_TRIES):
        recipe = construct(chooser)
        if recipe is not None:
            return recipe
    raise TrainfreeError(f"no valid cell in {MAX_TRIES} draws")


def mutate(recipe: Recipe, rng: np.random.Generator) -> Recipe:
    """A valid cell one edit away: change an op, rewire an input, add or remove a node, or change the
    hidden-tuple size. Edits that break the rules are redrawn; the result always differs."""
    for _ in range(MAX_TRIES):
        kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
        child = _EDITS[kind](recipe.canonical().to_dict(), recipe.hidden_tuple_size, rng)
        if child is not None and child.arch_id != recipe.arch_id:
            return child
    raise TrainfreeError(f"no valid mutation of {recipe.arch_id} in {MAX_TRIES} tries")


def _inner(cell: dict) -> list[str]:
    return [k for k in cell if not k.startswith("h_new_")]


def _pool(cell: dict, m: int, node: str) -> list[str]:
    """Inputs a node may take under the generator's rules."""
    if cell[node]["op"] == "linear":
        return ["x"] + [f"h_prev_{k}" for k in range(m)] + [k for k, v in cell.items()
                                                             if v["op"] in ACTIVATIONS and k != node]
    return [f"h_prev_{k}" for k in range(m)] + [k for k in cell if k != node]


def _pick(items, rng):
    return items[int(rng.integers(len(items)))] if items else None


def _edit_op(cell, m, rng):
    alternatives = {**{a: [b for b in ACTIVATIONS if b != a] for a in ACTIVATIONS},
                    "elementwise_prod": ["elementwise_sum"], "elementwise_sum": ["elementwise_prod"]}
    name = _pick([k for k, v in cell.items() if v["op"] in alternatives], rng)
    if name is None:
        return None
    cell[name]["op"] = _pick(alternatives[cell[name]["op"]], rng)
    return _checked(cell, m)


def _edit_rewire(cell, m, rng):
    name = _pick([k for k, v in cell.items() if v["op"] not in ACTIVATIONS], rng)
    if name is None:
        return None
    inputs = cell[name]["input"]
    slot = int(rng.integers(len(inputs)))
    new = _pick([x for x in _pool(cell, m, name) if x not in inputs], rng)
    if new is None:
        return None
    inputs[slot] = new
    return _checked(cell, m)


def _edit_add(cell, m, rng):
    """Insert a linear + activation pair, or an elementwise node, on one input of a node."""
    name = _pick(list(cell), rng)
    inputs = cell[name]["input"]
    slot = int(rng.integers(len(inputs)))
    old = inputs[slot]
    fresh = len(cell)
    while f"node_{fresh}" in cell or f"node_{fresh + 1}" in cell:
        fresh += 1
    if rng.random() < 0.5:
        other = _pick([x for x in ["x"] + [f"h_prev_{k}" for k in range(m)] if x != old], rng)
        lin, act = f"node_{fresh}", f"node_{fresh + 1}"
        new_nodes = {lin: {"op": "linear", "input": [old, other]},
                     act: {"op": _pick(list(ACTIVATIONS), rng), "input": [lin]}}
        head = act
    else:
        op = _pick(["elementwise_prod", "elementwise_sum"], rng)
        other = _pick([f"h_prev_{k}" for k in range(m)] + [k for k in _inner(cell) if k != old], rng)
        head = f"node_{fresh}"
        new_nodes = {head: {"op": op, "input": [old, other]}}
    inputs[slot] = head
    out = dict(new_nodes)
    out.update(cell)  # new nodes first: they are created before the nodes that read them
    return _checked(out, m)


def _edit_remove(cell, m, rng):
    """Drop an intermediate node; whoever read it reads one of its inputs instead."""
    name = _pick(_inner(cell), rng)
    if name is None:
        return None
    replacement = _pick(cell[name]["input"], rng)
    body = {k: {"op": v["op"], "input": [replacement if x == name else x for x in v["input"]]}
            for k, v in cell.items() if k != name}
    return _checked(body, m)


def _edit_hidden(cell, m, rng):
    """Grow the hidden tuple (an intermediate node becomes h_new_m and some linear node reads h_prev_m)
    or shrink it (h_new_{m-1} becomes an ordinary node; reads of h_prev_{m-1} read h_prev_0)."""
    if m < max(HIDDEN_SIZES) and (m == 1 or rng.random() < 0.5):
        name = _pick(_inner(cell), rng)
        linears = [k for k, v in cell.items() if v["op"] == "linear"]
        if name is None or not linears:
            return None
        target = _pick(linears, rng)
        cell[target]["input"].append(f"h_prev_{m}")
        return _finish(cell, [f"h_new_{k}" for k in range(m)] + [name])
    if m == 1:
        return None
    last, prev = f"h_new_{m - 1}", f"h_prev_{m - 1}"
    free = len(cell)
    while f"node_{free}" in cell:
        free += 1
    body = {}
    for k, v in cell.items():
        inputs = [f"node_{free}" if x == last else ("h_prev_0" if x == prev else x) for x in v["input"]]
        body[f"node_{free}" if k == last else k] = {"op": v["op"], "input": inputs}
    return _checked(body, m - 1)


_EDITS = {"op": _edit_op, "rewire": _edit_rewire, "add": _edit_add, "remove": _edit_remove, "hidden": _edit_hidden}


def features(recipe: Recipe) -> frozenset:
    """Each node as (op, its inputs' ops or leaf names), counted, plus the hidden-tuple size: cells
    sharing more of these are closer (the distance is the size of the symmetric difference)."""
    ops = {n.name: n.op for n in recipe.nodes}
    seen: dict = {}
    for node in recipe.nodes:
        key = (node.op, tuple(sorted(ops.get(i, i) for i in node.inputs)))
        seen[key] = seen.get(key, 0) + 1
    return frozenset({("hidden", recipe.hidden_tuple_size)} | {(k, c) for k, n in seen.items() for c in range(n)})
