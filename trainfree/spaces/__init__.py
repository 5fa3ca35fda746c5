"""Search spaces, by name."""
from __future__ import annotations

from trainfree.registry import Registry

SPACES: Registry = Registry("search space")
_BUILTIN = []  # set once the shipped spaces are registered


def get_space(name: str):
    if not _BUILTIN:  # registered lazily: the spaces import torch, their genotype modules do not
        _BUILTIN.append(True)
        from trainfree.spaces.bert.space import NASBenchBERTSpace
        from trainfree.spaces.decoder.space import DecoderSpace
        from trainfree.spaces.nasbench_nlp.space import NASBenchNLPSpace

        SPACES.add(NASBenchNLPSpace.name, NASBenchNLPSpace())
        SPACES.add(NASBenchBERTSpace.name, NASBenchBERTSpace())
        SPACES.add(DecoderSpace.name, DecoderSpace())
    return SPACES.get(name)
