"""The suite in NAS-Bench-Suite-Zero's schema (NASLib's zero-cost benchmark files), one JSON file per
benchmark: ``{benchmark: {architecture: {metric: {"score": value, "time": seconds}, "id": index,
"val_accuracy": quality}}}``.

The architecture key is the space's canonical JSON of the architecture; ``id`` its index in the suite;
``arch_id`` trainfree's id. NASLib reads ``val_accuracy`` as higher-is-better, so it holds the benchmark
target turned that way (a loss negated), averaged over the architecture's runs; ``target`` holds the
untouched mean and ``target_name`` its name. A metric run on a subset appears only on the architectures it
ran on; a failed or non-finite score is NaN (``json.load`` reads NaN and Infinity).
"""
from __future__ import annotations

import json
import math
from pathlib import Path


def naslib_tasks(data: dict, names=None) -> dict[str, dict]:
    """benchmark name -> its NASLib-schema content, from a suite file's content."""
    from trainfree.benchmarks import load_benchmark
    from trainfree.spaces import get_space

    out = {}
    for name, entry in data["benchmarks"].items():
        if names is not None and name not in names:
            continue
        bench = load_benchmark(name)
        space = get_space(entry["space"])
        runs: dict[str, list[float]] = {}
        archs = {}
        for r in bench.records:
            a = space.arch_id(r.arch)
            archs.setdefault(a, r.arch)
            if math.isfinite(r.target):
                runs.setdefault(a, []).append(r.target)
        task = {}
        for i, a in enumerate(entry["arch_ids"]):
            mean = sum(runs[a]) / len(runs[a]) if a in runs else math.nan
            item = {"id": i, "arch_id": a, "val_accuracy": -mean if entry["lower_is_better"] else mean,
                    "target": mean, "target_name": entry["target"]}
            for metric, m in entry["metrics"].items():
                code = m["status"][i]
                if code == "-":
                    continue
                value = m["values"][i]
                item[metric] = {"score": math.nan if code == "f" or value is None else value,
                                "time": m["seconds"][i]}
            task[space.canonical_json(archs[a])] = item
        out[name] = {name: task}
    return out


def write_naslib(data: dict, folder: Path, names=None) -> list[Path]:
    """One ``zc_<benchmark>.json`` per benchmark in ``folder`` (each written whole or not at all)."""
    from trainfree.files import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in naslib_tasks(data, names).items():
        path = folder / f"zc_{name.replace(':', '_')}.json"
        atomic_write(path, lambda fh, c=content: json.dump(c, fh))
        paths.append(path)
    return paths
