"""The forward-mode derivative of a recipe layer's states with respect to its step-0 input, by hand.

torch's forward-mode autodiff costs about four plain products per product (torch 2.13); here the
state and its tangent go through each linear term as one product of twice the rows, and each other
node's derivative is written out. Only live nodes are run (the layer's outputs are the same).
"""
from __future__ import annotations

import numpy as np
import torch


def _act_slope(op: str, pre: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    if op == "activation_tanh":
        return 1 - out * out
    if op == "activation_sigm":
        return out * (1 - out)
    return torch.where(pre > 0, 1.0, 0.01).to(pre.dtype)  # torch's leaky ReLU: slope 1 above 0, 0.01 at and below


def _add(*terms):
    """Sum of the tangents that are not None (None: the value does not depend on the perturbation)."""
    live = [t for t in terms if t is not None]
    if not live:
        return None
    out = live[0]
    for t in live[1:]:
        out = out + t
    return out


def _mul(a, b):
    return None if a is None or b is None else a * b


def step0_tangent_log_norms(cell, inputs: torch.Tensor, direction: torch.Tensor,
                            rows: torch.Tensor | None = None) -> tuple[np.ndarray, float]:
    """log ||(dh_t / dx_0) direction|| for every step t and sequence b: (T, B), float64; and the log of
    h_0's smallest share of the tuple's tangent norm over the steps (``-inf`` when it is 0 somewhere).

    ``inputs`` (T, B, D) is the layer's clean input, ``direction`` (B, D) the perturbation of step 0's
    input; with ``rows`` (T, B), ``inputs`` (U, D) are the distinct input vectors, as in the layer's
    forward. After each step the tangent of the hidden tuple is divided by its norm (per sequence) and the
    log of that norm is carried in float64, so a contracting cell's tangent never underflows whatever the
    dtype, as long as h_0 carries a fair share of the tangent: where h_0's part is far smaller than the
    tuple's (another state keeps the norm up), it can still fall below the dtype's range, which the
    share tells the caller. -inf where the perturbation has not reached the state (or has died out);
    NaN where it is not finite.
    """
    steps, batch = inputs.shape[:2] if rows is None else rows.shape
    hidden_size = cell.hidden_size
    fused = {value: entries[0] for value, entries in cell.fused_weights().items()}  # live nodes: one each
    x_terms = [fused.pop("x")] if "x" in fused else []
    x_parts, biased = cell.input_parts(inputs, rows, x_terms)
    x_tangent = {}
    for terms, weight in x_terms:  # the perturbation enters at step 0 only
        x_tangent.update(zip(terms, (direction @ weight).split(hidden_size, dim=-1)))

    def project(name, value, tangent, parts, tangents):
        if name not in fused:
            return
        terms, weight = fused[name]
        if tangent is None:
            parts.update(zip(terms, (value @ weight).split(hidden_size, dim=-1)))
            return
        both = torch.cat([value, tangent]) @ weight
        parts.update(zip(terms, both[:batch].split(hidden_size, dim=-1)))
        tangents.update(zip(terms, both[batch:].split(hidden_size, dim=-1)))

    hidden = [inputs.new_zeros(batch, hidden_size) for _ in range(cell.tuple_size)]
    tangent = [None] * cell.tuple_size
    log_scale = torch.zeros(batch, dtype=torch.float64, device=inputs.device)
    logs = torch.full((steps, batch), -torch.inf, dtype=torch.float64, device=inputs.device)
    share = torch.zeros(batch, dtype=torch.float64, device=inputs.device)  # log of h_0's smallest share
    for t in range(steps):
        values = {f"h_prev_{i}": h for i, h in enumerate(hidden)}
        tangents = {f"h_prev_{i}": g for i, g in enumerate(tangent)}
        parts = {term: part[t] for term, part in x_parts.items()}
        part_tangents = dict(x_tangent) if t == 0 else {}
        for name in list(values):
            project(name, values[name], tangents[name], parts, part_tangents)
        for node in cell._live_order:
            ins = node.inputs
            if node.op == "linear":
                out = parts[(node.name, 0)]
                if node.name not in biased:
                    out = out + cell.components[node.name].bias
                for k in range(1, len(ins)):
                    out = out + parts[(node.name, k)]
                d = _add(*(part_tangents.get((node.name, k)) for k in range(len(ins))))
            elif node.op in cell.activations:
                pre = values[ins[0]]
                out = cell.activations[node.op](pre)
                d = None if tangents[ins[0]] is None else _act_slope(node.op, pre, out) * tangents[ins[0]]
            elif node.op == "elementwise_prod":
                (a, b), (da, db) = (values[i] for i in ins), (tangents[i] for i in ins)
                out = a * b
                d = _add(_mul(da, b), _mul(a, db))
            elif node.op == "elementwise_sum":
                out = values[ins[0]] + values[ins[1]]
                d = _add(tangents[ins[0]], tangents[ins[1]])
            else:  # blend(z, a, b) = z*a + (1-z)*b
                (z, a, b), (dz, da, db) = (values[i] for i in ins), (tangents[i] for i in ins)
                out = z * a + (1 - z) * b
                d = _add(_mul(dz, a - b), _mul(z, da), _mul(1 - z, db))
            values[node.name], tangents[node.name] = out, d
            project(node.name, out, d, parts, part_tangents)
        for i in range(cell.tuple_size):
            if f"h_new_{i}" in values:
                hidden[i], tangent[i] = values[f"h_new_{i}"], tangents[f"h_new_{i}"]
        norms = [g.double().pow(2).sum(dim=1) for g in tangent if g is not None]
        if norms:
            norm = sum(norms).sqrt()
            if tangent[0] is not None:
                own = tangent[0].norm(dim=1).double()
                logs[t] = own.log() + log_scale
                share = torch.where(norm > 0, torch.minimum(share, (own / norm).log()), share)
            norm = torch.where((norm > 0) & torch.isfinite(norm), norm, 1.0)
            log_scale = log_scale + norm.log()
            tangent = [None if g is None else g / norm.to(g.dtype)[:, None] for g in tangent]
    return logs.cpu().numpy(), float(share.min())
