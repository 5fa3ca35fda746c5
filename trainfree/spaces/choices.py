"""Where a generator's decisions come from.

Each space writes its generator once, against a ``Chooser``: ``RandomChooser`` draws the decisions
from a seeded numpy generator (sampling); ``GeneChooser`` reads them from a fixed-length integer
vector (the encoding optuna's NSGA-II searches over), so every gene vector decodes to a valid
architecture with the same code path.
"""
from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np

from trainfree.spaces.base import SearchSpace

T = TypeVar("T")

#: genes take values in [0, GENE_RANGE); 5040 = 7! is divisible by every option count up to 10
GENE_RANGE = 5040


class RandomChooser:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def index(self, n: int) -> int:
        return int(self.rng.integers(n))

    def pick(self, options: Sequence[T], weights: Sequence[float] | None = None) -> T:
        if weights is None:
            return options[self.index(len(options))]
        p = np.asarray(weights, dtype=float)
        return options[int(self.rng.choice(len(options), p=p / p.sum()))]

    def sample(self, options: Sequence[T], k: int) -> list[T]:
        """k distinct options, in draw order."""
        pool = list(options)
        return [pool.pop(self.index(len(pool))) for _ in range(min(k, len(pool)))]


class GeneChooser(RandomChooser):
    """Decisions from ``genes`` in order (gene mod option count; weighted picks by the weights'
    cumulative share); once they run out, from a generator seeded by the genes themselves."""

    def __init__(self, genes: Sequence[int]):
        self.genes = list(genes)
        self.used = 0
        super().__init__(np.random.default_rng([int(g) for g in genes] or [0]))

    def _next(self) -> int | None:
        if self.used < len(self.genes):
            self.used += 1
            return int(self.genes[self.used - 1])
        return None

    def index(self, n: int) -> int:
        g = self._next()
        return int(self.rng.integers(n)) if g is None else g % n

    def pick(self, options: Sequence[T], weights: Sequence[float] | None = None) -> T:
        if weights is None:
            return options[self.index(len(options))]
        g = self._next()
        if g is None:
            return super().pick(options, weights)
        cum = np.cumsum(np.asarray(weights, dtype=float))
        return options[int(np.searchsorted(cum / cum[-1], (g + 0.5) / GENE_RANGE, side="right"))]


class GeneratedSpace(SearchSpace):
    """A SearchSpace whose generation comes from its ``generator`` module (``sample``, ``mutate``,
    ``decode``, ``n_genes``, ``features``), written once against a Chooser; identity and JSON come from
    the architecture's own ``arch_id``, ``canonical_json()`` and ``to_dict()``; parsing from its
    ``parser`` (``(text or object, where) -> architecture``) and the example from ``example_json``."""

    generator = None
    parser = None
    example_json = None

    def from_json(self, text, where: str = ""):
        return self.parser(text, where)

    def example(self):
        return self.parser(self.example_json, "the example")

    def sample(self, rng: np.random.Generator):
        return self.generator.sample(rng)

    def mutate(self, arch, rng: np.random.Generator):
        return self.generator.mutate(arch, rng)

    @property
    def n_genes(self) -> int:
        return self.generator.n_genes()

    def decode(self, genes):
        return self.generator.decode(genes)

    def features(self, arch) -> frozenset:
        """Hashable traits; the distance between two architectures is the size of their symmetric difference."""
        return self.generator.features(arch)
