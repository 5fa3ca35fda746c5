"""Lean passes that must not change a value. The NAS-Bench-BERT stats pass (trainfree.metrics.transformer.stats_pass):
the last layer's FFN on the first sequence only, its output map skipped. Every hooked statistic, and
so every metric value, must equal the full forward's bit for bit. The binary-code kernel's float32
product must give the float64 counts."""
from unittest import mock

import numpy as np
import pytest

from trainfree.metrics import Probe, get_metric
from trainfree.metrics import transformer
from trainfree.spaces import get_space

FORWARD = ("head_confidence", "head_confidence_n", "head_softmax_confidence", "head_softmax_confidence_n",
           "bert_activation_distance", "bert_activation_distance_n")


def _archs():
    space = get_space("nasbench-bert")
    rng = np.random.default_rng(17)
    archs = [space.sample(rng) for _ in range(6)]
    # one of each family as the last layer (the lean pass changes the last layer only)
    for op, param in (("SA", "SDP"), ("SA", "WMA"), ("LT", "DFT"), ("LT", "DCT"), ("DSC", 5)):
        layer = {"operation_type": op, "operation_parameter": param, "num_operation_heads": 4,
                 "feed_forward_dimension": 512, "num_feed_forward": 3}
        archs.append(space.from_json({"hidden_size": 256, "encoder_layers": [dict(layer, num_feed_forward=1), layer]}))
    return space, archs


def _stats(space, arch, settings, lean: bool):
    real = transformer.stats_pass
    with mock.patch.object(transformer, "stats_pass", lambda model, tokens: real(model, tokens, lean=lean)):
        probe = Probe(arch, space, settings)
        return transformer.forward_stats(probe), {n: get_metric(n)(probe) for n in FORWARD}


def test_lean_stats_pass_equals_the_full_forward():
    space, archs = _archs()
    settings = space.tiny_settings().with_(batch_size=6, seq_len=24)
    for arch in archs:
        lean_stats, lean_values = _stats(space, arch, settings, lean=True)
        full_stats, full_values = _stats(space, arch, settings, lean=False)
        assert lean_stats == full_stats, arch
        assert lean_values == full_values, arch
        # the first sequence's codes of every FFN GELU call are counted, the last layer's included
        assert len(lean_stats.activation_distance) == sum(layer.num_feed_forward for layer in arch.layers)


def test_lean_pass_skips_the_last_layers_ffn_for_all_but_the_first_sequence():
    space, archs = _archs()
    settings = space.tiny_settings().with_(batch_size=6, seq_len=24)
    probe = Probe(archs[-1], space, settings)
    rows = []
    handle = probe.model.layers[-1].ffn_in.register_forward_hook(lambda _m, i, _o: rows.append(i[0].shape[0]))
    try:
        transformer.forward_stats(probe)
    finally:
        handle.remove()
    assert rows == [1]


@pytest.mark.parametrize("rows,cols,p", [(4, 1, 0.5), (16, 4096, 0.5), (16, 300_000, 0.02), (33, 777, 0.97)])
def test_binary_code_kernel_in_float32_gives_the_float64_counts(rows, cols, p):
    from trainfree.linalg import binary_code_kernel
    import torch

    codes = torch.as_tensor(np.random.default_rng(cols).random((rows, cols)) < p)
    c = codes.to(torch.float64)
    want = c @ c.t() + (1 - c) @ (1 - c).t()
    got = binary_code_kernel(codes)
    assert got.dtype == torch.float64 and torch.equal(got, want)
