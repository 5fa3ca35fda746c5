"""Fuzz every space's public parser with seeded mutations of valid architectures (every shipped one
and generated ones), random JSON values and random text; print per space how many inputs were
accepted (and round-trip to the same id), refused with trainfree's own error, or raised anything
else (the goal: none), with the first few tracebacks of the last kind.

    python benchmarks/fuzz_parsers.py [--cases 10000] [--seed 0] [--space nasbench-nlp|nasbench-bert|decoder]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fuzz_cases: the same generator as the suite's

from tests.fuzz_cases import SPACES, case, outcome, seeds  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000, help="inputs per space")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", choices=SPACES, action="append", help="default: every space")
    parser.add_argument("--show", type=int, default=3, help="tracebacks of 'other' outcomes to print per space")
    args = parser.parse_args()
    others = 0
    print(f"{'space':<15}{'cases':>7}{'accepted':>10}{'error':>8}{'other':>7}{'seeds':>7}{'s':>7}")
    for space in args.space or SPACES:
        rnd = random.Random(f"{args.seed}:{space}")
        counts, shown = Counter(), []
        start = time.perf_counter()
        for _ in range(args.cases):
            source = case(space, rnd)
            try:
                counts[outcome(space, source)] += 1
            except Exception:  # what the parsers must never raise: counted and shown
                counts["other"] += 1
                if len(shown) < args.show:
                    shown.append(traceback.format_exc(limit=-4))
        others += counts["other"]
        print(f"{space:<15}{args.cases:>7}{counts['accepted']:>10}{counts['error']:>8}{counts['other']:>7}"
              f"{len(seeds(space)):>7}{time.perf_counter() - start:>7.1f}")
        for tb in shown:
            print("  " + tb.rstrip().replace("\n", "\n  "))
    return 1 if others else 0


if __name__ == "__main__":
    raise SystemExit(main())
