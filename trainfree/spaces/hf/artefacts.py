"""The probe artefacts of an hf model: hidden states, activation codes, parameter groups and parts.

One no-grad pass of the base model (no LM head: the vocabulary projection would cost more than the
blocks) with ``output_hidden_states`` gives every block's output; a hook on the last block gives its
output before any final norm (transformers returns the normed one last, whose LayerNorm outputs
sum to zero over units and would put a zero eigenvalue in every covariance score). Hooks on the
blocks' activation modules give the binary codes of the activation kernel in the same pass.
"""
from __future__ import annotations

import torch
from torch import nn

from trainfree.errors import TrainfreeError
from trainfree.spaces.parts import hooked_codes
from trainfree.spaces.hf.model import activation_modules, blocks

NORM_NAMES = ("Norm",)  # LayerNorm, LlamaRMSNorm, Qwen2RMSNorm, ...
ATTENTION_WORDS = ("attn", "attention")


def _first(output):
    return output[0] if isinstance(output, (tuple, list)) else output


def forward_pass(probe) -> dict:
    """{"states": [block 1 output, ..., last block output before a final norm], "kernel": B x B}."""
    def compute() -> dict:
        from trainfree.linalg import binary_code_kernel

        hf = probe.model.hf
        kernel, last = [], []

        def on_act(_m, _i, a):
            kernel.append(binary_code_kernel((a.detach() > 0).reshape(a.shape[0], -1)))  # (B, T * F)

        handles = [m.register_forward_hook(on_act) for m in activation_modules(hf)]
        handles.append(blocks(hf)[-1].register_forward_hook(lambda _m, _i, out: last.append(_first(out).detach())))
        try:
            with torch.no_grad():
                out = hf.base_model(input_ids=probe.inputs, output_hidden_states=True)
        finally:
            for h in handles:
                h.remove()
        states = [h.detach() for h in out.hidden_states[1:-1]] + last  # [0] is the embedding output
        return {"states": states, "kernel": sum(kernel) if kernel else None}

    return probe.cached("hf_pass", compute)


def hidden_states(probe, layer: int) -> torch.Tensor:
    """Block ``layer``'s output (B, T, hidden); -1 the last block's, before any final norm."""
    states = forward_pass(probe)["states"]
    if layer != -1 and not 1 <= layer <= len(states):
        raise TrainfreeError(f"layer {layer}: the architecture has {len(states)} blocks")
    return states[-1 if layer == -1 else layer - 1]


def activation_kernel(probe) -> torch.Tensor:
    kernel = forward_pass(probe)["kernel"]
    if kernel is None:
        raise TrainfreeError(f"{type(probe.model.hf).__name__}: no activation module found in its blocks")
    return kernel


def parameter_groups(model) -> dict[str, list]:
    """A partition of the parameters: 'embedding' (token and position tables, the LM head when untied),
    'attention' and 'mlp' (inside the blocks), 'norm' (every norm's weights), 'other' (heads' extras,
    e.g. a masked LM's transform) where any."""
    hf = model.hf
    embedding_mods = [m for m in hf.modules() if isinstance(m, nn.Embedding)]
    out_emb = hf.get_output_embeddings()
    if out_emb is not None:
        embedding_mods.append(out_emb)
    groups: dict[str, list] = {"embedding": [], "attention": [], "mlp": [], "norm": [], "other": []}
    seen: set[int] = set()

    def add(group: str, params) -> None:
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                groups[group].append(p)

    for m in embedding_mods:
        add("embedding", [m.weight])  # an LM head's bias (if any) stays with "other"
    for name, m in hf.named_modules():
        if any(word in type(m).__name__ for word in NORM_NAMES):
            add("norm", m.parameters(recurse=False))
    block_list = blocks(hf)
    for block in block_list:
        for name, p in block.named_parameters():
            parts = name.lower().split(".")
            add("attention" if any(w in part for part in parts[:-1] for w in ATTENTION_WORDS) else "mlp", [p])
    add("other", hf.parameters())
    return {k: v for k, v in groups.items() if v or k != "other"}


def activation_codes(probe) -> list:
    """Every block activation's output > 0 (SiLU, GELU: pre-activation > 0) of one clean forward of the
    base model: one (B, T * F) block per activation module."""
    hf = probe.model.hf
    return hooked_codes(probe, activation_modules(hf), lambda: hf.base_model(input_ids=probe.inputs))


def _ffn_in(block: nn.Module) -> nn.Module:
    """The block's first FFN projection: the first weighted child of its MLP (Llama's gate_proj, GPT-2's
    c_fc, BERT's intermediate dense)."""
    mlps = [m for name, m in block.named_children() if name in ("mlp", "intermediate", "feed_forward")]
    for mlp in mlps:
        for child in mlp.modules():
            if child is not mlp and isinstance(getattr(child, "weight", None), torch.Tensor):
                return child
    raise TrainfreeError(f"{type(block).__name__}: no MLP with a weighted first projection found")


def transformer_parts(model) -> dict[str, list]:
    """'attention' and 'ffn': the blocks' attention and MLP parameters (parameter_groups' split);
    'ffn_in': each block's first FFN projection, in order."""
    groups = parameter_groups(model)
    return {"attention": groups["attention"], "ffn": groups["mlp"],
            "ffn_in": [_ffn_in(block) for block in blocks(model.hf)]}
