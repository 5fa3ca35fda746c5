"""NAS-Bench-NLP recurrent cells (Klyuchnikov et al. 2022)."""
from trainfree.spaces.nasbench_nlp.recipe import OPS, Node, Recipe, parse_recipe

__all__ = ["OPS", "Node", "Recipe", "parse_recipe"]
