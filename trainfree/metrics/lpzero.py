"""LPZero's two published searched proxies (Dong et al., EMNLP Findings 2024, github.com/pprp/LPZero),
as fixed expressions.

LPZero searches expressions ``binary(u2(u1(A1)), u2'(u1'(A2)))`` over two per-layer inputs (weights,
gradients, activations, ...); a proxy's score is the mean over layers of the mean over the elements
of the per-layer result. These are the two genotypes its code ships (docs/metrics.md says which
commit and why): they were searched on the benchmarks they were reported on, so their published
correlations are in-sample.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from trainfree.metrics.base import metric
from trainfree.probe import Probe
from trainfree.metrics.proxies import loss_gradients
from trainfree.metrics.transformer import forward_stats


def conv1d_layout(module: nn.Module, tensor: torch.Tensor) -> torch.Tensor:
    """A projection's weight-shaped tensor as GPT-2's Conv1D stores it, (in, out): LPZero's GPT-2 models
    hold Conv1D weights, so its softmax over dim 0 runs over each output unit's inputs."""
    return tensor if type(module).__name__ == "Conv1D" else tensor.t()


def projections(model: nn.Module) -> list[nn.Module]:
    """Every nn.Linear and transformers Conv1D of the model with a 2-D weight, in module order."""
    return [m for m in model.modules()
            if (isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D") and getattr(m, "weight", None) is not None
            and m.weight.dim() == 2]


@metric("lpzero_gpt2", higher_is_better=False, requires={"parameters", "lm_loss", "transformer_parts"},
        backward=True)
def lpzero_gpt2(probe: Probe) -> float:
    """LPZero's GPT-2 proxy (input_geno weight, grad; op_geno [[3, 10], [11, 3], 0]): the mean over every
    Linear / Conv1D projection of mean(W^2) + mean(softmax(G, dim 0)^2), W its weight and G the
    gradient of the LM loss on the probe's batch, both in Conv1D (in, out) layout. Lower is better."""
    params = list(probe.model.parameters())
    grads = {id(p): g for p, g in zip(params, loss_gradients(probe))}
    terms = []
    for m in projections(probe.model):
        w = conv1d_layout(m, m.weight.detach().double())
        g = conv1d_layout(m, grads[id(m.weight)].double())
        terms.append(float(w.pow(2).mean() + torch.softmax(g, dim=0).pow(2).mean()))
    return sum(terms) / len(terms) if terms else math.nan


@metric("lpzero_bert", higher_is_better=True, requires={"encoder_ops"})
def lpzero_bert(probe: Probe) -> float:
    """LPZero's FlexiBERT proxy (input_geno head, act; op_geno [[15, 3], [8, 13], 0]): the mean over layers
    of mean(H^2), H the output of the layer's first token-mixing projection (the query, or the LT map)
    in one seeded forward. The act branch, logsoftmax of a scalar norm, is identically 0."""
    terms = forward_stats(probe).first_projection_sq
    return sum(terms) / len(terms) if terms else math.nan
