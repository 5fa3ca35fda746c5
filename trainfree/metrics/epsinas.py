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

import copy
import math
import warnings

import numpy as np
import torch

from trainfree.metrics.base import Probe, metric

#: the two shared weights: the pair of her repository's NAS-Bench-NLP embedding ablation (1e-5_1e-4)
WEIGHTS = (1e-5, 1e-4)


def constant_outputs(probe: Probe, weights=WEIGHTS) -> list[np.ndarray]:
    """Unit 0 of the last layer's outputs, (T * B,) float64, for each shared constant weight."""
    model = probe.model
    gen = torch.Generator().manual_seed(probe.settings.seed)
    table = torch.rand(model.encoder.weight.shape, generator=gen, dtype=torch.float64)
    layers = copy.deepcopy(model.layers).to(device="cpu", dtype=torch.float64)
    outs = []
    with torch.no_grad():
        for w in weights:
            for p in layers.parameters():
                p.fill_(w)
            h = table[probe.inputs.cpu()]
            for layer in layers:
                h = layer(h)
            outs.append(h[:, :, 0].reshape(-1).numpy().copy())
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


@metric("epsinas", higher_is_better=True, needs={"forward", "weights"}, requires={"recurrent_cell"})
def epsinas(probe: Probe) -> float:
    """epsinas (Gracheva 2023): normalised mean absolute difference of the last layer's unit-0 outputs
    between two forwards with every recurrent weight set to 1e-5 and to 1e-4 (embedding U(0, 1))."""
    return epsinas_score(constant_outputs(probe))
