"""Metrics of many NAS-Bench-NLP architectures from one batched pass (``spaces.nasbench_nlp.batched``).

``BATCHED`` maps a metric to ``fn(archs, settings, device) -> list[float]``; the space offers them
(``NASBenchNLPSpace.batched``) for a chunk's architectures when that metric is the only one of theirs
that reads the model.
The values are those of the per-architecture metric: on CPU bit for bit (the same float operations,
and the same numpy correlation and factorisation per architecture), on a GPU to rounding (the
correlation and its factor are batched in float64 there).
"""
from __future__ import annotations

import torch

from trainfree.config import ScoreSettings
from trainfree.errors import TrainfreeError
from trainfree.linalg import eig_scores, hidden_covariance


def batch_size(device: torch.device, hidden: int = 600) -> int:
    """Architectures per batched pass. On CPU at the paper's width one: its matmuls already run near the
    core's peak, and more architectures' weights than fit the cache slow each other (measured, CPU
    time per architecture: 2 per pass 0.98x, 4 per pass 0.97x of 1 per pass), while each holds up
    to ~50 MB of weights; the single-architecture pass is still the lean one (layer 1 only, no
    last step). On CPU at small widths, where a step is mostly per-operation overhead, and on a GPU,
    where small products are launch-bound, many go at once."""
    if device.type == "cpu":
        return 1 if hidden >= 128 else 32
    return 64


def hidden_cov_batch(archs, settings: ScoreSettings, device: torch.device, exact: bool | None = None) -> list[float]:
    """Layer 1 hidden covariance of each architecture, from one batched forward of all of them.

    ``exact`` (default: on CPU) keeps the per-architecture arithmetic bit for bit, the numpy correlation
    included; otherwise tanh/sigmoid and the float64 correlation and factor are batched (the GPU way).
    """
    from trainfree.data.corpora import load_corpus
    from trainfree.spaces.nasbench_nlp.batched import Layer1Batch
    from trainfree.spaces.nasbench_nlp.draws import stream
    from trainfree.spaces.nasbench_nlp.lm import get_size, token_window

    size = get_size(settings.size)
    vocab = load_corpus(settings.corpus).vocab_size
    shared = stream(settings.seed, (vocab, size.emsize))
    if shared.formula is None:  # the runner then scores each architecture on its own
        raise TrainfreeError("this torch's uniform_ rounding is not a known one: no shared stream to batch from")
    tokens = token_window(settings, device)
    exact = device.type == "cpu" if exact is None else exact
    batch = Layer1Batch(archs, size, vocab, shared, device, getattr(torch, settings.dtype), exact)
    states = batch.incoming_states(tokens)  # (B, T, batch, H)
    del batch
    if exact:
        return [hidden_covariance(s) for s in states]
    return eig_scores(states.reshape(states.shape[0], -1, states.shape[-1]))


def params_batch(archs, settings: ScoreSettings, device: torch.device) -> list[float]:
    """``params`` counted from the recipes, no model built: every layer's weights and biases, the tied
    embedding/decoder matrix and the decoder bias."""
    from trainfree.data.corpora import load_corpus
    from trainfree.spaces.nasbench_nlp.batched import layer_param_count
    from trainfree.spaces.nasbench_nlp.lm import get_size

    size = get_size(settings.size)
    vocab = load_corpus(settings.corpus).vocab_size
    return [float(layer_param_count(a, size) + vocab * size.emsize + vocab) for a in archs]


#: metric -> batched function; a metric that needs no forward pass is batched only alongside one that does
BATCHED = {"hidden_cov": hidden_cov_batch, "params": params_batch}
