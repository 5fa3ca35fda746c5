"""The optimiser a protocol names (kept apart so the trainers and the loop import it without a cycle)."""
from __future__ import annotations

import torch


def make_optimizer(model, protocol):
    """torch.optim.Adam (L2 added to the gradient, as NAS-Bench-NLP trained) or AdamW (decoupled decay)."""
    params = [p for p in model.parameters() if p.requires_grad]
    cls = torch.optim.Adam if protocol.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=protocol.lr, betas=protocol.betas, eps=protocol.eps, weight_decay=protocol.weight_decay)
