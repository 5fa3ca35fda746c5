"""Metrics of many NAS-Bench-NLP architectures from one batched pass (``spaces.nasbench_nlp.batched``).

``BATCHED`` maps a metric to ``fn(archs, settings, device) -> list[float]``; the runner uses it for a
chunk's architectures when that metric is the only one of theirs that needs a forward pass.
The values are those of the per-architecture metric: on CPU bit for bit (the same float operations,
and the same numpy correlation and factorisation per architecture), on a GPU to rounding (the
correlation and its factor are batched in float64 there).
"""
from __future__ import annotations

import torch

from trainfree.config import ScoreSettings
from trainfree.errors import TrainfreeError
from trainfree.metrics.hidden import hidden_covariance
from trainfree.metrics.linalg import eig_scores

SPACE = "nasbench-nlp"


def batch_size(device: torch.device) -> int:
    """Architectures per batched pass. On CPU the matmuls already run near the core's peak and more
    architectures' weights than fit the cache slow each other (measured: 2 is break-even to slightly
    faster than 1, 4-8 slower); on a GPU small products are launch-bound, so many go at once."""
    return 2 if device.type == "cpu" else 64


def hidden_cov_batch(archs, settings: ScoreSettings, device: torch.device) -> list[float]:
    """Layer 1 hidden covariance of each architecture, from one batched forward of all of them."""
    from trainfree.data.corpora import load_corpus
    from trainfree.spaces import get_space
    from trainfree.spaces.nasbench_nlp.batched import Layer1Batch
    from trainfree.spaces.nasbench_nlp.draws import stream
    from trainfree.spaces.nasbench_nlp.lm import get_size

    size = get_size(settings.size)
    vocab = load_corpus(settings.corpus).vocab_size
    shared = stream(settings.seed, (vocab, size.emsize))
    if shared.formula is None:  # the runner then scores each architecture on its own
        raise TrainfreeError("this torch's uniform_ rounding is not a known one: no shared stream to batch from")
    tokens = get_space(SPACE).inputs(settings, device)
    batch = Layer1Batch(archs, size, vocab, shared, device, getattr(torch, settings.dtype))
    states = batch.incoming_states(tokens)  # (T, B, batch, H)
    del batch
    if device.type == "cpu":
        return [hidden_covariance(states[:, a]) for a in range(states.shape[1])]
    samples = states.permute(1, 0, 2, 3).reshape(states.shape[1], -1, states.shape[-1])
    return eig_scores(samples)


BATCHED = {"hidden_cov": hidden_cov_batch}
