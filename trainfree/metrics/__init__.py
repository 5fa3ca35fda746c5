"""Training-free metrics. Importing this package registers every built-in metric."""
from trainfree.metrics.base import METRICS, Metric, Probe, get_metric, metric
from trainfree.metrics import activation, combo, cost, decoder, hidden, jacobian, proxies, saliency, size, transformer  # noqa: F401  (registration)
from trainfree.metrics import epsinas, lpzero, rnn_dynamics, swap, wpca  # noqa: F401  (registration: docs/new-metrics.md)
from trainfree.metrics import shape  # noqa: F401  (registration: docs/decoders.md)
from trainfree.metrics import cell_graph  # noqa: F401  (registration: docs/signals.md)

__all__ = ["METRICS", "Metric", "Probe", "get_metric", "metric"]
