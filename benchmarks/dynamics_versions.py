"""How far the float32 versions of the recurrent trainability signals (lyapunov 3, state_grad_rate 2) are
from the float64 ones (lyapunov 2, state_grad_rate 1) that an older suite file holds: every cell the old
file has a value for is scored again with this checkout, and the largest relative and absolute
differences, the cells whose finiteness changed, and how many cells were measured again in float64 (h_0's
share of the renormalised tuple below 1e-30) are printed.

    git show af92b91:trainfree/data/suite/suite.json.gz > old-suite.json.gz
    python benchmarks/dynamics_versions.py --old-suite old-suite.json.gz [--benchmarks nasbench-nlp-ptb,...]
"""
from __future__ import annotations

import argparse
import gzip
import json
import math


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-suite", required=True, help="a suite file holding the float64 versions")
    parser.add_argument("--benchmarks", default="nasbench-nlp-ptb,nasbench-nlp-wikitext2")
    args = parser.parse_args()

    from trainfree import api
    from trainfree.benchmarks import load_benchmark
    from trainfree.executors import limit_threads
    from trainfree.metrics import Probe, get_metric
    from trainfree.metrics import rnn_dynamics
    from trainfree.spaces import get_space

    limit_threads(1)
    again = []
    measure64 = rnn_dynamics._layer64

    def counted(probe, layer):  # count the cells measured again in float64
        again.append(probe.arch)
        return measure64(probe, layer)

    rnn_dynamics._layer64 = counted
    with gzip.open(args.old_suite, "rt") as f:
        old = json.load(f)
    space = get_space("nasbench-nlp")
    for name in args.benchmarks.split(","):
        bench = load_benchmark(name)
        settings = api.default_settings(bench)
        by_id = {}
        for r in bench.records:
            by_id.setdefault(space.arch_id(r.arch), r.arch)
        entry = old["benchmarks"][name]
        for metric in ("lyapunov", "state_grad_rate"):
            held = entry["metrics"][metric]
            rel = absolute = 0.0
            changed, cells = [], 0
            again.clear()
            for i, arch_id in enumerate(entry["arch_ids"]):
                if held["status"][i] == "-":
                    continue
                was = math.nan if held["values"][i] is None else held["values"][i]
                now = get_metric(metric)(Probe(by_id[arch_id], space, settings))
                cells += 1
                if math.isfinite(was) and math.isfinite(now):
                    rel = max(rel, abs(now - was) / abs(was))
                    absolute = max(absolute, abs(now - was))
                elif not (was == now or (math.isnan(was) and math.isnan(now))):
                    changed.append((arch_id, was, now))
            print(f"{name} {metric} (old version {held['key_version']}, now {get_metric(metric).version}): "
                  f"{cells} cells, largest difference {rel:.1e} relative, {absolute:.1e} absolute; "
                  f"finiteness changed on {len(changed)} {changed}; measured again in float64 on {len(again)}")


if __name__ == "__main__":
    main()
