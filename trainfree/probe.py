"""The Probe: one architecture's context that every metric scored on it shares.

It sits below both the spaces (which compute its artefacts) and the metrics (which read them), so
neither has to import the other's layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from trainfree.config import ScoreSettings


@dataclass
class Probe:
    """One architecture's context: the seeded model, the input batch, and a cache of shared artefacts.

    Artefacts (layer outputs, gradients, ...) are computed on first use and reused by every metric
    scored on the same probe, so ten metrics cost one forward pass.
    """

    arch: Any
    space: Any  # a SearchSpace: builds models and inputs, provides the artefacts
    settings: ScoreSettings
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: the artefacts the metrics scored on this probe will read, so that a space can compute several
    #: in one pass (NAS-Bench-NLP: activation codes with the layer outputs)
    expected: frozenset = frozenset()
    _cache: dict = field(default_factory=dict, repr=False)

    def cached(self, key, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def has(self, key) -> bool:
        """Whether ``key`` is already computed on this probe."""
        return key in self._cache

    def get(self, key) -> Any:
        """The value computed under ``key`` (KeyError when it is not)."""
        return self._cache[key]

    def put(self, key, value) -> None:
        """Cache ``value`` under ``key`` (a pass that yields several artefacts at once stores them all)."""
        self._cache[key] = value

    @property
    def model(self) -> torch.nn.Module:
        return self.cached("model", self.fresh_model)

    def fresh_model(self) -> torch.nn.Module:
        """A new copy of the seeded model, for metrics that change weights."""
        return self.space.build(self.arch, self.settings, self.device)

    @property
    def inputs(self) -> torch.Tensor:
        return self.cached("inputs", lambda: self.space.inputs(self.settings, self.device))

    @property
    def targets(self) -> torch.Tensor:
        """Labels for loss-based metrics (next tokens for language models)."""
        return self.cached("targets", lambda: self.space.targets(self.settings, self.device))

    # --- artefacts, computed by the space once per probe --------------------------------------------
    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """The model's parameters by role ('embedding', and the space's own: 'attention', 'ffn', ...)."""
        return self.cached("parameter_groups", lambda: self.space.parameter_groups(self.model))

    def hidden_states(self, layer: int) -> torch.Tensor:
        """(..., units) samples of ``layer``'s hidden state (1-based; -1 the last layer)."""
        return self.space.hidden_states(self, layer)

    def activation_kernel(self) -> torch.Tensor:
        """B x B binary-code kernel, summed over every activation of one clean forward (float64)."""
        return self.space.activation_kernel(self)

    def param_counts(self) -> dict[str, int]:
        """Parameter counts by role (``params``, ``nonembedding``, and where the space provides them
        ``embedding``, ``attention``, ``ffn``), from the space: a space whose models are large counts them
        without building the model."""
        return self.cached("param_counts", lambda: self.space.param_counts(self))

    def shape(self) -> dict:
        """The model's shape (depth, width, heads, kv_heads, ffn_width, vocab), read off the architecture."""
        return self.cached("shape", lambda: self.space.shape(self.arch, self.settings))
