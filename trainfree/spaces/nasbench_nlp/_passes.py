"""Forward/backward passes of the NAS-Bench-NLP model that several metrics share (the space's
``recurrent_cell`` artefact: ``NASBenchNLPSpace.ones_pass`` and the rest call these).

Each pass runs once per probe and is cached. Gradients come from ``torch.autograd.grad`` with
explicit inputs, so no ``.grad`` is left on the probe's model; a weight the output does not use (a
dead node's) gets a zero gradient, as it would in the paper's backward.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainfree.probe import Probe
from trainfree.linalg import binary_code_kernel


def layer_outputs(probe: Probe, layer: int, kernel: bool = False) -> torch.Tensor:
    """Clean no-grad outputs (T, B, H) of recurrent ``layer`` (1-based), computing only layers 1..layer.

    Layers already computed are reused. With ``kernel`` the pass also accumulates the layer's
    binary-code kernel of its activation outputs (for activation distance) under
    ``("activation_kernel", layer)``; a layer computed earlier without it is run again.
    """
    key = ("layer_output", layer)
    if probe.has(key) and (not kernel or probe.has(("activation_kernel", layer))):
        return probe.get(key)
    model = probe.model
    codes: list[torch.Tensor] = []
    hook = (lambda _name, act: codes.append(act > 0)) if kernel else None

    with torch.no_grad():
        if layer == 1:  # embed and project each distinct token once
            tokens, rows = torch.unique(probe.inputs, return_inverse=True)
            out = model.layers[0](model.encoder(tokens), activation_hook=hook, rows=rows)
        else:
            out = model.layers[layer - 1](layer_outputs(probe, layer - 1, kernel), activation_hook=hook)
        if kernel:
            probe.put(("activation_kernel", layer), binary_code_kernel(torch.cat(codes, dim=1)))
    probe.put(key, out)
    return out


def activation_kernel(probe: Probe) -> torch.Tensor:
    """The binary-code kernel of every activation node, step and layer of one clean pass (B x B)."""
    layers = len(probe.model.layers)
    layer_outputs(probe, layers, kernel=True)
    return sum(probe.get(("activation_kernel", i)) for i in range(1, layers + 1))


def incoming_hidden_states(probe: Probe, layer: int) -> torch.Tensor:
    """h_{t-1} as each step of ``layer`` received it: the zero h_0, then outputs 1..T-1. (T, B, H)"""
    out = layer_outputs(probe, layer)
    return torch.cat([torch.zeros_like(out[:1]), out[:-1]], dim=0)


def saliency_params(model) -> list[torch.nn.Parameter]:
    """The weights the paper's synaptic saliency sums over: every linear node's W_i with i >= 1
    (its first weight and every bias skipped) and the tied embedding/decoder matrix."""
    params = [w for layer in model.layers for comp in layer.components.values() for w in list(comp.weights)[1:]]
    return params + [model.encoder.weight]


def abs_product_sum(params, grads) -> float:
    """sum |theta * g| in float64."""
    return float(sum((p.detach().double() * g.double()).abs().sum() for p, g in zip(params, grads)))


@dataclass
class OnesPass:
    """P1 of the paper: clean forward, backward of S = sum(y) (cotangent ones)."""

    jacobian: torch.Tensor  # dS/d(embedding output), (T, B, E)
    saliency: float  # sum |theta * dS/dtheta| over saliency_params
    hidden_saliency: float  # sum over incoming hidden states of sum |h * dS/dh|


def ones_pass(probe: Probe) -> OnesPass:
    def compute() -> OnesPass:
        model = probe.model
        states: list[torch.Tensor] = []

        def keep(_layer: int, t: int, h: torch.Tensor) -> None:
            if t > 0:  # the zero h_0 contributes |0 * g| = 0
                states.append(h)

        with torch.enable_grad():
            emb = model.encoder(probe.inputs)
            y = model.layer_outputs(None, embedded=emb, state_hook=keep)[-1]
            params = saliency_params(model)
            grads = torch.autograd.grad(y.sum(), [emb, *params, *states], materialize_grads=True)
        g_emb, g_params, g_states = grads[0], grads[1:1 + len(params)], grads[1 + len(params):]
        hidden = float(sum((h.detach().double() * g.double()).abs().sum() for h, g in zip(states, g_states)))
        return OnesPass(g_emb.detach(), abs_product_sum(params, g_params), hidden)

    return probe.cached("ones_pass", compute)


def half_norm_saliency(probe: Probe) -> float:
    """P6 of the paper: sum |theta * dR/dtheta| with R = 1/2 ||y||^2 (the notebook's synaptic saliency)."""
    def compute() -> float:
        model = probe.model
        with torch.enable_grad():
            y = model(probe.inputs)
            params = saliency_params(model)
            grads = torch.autograd.grad(0.5 * y.pow(2).sum(), params, materialize_grads=True)
        return abs_product_sum(params, grads)

    return probe.cached("half_norm_saliency", compute)


def noise_draw(probe: Probe) -> torch.Tensor:
    """The single N(0, 1) draw shared by every amplitude: numpy's legacy stream under the seed, as the paper."""
    def compute() -> torch.Tensor:
        t, b = probe.inputs.shape
        e = probe.model.encoder.embedding_dim
        eps = np.random.RandomState(probe.settings.seed).standard_normal((t, b, e))
        return torch.as_tensor(eps, dtype=probe.model.encoder.weight.dtype, device=probe.device)

    return probe.cached("noise_draw", compute)


def noisy_jacobian(probe: Probe, amplitude: float) -> torch.Tensor:
    """dS/de~ for the noisy embedding e~ = e + a * Var_batch(e) * eps, fed past the lookup."""
    def compute() -> torch.Tensor:
        model = probe.model
        with torch.no_grad():
            emb = model.encoder(probe.inputs)
            noisy = emb + amplitude * emb.var(dim=1, keepdim=True, correction=0) * noise_draw(probe)
        with torch.enable_grad():
            noisy.requires_grad_(True)
            y = model.layer_outputs(None, embedded=noisy)[-1]
            (grad,) = torch.autograd.grad(y.sum(), [noisy], materialize_grads=True)
        return grad.detach()

    return probe.cached(("noisy_jacobian", amplitude), compute)


def activation_codes(probe: Probe) -> list[torch.Tensor]:
    """(B, H) codes of every activation node's output at every step and layer of one clean pass: a > 0
    for tanh and leaky ReLU, a > 1/2 for the sigmoid, i.e. the pre-activation's sign for all three
    (a sigmoid's output is always positive, so a > 0 would give every sigmoid unit the all-ones code)."""
    model, codes = probe.model, []
    with torch.no_grad():
        h = model.encoder(probe.inputs)
        for layer in model.layers:
            mid = {n.name: 0.5 if n.op == "activation_sigm" else 0.0 for n in layer.recipe.nodes}
            h = layer(h, activation_hook=lambda name, a, mid=mid: codes.append(a > mid[name]))
    return codes
