"""Training-free search: strategies over a space's generator, or within a benchmark's architectures."""
from trainfree.search.problem import Candidates, Problem, Trial
from trainfree.search.run import SearchResult, arch_targets, lookup, run_search, search_eval
from trainfree.search.strategies import STRATEGIES

__all__ = ["Candidates", "Problem", "Trial", "SearchResult", "STRATEGIES", "arch_targets", "lookup", "run_search", "search_eval"]
