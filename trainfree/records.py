"""The one score record, its status, and the one place a value's sign is oriented.

Scoring, the store, score files, search and evaluation all pass :class:`Score` rows; training rows
and search trials use :class:`Status` too. Nothing here imports torch or another trainfree module.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace


class Status(str, enum.Enum):
    """How a computation ended: a finite value, a NaN/inf kept as it is, or an error."""

    OK = "ok"
    NONFINITE = "nonfinite"
    FAILED = "failed"

    def __str__(self) -> str:  # "ok", not "Status.OK", in CSV files, messages and SQL
        return self.value

    __format__ = str.__format__

    @classmethod
    def of(cls, value: float) -> "Status":
        """OK for a finite value, NONFINITE for NaN or +-inf."""
        return cls.OK if math.isfinite(value) else cls.NONFINITE

    @classmethod
    def parse(cls, text: str) -> "Status":
        """The status spelled ``text`` (ValueError naming the choices otherwise)."""
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"{text!r} is not one of {[s.value for s in cls]}") from None


#: the statuses' spellings, in order
STATUSES = tuple(s.value for s in Status)


@dataclass(frozen=True)
class Score:
    """One (architecture, metric) result under one settings fingerprint.

    ``name`` is the benchmark's (or the user's) name for the architecture; a worker leaves it, the
    version and the fingerprint empty, and the scoring loop fills them in. ``value`` is NaN for a
    failed row, and the NaN/inf a metric gave for a non-finite one.
    """

    arch_id: str
    metric: str
    value: float
    status: Status
    error: str = ""
    seconds: float = 0.0
    name: str = ""
    metric_version: str = ""
    fingerprint: str = ""

    @property
    def usable(self) -> float:
        """The value where it is ``ok``, NaN otherwise (what correlations and searches read)."""
        return self.value if self.status is Status.OK else math.nan

    def with_(self, **changes) -> "Score":
        return replace(self, **changes)


def orient(value, higher_is_better: bool):
    """``value`` (a number or a numpy array) turned so that higher is better: the one place signs flip."""
    return value if higher_is_better else -value
