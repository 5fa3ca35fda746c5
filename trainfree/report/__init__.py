"""Reports: one self-contained HTML page with tables and plots (matplotlib: ``trainfree[report]``)."""
from trainfree.report.html import render

__all__ = ["render"]
