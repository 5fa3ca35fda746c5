"""epsinas (Gracheva, 2023, arXiv 2302.04406): two forwards with every weight set to one shared constant.

Her NAS-Bench-NLP code (repository egracheva/epsinas) sets every recurrent parameter (weights and
biases) to a constant w, draws the embedding table U(0, 1) under a seed, runs the model, and keeps
unit 0 of the last layer's outputs at every step of every sequence. Each of the two outputs (w1, w2)
is min-max normalised; zeros are dropped (NaN); the score is the mean |y1 - y2| over the mean of both.
With constant weights every unit of a layer computes the same value, so unit 0 stands for all.

Differences: her model starts the hidden state at w, trainfree's cells at zero (the cell has no
initial-state input); the embedding draw is torch.rand under the settings' seed, not her seed 21.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from trainfree.metrics.base import metric
from trainfree.probe import Probe

#: the two shared weights: the pair of her repository's NAS-Bench-NLP embedding ablation (1e-5_1e-4)
WEIGHTS = (1e-5, 1e-4)


def constant_outputs(probe: Probe, weights=WEIGHTS) -> list[np.ndarray]:
    """Unit 0 of the last layer's outputs, (T * B,) float64, for each shared constant weight.

    With every weight and bias equal to w, all units of a layer carry one value, so a linear term
    w * sum_j v_j over an n-wide input whose units all equal u is w * n * u. Each layer is therefore run
    as a one-unit copy of its cell whose weights are w times the input's width (for x, the embedding's
    sum over dimensions stands in for n * u): the same numbers as the full model, at a tiny cost.
    """
    from trainfree.spaces.nasbench_nlp.cell import RecipeRNN

    model = probe.model
    gen = torch.Generator().manual_seed(probe.settings.seed)
    table = torch.rand(model.encoder.weight.shape, generator=gen, dtype=torch.float64)
    outs = []
    with torch.no_grad():
        for w in weights:
            h = table[probe.inputs.cpu()].sum(dim=-1, keepdim=True)  # (T, B, 1): n * u for layer 1
            for layer in model.layers:
                cell = RecipeRNN(layer.recipe, 1, 1, init=False).to(torch.float64)
                for node in layer.recipe.nodes:
                    if node.op == "linear":
                        comp = cell.components[node.name]
                        for k, inp in enumerate(node.inputs):
                            comp.weights[k].fill_(w * (1 if inp == "x" else layer.hidden_size))
                        comp.bias.fill_(w)
                h = cell(h) * layer.hidden_size  # the next layer's x term: n * u over this layer's units
            outs.append((h[:, :, 0] / model.layers[-1].hidden_size).reshape(-1).numpy().copy())
    return outs


def epsinas_score(outputs: list[np.ndarray]) -> float:
    """mean |n1 - n2| / mean(n1, n2) over the min-max normalised outputs n, zeros and infinities dropped."""
    preds = []
    for y in outputs:
        y = np.where(np.isinf(y), np.nan, y)
        with np.errstate(invalid="ignore", divide="ignore"):
            preds.append((y - np.nanmin(y)) / (np.nanmax(y) - np.nanmin(y)))
    preds = np.array(preds)
    preds[preds == 0] = np.nan
    with warnings.catch_warnings():  # an all-NaN output (a constant one) warns; its NaN is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        mae = np.nanmean(np.abs(preds[0] - preds[1]))
        mean = np.nanmean(preds)
    return float(mae / mean) if mean != 0 else math.nan


@metric("epsinas", higher_is_better=True, requires={"recurrent_cell"})
def epsinas(probe: Probe) -> float:
    """epsinas (Gracheva 2023): normalised mean absolute difference of the last layer's unit-0 outputs
    between two forwards with every recurrent weight set to 1e-5 and to 1e-4 (embedding U(0, 1))."""
    return epsinas_score(constant_outputs(probe))
