"""Measured cost: what a multi-objective search trades a metric against, besides ``params``."""
from __future__ import annotations

import statistics
import time

import torch

from trainfree.metrics.base import metric
from trainfree.probe import Probe

REPEATS = 5


@metric("latency", higher_is_better=False, requires={"forward"},
        deterministic=False)
def latency(probe: Probe) -> float:
    """Median seconds of 5 inference forwards (eval mode, no gradients) of the probe's batch on its device,
    after one warm-up; a measurement, so it varies run to run and with the machine's load."""
    model = probe.fresh_model().eval()
    times = []
    with torch.no_grad():
        for i in range(REPEATS + 1):
            if probe.device.type == "cuda":
                torch.cuda.synchronize(probe.device)
            start = time.perf_counter()
            model(probe.inputs)
            if probe.device.type == "cuda":
                torch.cuda.synchronize(probe.device)
            if i:
                times.append(time.perf_counter() - start)
    return statistics.median(times)
