"""Search spaces, by name."""
from __future__ import annotations

from trainfree.registry import Registry

SPACES: Registry = Registry("search space")


def get_space(name: str):
    if not len(SPACES):
        from trainfree.spaces.nasbench_nlp.space import NASBenchNLPSpace

        SPACES.add(NASBenchNLPSpace.name, NASBenchNLPSpace())
    return SPACES.get(name)
