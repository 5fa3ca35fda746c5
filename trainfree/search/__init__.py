"""Training-free search: ask/tell strategies over a space's generator, or within a benchmark's architectures."""
from trainfree.search.problem import Candidates, History, Problem, Trial
from trainfree.search.run import SearchResult, arch_targets, lookup, run_search, search_eval
from trainfree.search.strategies import STRATEGIES, Proposal, Strategy, make_strategy, register_strategy

__all__ = ["Candidates", "History", "Problem", "Proposal", "SearchResult", "STRATEGIES", "Strategy", "Trial",
           "arch_targets", "lookup", "make_strategy", "register_strategy", "run_search", "search_eval"]
