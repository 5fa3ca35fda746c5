"""The NAS-Bench-BERT transformer space (genotypes; models are built by the transformer issue's code)."""
from trainfree.spaces.bert.genotype import BertGenotype, Layer, parse_genotype, search_space

__all__ = ["BertGenotype", "Layer", "parse_genotype", "search_space"]
