"""Configs and seeded models: ``transformers`` builds them (``Class._from_config``), trainfree wraps them
with the proxy protocol (``proxy_loss``, ``synflow_output``, ``batch_dim``) the classic metrics call."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from trainfree.errors import TrainfreeError
from trainfree.spaces.hf.spec import SpaceSpec, config_class, model_class


LOSS_TYPES = {"causal": "ForCausalLM", "masked": "ForMaskedLM"}


def make_config(spec: SpaceSpec, arch: dict, vocab_size: int):
    """The config of ``arch``: the file's fixed fields, the architecture's searched ones (and what the
    space derives from them), the vocabulary; eager attention, since CPU SDPA has no second derivative
    (grasp takes one) and its kernels vary by hardware."""
    fields = {**spec.fixed, **arch, "vocab_size": vocab_size}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = config_class(spec.model)(**fields)
    except Exception as err:  # transformers' own validation of a field's value
        raise TrainfreeError(f"{spec.where}: {spec.model}'s config refuses {fields}: {type(err).__name__}: "
                             f"{_first_line(err)}") from None
    config._attn_implementation = "eager"
    return config


def build_hf(spec: SpaceSpec, config, seed: int):
    """The transformers model of ``config``, initialised under ``seed`` (the caller's generator kept)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf = model_class(spec.model)._from_config(config)
    hf.loss_type = LOSS_TYPES[spec.kind]  # the loss_function to use (GPT2LMHeadModel's name names none)
    return hf


def meta_model(spec: SpaceSpec, config) -> "HFModel":
    """The model of ``config`` built on the meta device (shapes only: no memory, no initialisation)."""
    try:
        with torch.device("meta"):
            return HFModel(model_class(spec.model)._from_config(config), spec.kind)
    except Exception as err:  # the model class's own checks
        raise TrainfreeError(f"{spec.model} cannot be built from it: {type(err).__name__}: {_first_line(err)}") from None


def count_params(spec: SpaceSpec, config) -> int:
    """Parameters of the model ``config`` gives (tied ones once), built on the meta device: no memory,
    no initialisation, a few milliseconds."""
    try:
        with torch.device("meta"):
            return int(model_class(spec.model)._from_config(config).num_parameters())
    except Exception as err:  # the model class's own checks (e.g. heads dividing the width)
        raise TrainfreeError(f"{spec.model} cannot be built from it: {type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    """An error's first line, cut to 300 characters (a C++ error carries its whole stack trace)."""
    lines = str(err).strip().splitlines()
    return (lines[0] if lines else "")[:300]


def activation_modules(hf) -> list[nn.Module]:
    """The activation functions inside the transformer blocks (the MLPs' SiLU / GELU modules)."""
    from transformers import activations

    kinds = tuple({cls for cls in vars(activations).values() if isinstance(cls, type) and issubclass(cls, nn.Module)}
                  | {nn.SiLU, nn.GELU, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Mish})
    return [m for m in blocks(hf).modules() if isinstance(m, kinds)]


def blocks(hf) -> nn.ModuleList:
    """The base model's list of transformer blocks (one per hidden layer)."""
    n = hf.config.num_hidden_layers
    found = [m for m in hf.base_model.modules() if isinstance(m, nn.ModuleList) and len(m) == n]
    if not found:
        raise TrainfreeError(f"{type(hf).__name__}: no list of {n} blocks found in its base model")
    return found[0]


class HFModel(nn.Module):
    """A transformers language model with the proxy protocol; ``self.hf`` is the model itself."""

    batch_dim = 0  # token batches are (B, T)

    def __init__(self, hf, kind: str):
        super().__init__()
        self.hf, self.kind = hf, kind

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=tokens).logits

    def proxy_loss(self, tokens, targets, activation_hook=None) -> torch.Tensor:
        """The model's own loss (transformers' ``loss_function``): next-token cross-entropy of
        ``targets`` (already shifted) for a causal LM, masked-token cross-entropy for a masked LM.
        ``activation_hook(key, a)`` sees every block activation's output."""
        handles = []
        if activation_hook is not None:
            for i, m in enumerate(activation_modules(self.hf)):
                handles.append(m.register_forward_hook(lambda _m, _i, a, key=i: activation_hook(key, a)))
        try:
            logits = self.hf(input_ids=tokens).logits
        finally:
            for h in handles:
                h.remove()
        extra = {"shift_labels": targets} if self.kind == "causal" else {}
        return self.hf.loss_function(logits=logits, labels=targets, vocab_size=self.hf.config.vocab_size, **extra)

    def synflow_output(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of an all-ones input past the token embedding (position tables and norms still apply)."""
        width = self.hf.get_input_embeddings().embedding_dim
        p = next(self.parameters())
        ones = torch.ones(*tokens.shape, width, dtype=p.dtype, device=p.device)
        return self.hf(inputs_embeds=ones).logits
