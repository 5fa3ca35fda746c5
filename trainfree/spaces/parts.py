"""Helpers the transformer spaces share to provide the activation_codes and transformer_parts artefacts."""
from __future__ import annotations

import torch


def module_params(modules) -> list:
    """The parameters of ``modules``, each tensor once."""
    return list({id(p): p for m in modules for p in m.parameters()}.values())


def hooked_codes(probe, acts, forward) -> list:
    """(B, N) codes a > 0 of every call of the ``acts`` modules during ``forward()``, run without
    gradients under the probe's seed (dropout masks, where the model trains with dropout on)."""
    codes = []

    def on_act(_m, _i, a):
        codes.append((a.detach() > 0).reshape(a.shape[0], -1))

    handles = [act.register_forward_hook(on_act) for act in acts]
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[probe.device] if probe.device.type == "cuda" else []):
            torch.manual_seed(probe.settings.seed)
            forward()
    finally:
        for h in handles:
            h.remove()
    return codes
