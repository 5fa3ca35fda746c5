"""SWAP (Peng et al., ICLR 2024): the number of distinct sample-wise activation patterns.

Each activation unit of one forward (an RNN node's unit at one step, a transformer FFN unit at one
position) has a pattern: its code (pre-activation > 0) on each of the batch's B samples, a B-bit
word. SWAP counts the distinct words. Words are packed to bytes and de-duplicated block by block
(np.unique), and the per-block sets merged, so no Python set of millions of tuples is built.
"""
from __future__ import annotations

import numpy as np
import torch

from trainfree.metrics.base import metric
from trainfree.probe import Probe

#: merge the per-block distinct words once this many have accumulated
MERGE_AT = 1 << 20


def distinct_patterns(blocks) -> int:
    """The number of distinct columns over every (B, N) boolean block (all with the same B)."""
    kept: list[np.ndarray] = []
    pending = 0
    for block in blocks:
        codes = block.detach().to("cpu", torch.bool).numpy()
        packed = np.ascontiguousarray(np.packbits(codes.T, axis=1))  # (N, ceil(B / 8)): one row per unit
        words = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        kept.append(np.unique(words))
        pending += kept[-1].size
        if pending > MERGE_AT:
            kept = [np.unique(np.concatenate(kept))]
            pending = kept[0].size
    return int(np.unique(np.concatenate(kept)).size) if kept else 0


@metric("swap", higher_is_better=True, requires={"activation_codes"})
def swap(probe: Probe) -> float:
    """SWAP score: the number of distinct sample-wise activation patterns (a unit's codes over the batch's
    samples) over every activation unit of one clean forward (Peng et al., ICLR 2024)."""
    return float(distinct_patterns(probe.space.activation_codes(probe)))
