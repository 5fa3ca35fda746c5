"""Classic zero-cost proxies from vision NAS, adapted to language models.

The loss L is the mean next-token cross-entropy of the tied decoder's logits on the probe's batch
(inputs rows t, targets rows t + 1). Sums run over every parameter tensor of the model (the tied
embedding/decoder matrix once) unless a docstring says otherwise.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trainfree.metrics.base import Probe, metric

SPACES = ("nasbench-nlp",)
NEEDS = {"forward", "gradients", "labels"}


def _loss(model, inputs: torch.Tensor, targets: torch.Tensor, activation_hook=None) -> torch.Tensor:
    states = model.layer_outputs(inputs, activation_hook=activation_hook)[-1]
    logits = model.logits(states)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def loss_gradients(probe: Probe) -> list[torch.Tensor]:
    """dL/dtheta for every parameter of the probe's model, computed once."""
    def compute():
        model = probe.model
        params = list(model.parameters())
        with torch.enable_grad():
            grads = torch.autograd.grad(_loss(model, probe.inputs, probe.targets), params, materialize_grads=True)
        return [g.detach() for g in grads]

    return probe.cached("loss_gradients", compute)


@metric("grad_norm", higher_is_better=True, needs=NEEDS, spaces=SPACES)
def grad_norm(probe: Probe) -> float:
    """sum over parameter tensors of ||dL/dtheta||_2 (Abdelfattah et al., ICLR 2021)."""
    return float(sum(g.double().norm() for g in loss_gradients(probe)))


@metric("snip", higher_is_better=True, needs=NEEDS, spaces=SPACES)
def snip(probe: Probe) -> float:
    """sum |theta * dL/dtheta|, connection sensitivity (Lee et al., ICLR 2019)."""
    params = list(probe.model.parameters())
    return float(sum((p.detach().double() * g.double()).abs().sum() for p, g in zip(params, loss_gradients(probe))))


@metric("grasp", higher_is_better=True, needs=NEEDS, spaces=SPACES)
def grasp(probe: Probe) -> float:
    """sum -theta * (H g), H the Hessian of L and g = dL/dtheta (Wang et al., ICLR 2020)."""
    model = probe.model
    params = list(model.parameters())
    grads = loss_gradients(probe)
    with torch.enable_grad():
        graph_grads = torch.autograd.grad(_loss(model, probe.inputs, probe.targets), params, create_graph=True,
                                          materialize_grads=True)
        z = sum((gg * g).sum() for gg, g in zip(graph_grads, grads))
        hg = torch.autograd.grad(z, params, materialize_grads=True)
    return float(sum((-p.detach().double() * h.double()).sum() for p, h in zip(params, hg)))


@metric("fisher", higher_is_better=True, needs=NEEDS | {"activations"}, spaces=SPACES)
def fisher(probe: Probe) -> float:
    """sum over activation nodes and units of 1/2 mean_b (sum_t a * dL/da)^2 (Turner et al., ICLR 2020).

    A unit of an activation node is a channel; its time steps play the role of spatial positions.
    """
    model = probe.model
    acts: dict[str, list[torch.Tensor]] = {}  # "layer:node" -> its output at every step
    with torch.enable_grad():
        h = model.encoder(probe.inputs)
        for i, layer in enumerate(model.layers):
            h = layer(h, activation_hook=lambda name, a, i=i: acts.setdefault(f"{i}:{name}", []).append(a))
        logits = model.logits(h)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), probe.targets.reshape(-1))
        grads = torch.autograd.grad(loss, [a for seq in acts.values() for a in seq], materialize_grads=True)
    total, k = 0.0, 0
    for seq in acts.values():
        a = torch.stack([x.detach() for x in seq]).double()  # (T, B, H)
        g = torch.stack(grads[k:k + len(seq)]).double()
        k += len(seq)
        total += float(0.5 * (a * g).sum(dim=0).pow(2).mean(dim=0).sum())
    return total


@metric("synflow", higher_is_better=True, needs={"forward", "gradients"}, spaces=SPACES)
def synflow(probe: Probe) -> float:
    """log of sum theta * dR/dtheta with theta -> |theta|, an all-ones embedded input and R = sum of logits
    (Tanaka et al., NeurIPS 2020), in float64 on a copy of the model.

    Reported as a natural log because the raw sum overflows float32 on deep cells; the ranking is unchanged.
    """
    model = probe.fresh_model().double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    params = list(model.parameters())
    ones = torch.ones(probe.inputs.shape[0], 1, model.encoder.embedding_dim, dtype=torch.float64, device=probe.device)
    with torch.enable_grad():
        r = model.logits(model.layer_outputs(None, embedded=ones)[-1]).sum()
        grads = torch.autograd.grad(r, params, materialize_grads=True)
    total = sum((p.detach() * g).sum() for p, g in zip(params, grads))
    total = float(total)
    return math.log(total) if total > 0 else (-math.inf if total == 0 else math.nan)


ZICO_SPLITS = 2


@metric("zico", higher_is_better=True, needs=NEEDS, spaces=SPACES)
def zico(probe: Probe) -> float:
    """sum over parameter tensors of log(sum over entries of mean|g| / std(g)), g the loss gradient on each
    of 2 disjoint halves of the batch (Li et al., ICLR 2023); entries with zero std are skipped."""
    model = probe.model
    params = list(model.parameters())
    per_split = []
    for cols in torch.chunk(torch.arange(probe.inputs.shape[1], device=probe.device), ZICO_SPLITS):
        with torch.enable_grad():
            grads = torch.autograd.grad(_loss(model, probe.inputs[:, cols], probe.targets[:, cols]), params,
                                        materialize_grads=True)
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
