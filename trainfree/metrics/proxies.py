"""Classic zero-cost proxies from vision NAS, adapted to language models.

Each model states its own loss through the proxy protocol: ``proxy_loss(inputs, targets,
activation_hook=None)``, ``batch_dim`` and ``synflow_output(inputs)``. NAS-Bench-NLP cells use the
mean next-token cross-entropy of the tied decoder; NAS-Bench-BERT encoders a masked-token
cross-entropy through a parameter-free head (the probe's targets are the masked-LM labels). Every
pass runs under the seed, so dropout masks (BERT trains with dropout on) repeat across passes.
Sums run over every parameter tensor of the model (a tied matrix once) unless a docstring says otherwise.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from trainfree.metrics.base import metric
from trainfree.probe import Probe

REQUIRES = {"parameters", "lm_loss"}


@contextmanager
def _seeded(probe: Probe):
    with torch.random.fork_rng(devices=[probe.device] if probe.device.type == "cuda" else []):
        torch.manual_seed(probe.settings.seed)
        yield


def _loss(probe: Probe, model, inputs=None, targets=None, activation_hook=None) -> torch.Tensor:
    inputs = probe.inputs if inputs is None else inputs
    targets = probe.targets if targets is None else targets
    with _seeded(probe):
        return model.proxy_loss(inputs, targets, activation_hook=activation_hook)


def loss_gradients(probe: Probe) -> list[torch.Tensor]:
    """dL/dtheta for every parameter of the probe's model, computed once."""
    def compute():
        model = probe.model
        params = list(model.parameters())
        with torch.enable_grad():
            grads = torch.autograd.grad(_loss(probe, model), params, materialize_grads=True)
        return [g.detach() for g in grads]

    return probe.cached("loss_gradients", compute)


@metric("grad_norm", higher_is_better=True, requires=REQUIRES, backward=True)
def grad_norm(probe: Probe) -> float:
    """sum over parameter tensors of ||dL/dtheta||_2 (Abdelfattah et al., ICLR 2021)."""
    return float(sum(g.double().norm() for g in loss_gradients(probe)))


@metric("snip", higher_is_better=True, requires=REQUIRES, backward=True)
def snip(probe: Probe) -> float:
    """sum |theta * dL/dtheta|, connection sensitivity (Lee et al., ICLR 2019)."""
    params = list(probe.model.parameters())
    return float(sum((p.detach().double() * g.double()).abs().sum() for p, g in zip(params, loss_gradients(probe))))


@metric("grasp", higher_is_better=True, requires=REQUIRES, backward=True)
def grasp(probe: Probe) -> float:
    """sum -theta * (H g), H the Hessian of L and g = dL/dtheta (Wang et al., ICLR 2020)."""
    model = probe.model
    params = list(model.parameters())
    grads = loss_gradients(probe)
    with torch.enable_grad():
        graph_grads = torch.autograd.grad(_loss(probe, model), params, create_graph=True,
                                          materialize_grads=True)
        z = sum((gg * g).sum() for gg, g in zip(graph_grads, grads))
        hg = torch.autograd.grad(z, params, materialize_grads=True)
    return float(sum((-p.detach().double() * h.double()).sum() for p, h in zip(params, hg)))


@metric("fisher", higher_is_better=True, requires=REQUIRES, backward=True)
def fisher(probe: Probe) -> float:
    """sum over activation nodes and units of 1/2 mean_b (sum_positions a * dL/da)^2 (Turner et al., ICLR 2020).

    A unit is a channel and positions play the role of spatial positions: a recurrent node's time
    steps, an encoder FFN activation's tokens.
    """
    model = probe.model
    acts: dict[str, list[torch.Tensor]] = {}  # node -> its outputs (one per step, or one (B, T, F))
    with torch.enable_grad():
        loss = _loss(probe, model, activation_hook=lambda key, a: acts.setdefault(key, []).append(a))
        grads = torch.autograd.grad(loss, [a for seq in acts.values() for a in seq], materialize_grads=True)
    total, k = 0.0, 0
    for seq in acts.values():
        per_sample = 0.0
        for a in seq:  # (B, ..., F): sum every axis but the first and last
            prod = a.detach().double() * grads[k].double()
            k += 1
            per_sample = per_sample + (prod.reshape(prod.shape[0], -1, prod.shape[-1]).sum(dim=1))
        total += float(0.5 * per_sample.pow(2).mean(dim=0).sum())
    return total


@metric("synflow", higher_is_better=True, requires={"parameters", "synflow_output"}, backward=True,
        version="2")
def synflow(probe: Probe) -> float:
    """symlog of S = sum theta * dR/dtheta with theta -> |theta|, an all-ones input after the embedding and
    R = sum of the logits (Tanaka et al., NeurIPS 2020), in float64 on a copy of the model.

    Reported as sign(S) log(1 + |S|): S overflows float32 on deep cells, and LayerNorm (BERT) breaks
    synflow's positivity, so S can be negative; the transform is monotone, so the ranking is S's.
    """
    model = probe.fresh_model().double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    params = list(model.parameters())
    with torch.enable_grad(), _seeded(probe):
        r = model.synflow_output(probe.inputs).sum()
        grads = torch.autograd.grad(r, params, materialize_grads=True)
    total = float(sum((p.detach() * g).sum() for p, g in zip(params, grads)))
    return math.copysign(math.log1p(abs(total)), total) if math.isfinite(total) else total


ZICO_SPLITS = 2


@metric("zico", higher_is_better=True, requires=REQUIRES, backward=True)
def zico(probe: Probe) -> float:
    """sum over parameter tensors of log(sum over entries of mean|g| / std(g)), g the loss gradient on each
    of 2 disjoint halves of the batch (Li et al., ICLR 2023); entries with zero std are skipped."""
    model = probe.model
    params = list(model.parameters())
    per_split = []
    axis = model.batch_dim
    for rows in torch.chunk(torch.arange(probe.inputs.shape[axis], device=probe.device), ZICO_SPLITS):
        inputs, targets = probe.inputs.index_select(axis, rows), probe.targets.index_select(axis, rows)
        with torch.enable_grad():
            grads = torch.autograd.grad(_loss(probe, model, inputs, targets), params, materialize_grads=True)
        per_split.append([g.detach().double() for g in grads])
    total = 0.0
    for gs in zip(*per_split):
        g = torch.stack(gs)
        std, mean_abs = g.std(dim=0, correction=0), g.abs().mean(dim=0)
        keep = std > 0
        if bool(keep.any()):
            s = float((mean_abs[keep] / std[keep]).sum())
            if s > 0:
                total += math.log(s)
    return total
