"""What the shipped benchmarks say about a metric on a family of spaces: the search's default objective and
the warning for a metric that ranks a family's benchmarks backwards.

The figures come from ``trainfree/data/evidence.json``, written by ``benchmarks/decoder_evidence.py`` (its
command is in the file): per benchmark, each metric's Kendall tau against the trained target and the paired
95% interval of its difference to the non-embedding parameter count. A family's default objective is its
baseline (decoders: ``nonembedding_params``) until another metric's paired interval lies above zero on most of
the family's benchmarks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

#: family -> the shipped benchmarks that measure it
FAMILY_BENCHMARKS = {"decoder": ("gemstones", "lts:random_GPT2_wt103", "lts:random_GPT2_lm1b",
                                 "lts:random_TransXL_wt103", "lts:random_TransXL_lm1b",
                                 "lts:random_TransXL_wt103_homogeneous")}


@dataclass(frozen=True)
class Evidence:
    metric: str
    taus: dict  # benchmark -> Kendall tau
    beats: int  # benchmarks where the paired interval against the baseline lies above zero

    def text(self) -> str:
        """The figures in a line: ``Kendall tau 0.948 on gemstones, 0.825-0.979 on 5 LTS settings``."""
        parts = []
        if "gemstones" in self.taus:
            parts.append(f"{self.taus['gemstones']:.3f} on Gemstones (22 shapes)")
        lts = [t for b, t in self.taus.items() if b.startswith("lts:")]
        if lts:
            lo, hi = min(lts), max(lts)
            parts.append(f"{lo:.3f}" + (f" to {hi:.3f}" if hi != lo else "") + f" on {len(lts)} LTS settings")
        return "Kendall tau " + ", ".join(parts) if parts else "no measurement"


@lru_cache(maxsize=1)
def _table() -> dict:
    from trainfree.data import data_path

    try:
        return json.loads(data_path("evidence.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # an install without the file: no evidence, no claims
        return {}


def evidence(family: str | None, metric: str) -> Evidence | None:
    """A metric's measured taus on the family's benchmarks (None when it was not measured there)."""
    table = _table().get("benchmarks", {})
    taus, beats = {}, 0
    for bench in FAMILY_BENCHMARKS.get(family or "", ()):
        row = table.get(bench, {}).get("taus", {}).get(metric)
        if row is not None:
            taus[bench] = row[0]
            beats += row[1] > 0
    return Evidence(metric, taus, beats) if taus else None


def default_objective(family: str | None) -> tuple[str, Evidence] | None:
    """The metric a search of the family uses when none is named, and its evidence: the baseline, unless
    another metric beats it (paired interval above zero) on more than half of the family's benchmarks."""
    baseline = _table().get("baseline")
    if family not in FAMILY_BENCHMARKS or not baseline:
        return None
    measured = {m for b in FAMILY_BENCHMARKS[family] for m in _table().get("benchmarks", {}).get(b, {}).get("taus", {})}
    best = (baseline, evidence(family, baseline))
    for metric in sorted(measured - {baseline}):
        found = evidence(family, metric)
        if found is not None and found.beats > len(FAMILY_BENCHMARKS[family]) / 2 and (
                best[0] == baseline or found.beats > best[1].beats):
            best = (metric, found)
    return best if best[1] is not None else None


def backwards(family: str | None, metric: str) -> str | None:
    """A warning when ``metric`` ranks most of the family's measured benchmarks backwards (negative tau)."""
    found = evidence(family, metric)
    if found is None or sum(t < 0 for t in found.taus.values()) <= len(found.taus) / 2:
        return None
    return (f"{metric} ranks {family} benchmarks backwards ({found.text()}): the search will prefer "
            f"architectures that train worse; see docs/decoders.md")
