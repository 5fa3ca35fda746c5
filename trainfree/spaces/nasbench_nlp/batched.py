"""Layer 1 of many NAS-Bench-NLP cells in one pass: the incoming hidden states of B architectures.

Each architecture keeps its own seeded weights (slices of the shared stream, ``draws``), read straight
into stacked tensors: layer 1's weights and the embedding rows of the batch's distinct tokens, nothing
of layers 2-3 or the decoder. The cells are run in lock-step by *waves*: a node's wave is one more than
its deepest input's (``x`` and ``h_prev_i`` are wave 0). In each wave, every projection of a value of
the previous wave, across all architectures, is one ``bmm`` over the stacked 600 x 600 weight of each
(linear node, input) term, and the nodes of one kind are one operation over the stacked operands.

Every number is formed by the same float operations, in the same order, as ``RecipeRNN.forward``: a
term's projection is a column block of the per-architecture fused product (a column of a matrix
product does not depend on its neighbours), and a linear node adds its bias and terms in input
order. Two shortcuts are exact: step 0's projections of the zero state are zero, and the last step is
not run, since only the states each step *receives* are asked for.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from trainfree.spaces.nasbench_nlp.draws import UniformStream
from trainfree.spaces.nasbench_nlp.lm import LMSize
from trainfree.spaces.nasbench_nlp.recipe import Recipe

_ACT = {
    "activation_tanh": torch.tanh,
    "activation_sigm": torch.sigmoid,
}


def layer_widths(size: LMSize) -> list[int]:
    """Input width of layer 1, then each layer's hidden width (the last is emsize: the decoder is tied)."""
    return [size.emsize] + [size.nhid] * (size.nlayers - 1) + [size.emsize]


def _layer_params(recipe: Recipe, input_size: int, hidden: int) -> list[tuple[tuple, tuple[int, ...]]]:
    """(key, shape) of a RecipeRNN's parameters in ``parameters()`` order: per linear node in recipe order,
    its bias (key (name, "bias"), a direct parameter, listed first) then its weights (key (name, k))."""
    out = []
    for node in recipe.nodes:
        if node.op == "linear":
            out.append(((node.name, "bias"), (hidden,)))
            for k, inp in enumerate(node.inputs):
                out.append(((node.name, k), (hidden, input_size if inp == "x" else hidden)))
    return out


def layer_param_count(recipe: Recipe, size: LMSize) -> int:
    """Parameters of all the recurrent layers of ``recipe``'s model."""
    widths = layer_widths(size)
    return sum(math.prod(shape) for i in range(size.nlayers)
               for _, shape in _layer_params(recipe, widths[i], widths[i + 1]))


def stream_offsets(recipe: Recipe, size: LMSize, vocab: int) -> tuple[dict, int]:
    """Where ``RecipeLM.fill_from`` takes layer 1's parameters and the embedding from: ``({key: (offset,
    shape)}, embedding offset)``. Each layer's construction draws come first, then its kept re-draw."""
    widths = layer_widths(size)
    offset, first = 0, {}
    for i in range(size.nlayers):
        params = _layer_params(recipe, widths[i], widths[i + 1])
        count = sum(math.prod(shape) for _, shape in params)
        offset += count
        if i == 0:
            at = offset
            for key, shape in params:
                first[key] = (at, shape)
                at += math.prod(shape)
        offset += count
    offset += vocab * size.nhid + vocab + vocab * size.emsize  # the untied decoder, the embedding's first draw
    return first, offset


@dataclass
class _Group:
    """Nodes of one kind in one wave, across architectures; their outputs fill value slots [start, stop)."""
    op: str
    start: int
    stop: int
    inputs: list  # per input position: a slice or an index tensor into the parts (linear) or value buffer
    bias: torch.Tensor | None = None  # (G, 1, H) for linear nodes whose first term is not an x-term
    pairs: list = field(default_factory=list)  # (input slot, output slot) per member, for one-slab activations


@dataclass
class _Wave:
    sources: object  # value slots projected at this wave's start (slice or index tensor), or None
    parts: slice = field(default_factory=lambda: slice(0, 0))
    weights: slice = field(default_factory=lambda: slice(0, 0))
    from_state: bool = False  # the sources are all wave-0 states (zero at step 0)
    groups: list = field(default_factory=list)


def _take(index: list[int], device):
    """A slice when the slots are consecutive (no copy), else an index tensor."""
    if index and index == list(range(index[0], index[0] + len(index))):
        return slice(index[0], index[0] + len(index))
    return torch.tensor(index, dtype=torch.long, device=device)


def _gather(buf: torch.Tensor, where) -> torch.Tensor:
    return buf[where] if isinstance(where, slice) else buf.index_select(0, where)


class Layer1Batch:
    """The plan and weights for running layer 1 of ``recipes`` together on ``device``."""

    def __init__(self, recipes: Sequence[Recipe], size: LMSize, vocab: int, stream: UniformStream,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, exact: bool | None = None):
        """``exact`` (default: on CPU) runs tanh and sigmoid one architecture's slab at a time, which makes
        the states bit for bit the cell's; otherwise all of a wave's are one call (GPU kernels round an
        element the same wherever it lies, so there it costs nothing)."""
        self.size, self.vocab, self.device, self.dtype = size, vocab, torch.device(device), dtype
        self.exact = self.device.type == "cpu" if exact is None else exact
        self.hidden = layer_widths(size)[1]
        self.recipes = list(recipes)
        self._stream = stream
        self._plan()

    # -- planning ---------------------------------------------------------------------------------
    def _plan(self) -> None:
        dev = self.device
        state_slot: list[dict[int, int]] = []
        n_state = 0
        per_arch = []
        for recipe in self.recipes:
            live = recipe.live_nodes()
            order = [n for n in recipe.topological_order() if n.name in live]
            slots = {}
            for i in range(recipe.hidden_tuple_size):
                slots[i] = n_state
                n_state += 1
            state_slot.append(slots)
            level = {"x": 0, **{f"h_prev_{i}": 0 for i in range(recipe.hidden_tuple_size)}}
            for node in order:
                level[node.name] = 1 + max(level[i] for i in node.inputs)
            per_arch.append((order, level))
        self.n_state = n_state
        n_waves = max((max(lv.values()) for _, lv in per_arch), default=0)

        # terms: x-terms first (one per live linear node input reading x), then h-terms by wave
        x_terms, h_terms = [], []  # (arch, node name, k, source)
        for a, (order, level) in enumerate(per_arch):
            for node in order:
                if node.op == "linear":
                    for k, inp in enumerate(node.inputs):
                        (x_terms if inp == "x" else h_terms).append((a, node.name, k, inp))
        h_terms.sort(key=lambda t: per_arch[t[0]][1][t[3]])  # stable: by the wave that projects them
        self.n_x = len(x_terms)
        part_slot = {(a, n, k): j for j, (a, n, k, _) in enumerate(x_terms)}
        for j, (a, n, k, _) in enumerate(h_terms):
            part_slot[(a, n, k)] = self.n_x + j
        self.n_parts = self.n_x + len(h_terms)

        # value slots: states, then node outputs grouped by (wave, kind)
        groups: dict[tuple, list] = {}
        for a, (order, level) in enumerate(per_arch):
            biased = {n for (aa, n, k, _) in x_terms if aa == a and k == 0}
            for node in order:
                if node.op == "linear":
                    kind = ("linear", len(node.inputs), node.name in biased)
                else:
                    kind = (node.op,)
                groups.setdefault((level[node.name], kind), []).append((a, node))
        value_slot: list[dict[str, int]] = [{f"h_prev_{i}": s for i, s in slots.items()} for slots in state_slot]
        next_slot = n_state
        ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], repr(kv[0][1])))
        for (_, _), members in ordered:
            for a, node in members:
                value_slot[a][node.name] = next_slot
                next_slot += 1
        self.n_values = next_slot

        self.waves = [_Wave(None) for _ in range(n_waves + 1)]
        for w in range(1, n_waves + 1):
            idx = [j for j, t in enumerate(h_terms) if per_arch[t[0]][1][t[3]] == w - 1]
            wave = self.waves[w]
            if idx:
                wave.sources = _take([value_slot[h_terms[j][0]][h_terms[j][3]] for j in idx], dev)
                wave.parts = slice(self.n_x + idx[0], self.n_x + idx[-1] + 1)
                wave.weights = slice(idx[0], idx[-1] + 1)
                wave.from_state = w == 1
        linear_bias = []  # (group, [(arch, node name)]) filled after the weights are read
        for (w, kind), members in ordered:
            start = value_slot[members[0][0]][members[0][1].name]
            g = _Group(kind[0], start, start + len(members), [])
            arity = len(members[0][1].inputs)
            for pos in range(arity):
                if kind[0] == "linear":
                    g.inputs.append(_take([part_slot[(a, node.name, pos)] for a, node in members], dev))
                else:
                    g.inputs.append(_take([value_slot[a][node.inputs[pos]] for a, node in members], dev))
            if kind[0] == "linear" and not kind[2]:
                linear_bias.append((g, [(a, node.name) for a, node in members]))
            if kind[0] in _ACT and self.exact:
                g.pairs = [(value_slot[a][node.inputs[0]], value_slot[a][node.name]) for a, node in members]
            self.waves[w].groups.append(g)

        # the new state: h_new_i's slot, or the state itself where h_new_i is not live (never read again)
        new_state = [0] * n_state
        for a, slots in enumerate(state_slot):
            for i, s in slots.items():
                new_state[s] = value_slot[a].get(f"h_new_{i}", s)
        self.new_state = _take(new_state, dev)
        self.outputs = _take([value_slot[a]["h_new_0"] for a in range(len(self.recipes))], dev)
        self._read_weights(x_terms, h_terms, linear_bias)

    def _read_weights(self, x_terms, h_terms, linear_bias) -> None:
        """Layer 1's weights and the embedding rows, straight from the stream (CPU), then to the device."""
        H, E = self.hidden, self.size.emsize
        s = self._stream
        bound = 1.0 / math.sqrt(H)
        layouts = [stream_offsets(r, self.size, self.vocab) for r in self.recipes]

        def read(a, key, out=None):
            offset, shape = layouts[a][0][key]
            out = torch.empty(shape) if out is None else out
            s.fill_(out, offset, -bound, bound)
            return out

        def stacked(terms, width):  # filled in place: the largest cells' layer 1 is ~50 MB, not copied
            out = torch.empty(len(terms), H, width)
            for j, (a, n, k, _) in enumerate(terms):
                read(a, (n, k), out[j])
            return out

        self._wx = stacked(x_terms, E)
        self._x_bias = [(j, read(a, (n, "bias"))) for j, (a, n, k, _) in enumerate(x_terms) if k == 0]
        self.wh = stacked(h_terms, H).to(self.device, self.dtype)
        for g, members in linear_bias:
            g.bias = torch.stack([read(a, (n, "bias")) for a, n in members])[:, None, :].to(self.device, self.dtype)
        self._x_arch = [a for a, *_ in x_terms]
        self._emb_offsets = [layout[1] for layout in layouts]

    def _embeddings(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, U, E): each architecture's embedding rows of the distinct ``tokens``."""
        E = self.size.emsize
        out = torch.empty(len(self.recipes), len(tokens), E)
        within = tokens.long()[:, None] * E + torch.arange(E)
        for a, base in enumerate(self._emb_offsets):
            self._stream.fill_at_(out[a], within + base, -0.1, 0.1)
        return out

    # -- running ----------------------------------------------------------------------------------
    @torch.no_grad()
    def incoming_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, batch, H): per architecture, the h_prev_0 each of T steps receives for token ids (T, batch)
        (the zero state, then the outputs of steps 0..T-2), as ``_passes.incoming_hidden_states``."""
        dev, dt, H = self.device, self.dtype, self.hidden
        steps, batch = tokens.shape
        distinct, rows = torch.unique(tokens.cpu(), return_inverse=True)
        emb = self._embeddings(distinct)  # (B, U, E), CPU
        xu = torch.empty(self.n_x, len(distinct), H, device=dev, dtype=dt)
        if self.n_x:  # one product per term (once per pass, not per step): no stacked copy of the embeddings
            emb, wx = emb.to(dev, dt), self._wx.to(dev, dt)
            for j, a in enumerate(self._x_arch):
                torch.mm(emb[a], wx[j].t(), out=xu[j])
            for j, bias in self._x_bias:  # the step adds term 0's bias first: same sums for all steps
                xu[j] += bias.to(dev, dt)
            del wx
        del emb
        rows = rows.to(dev)
        wh_t = self.wh.transpose(1, 2)
        out = torch.zeros(len(self.recipes), steps, batch, H, device=dev, dtype=dt)  # each architecture's contiguous
        values = torch.zeros(self.n_values, batch, H, device=dev, dtype=dt)
        parts = torch.empty(self.n_parts, batch, H, device=dev, dtype=dt)
        for t in range(steps - 1):
            if self.n_x:
                torch.index_select(xu, 1, rows[t], out=parts[: self.n_x])
            for wave in self.waves[1:]:
                if wave.sources is not None:
                    if t == 0 and wave.from_state:
                        parts[wave.parts].zero_()
                    else:
                        torch.bmm(_gather(values, wave.sources), wh_t[wave.weights], out=parts[wave.parts])
                for g in wave.groups:
                    self._run(g, values, parts)
            out[:, t + 1].copy_(_gather(values, self.outputs))
            values[: self.n_state] = _gather(values, self.new_state)
        return out

    @staticmethod
    def _run(g: _Group, values: torch.Tensor, parts: torch.Tensor) -> None:
        dest = values[g.start: g.stop]
        if g.op == "linear":
            first = g.inputs[0]
            if isinstance(first, slice):
                dest.copy_(parts[first])
            else:
                torch.index_select(parts, 0, first, out=dest)
            if g.bias is not None:
                dest.add_(g.bias)
            for more in g.inputs[1:]:
                dest.add_(_gather(parts, more))
            return
        if g.pairs:  # one slab at a time, as the cell: torch's CPU kernels round a tensor's last elements
            for i, o in g.pairs:  # (those past its last whole vector pair) with the scalar function
                _ACT[g.op](values[i], out=values[o])
            return
        args = [_gather(values, where) for where in g.inputs]
        if g.op in _ACT:
            _ACT[g.op](args[0], out=dest)
        elif g.op == "activation_leaky_relu":
            dest.copy_(F.leaky_relu(args[0], 0.01))
        elif g.op == "elementwise_prod":
            torch.mul(args[0], args[1], out=dest)
        elif g.op == "elementwise_sum":
            torch.add(args[0], args[1], out=dest)
        else:  # blend(z, a, b) = z*a + (1-z)*b, as the cell evaluates it
            z, a, b = args
            torch.add(z * a, (1 - z) * b, out=dest)
