"""Build trainfree/data/gemstones/gemstones.json.gz from the Gemstones release files.

    python benchmarks/convert_gemstones.py GEMSTONES_FOLDER OUTPUT.json.gz

GEMSTONES_FOLDER holds the files of github.com/mcleish7/gemstone-scaling-laws (commit 5f42047):
wandb_df_for_fitting_hot_100b+.jsonl (training loss), fineweb_edu_losses_combined.jsonl and
fineweb_dclm_losses_combined.jsonl (validation losses) and light_eval_df.parquet (downstream accuracies;
reading it needs pyarrow). One record per shape: its width, depth, the published parameter count, and
each target by training tokens. Downstream checkpoints are named by step; a step is 2048 x 2048 tokens.
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

TOKENS_PER_STEP = 2048 * 2048
TASKS = ("arc:challenge", "arc:easy", "commonsense_qa", "hellaswag", "mmlu", "openbookqa", "piqa", "siqa",
         "winogrande")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(folder: str, output: str) -> None:
    folder = Path(folder)
    shapes: dict[tuple[int, int], dict] = {}

    def shape(w, d, params=None):
        rec = shapes.setdefault((w, d), {"name": f"Gemstone-{w}x{d}", "width": w, "depth": d, "params": params,
                                         "train_loss": {}, "fineweb_edu": {}, "dclm": {}, "downstream": {}})
        if params is not None:
            if rec["params"] not in (None, params):
                raise SystemExit(f"{w}x{d}: two parameter counts, {rec['params']} and {params}")
            rec["params"] = params
        return rec

    for file, key in (("wandb_df_for_fitting_hot_100b+.jsonl", "train_loss"),
                      ("fineweb_edu_losses_combined.jsonl", "fineweb_edu"),
                      ("fineweb_dclm_losses_combined.jsonl", "dclm")):
        for r in _rows(folder / file):
            rec = shape(int(r["width"]), int(r["depth"]), int(r["params_active_precise"]))
            tokens = str(int(r["tokens"]))
            if tokens in rec[key]:
                raise SystemExit(f"{file}: {rec['name']} at {tokens} tokens twice")
            rec[key][tokens] = float(r["final_loss"])
    import pyarrow.parquet as pq

    last = {}
    for r in pq.read_table(folder / "light_eval_df.parquet").to_pylist():
        label = r["__index_level_0__"]  # Gemstone-WxD-main or Gemstone-WxD-step_00002385
        _, dims, checkpoint = label.split("-", 2)
        w, d = (int(x) for x in dims.split("x"))
        rec = shape(w, d)
        scores = {t: float(r[t]) for t in TASKS}
        if checkpoint == "main":
            last[(w, d)] = scores
        else:
            step = int(checkpoint.split("_")[1])
            rec["downstream"][str(step * TOKENS_PER_STEP)] = scores
    for (w, d), scores in last.items():  # "main" is the final checkpoint: the last training-loss point
        rec = shapes[(w, d)]
        final = max(int(t) for t in rec["train_loss"])
        rec["downstream"][str(final)] = scores
    records = [shapes[k] for k in sorted(shapes)]
    data = {"format": "trainfree-gemstones", "format_version": 1,
            "source": "Gemstones (McLeish et al., NeurIPS 2025), github.com/mcleish7/gemstone-scaling-laws "
                      "commit 5f42047, MIT licence",
            "tokens_per_step": TOKENS_PER_STEP, "tasks": list(TASKS), "records": records}
    with gzip.open(output, "wt", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"), sort_keys=True)
    print(f"wrote {output}: {len(records)} shapes")


if __name__ == "__main__":
    main(*sys.argv[1:])
