"""Statistics of metrics against trained results."""
from trainfree.evaluation.correlation import correlate_values

__all__ = ["correlate_values"]
