"""`trainfree export-config`: the transformers config of an architecture, ready to train."""
from __future__ import annotations

import json
from pathlib import Path

from trainfree.errors import TrainfreeError


def add_parser(sub) -> None:
    p = sub.add_parser("export-config", help="write an architecture's transformers config.json (hf-llama, hf-gpt2, "
                                             "gemstones, space files), ready to train from")
    p.add_argument("--space", default=None, help="the space (default: the search's)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--arch", default=None, help="the architecture, as JSON (its searched fields)")
    what.add_argument("--search", type=Path, default=None, help="a `trainfree search --output` JSON")
    p.add_argument("--rank", type=int, default=1, help="with --search: the architecture ranked N by the search's "
                                                        "metric (default 1, the best)")
    p.add_argument("--tokenizer", default=None, metavar="PATH",
                   help="a tokenizers JSON file whose vocabulary the model gets (default: the space's vocabulary)")
    p.add_argument("--output", type=Path, required=True, help="the folder to write config.json into")
    p.set_defaults(func=run)


def ranked(search: dict, rank: int) -> dict:
    """The search's trial at ``rank`` (1 = best) by its metric, in the metric's direction, non-finite last."""
    import math

    metric, higher = search["metric"], search.get("metric_higher_is_better", True) is not False
    trials = [t for t in search.get("trials", []) if isinstance(t, dict) and "arch" in t]
    keyed = sorted(trials, key=lambda t: (not math.isfinite(t["values"].get(metric, math.nan)),
                                          -t["values"][metric] if higher and math.isfinite(t["values"][metric])
                                          else t["values"].get(metric, 0.0), t.get("step", 0)))
    if not 1 <= rank <= len(keyed):
        raise TrainfreeError(f"--rank {rank}: the search holds {len(keyed)} trials")
    return keyed[rank - 1]


def run(args) -> int:
    from trainfree import api
    from trainfree.spaces import get_space

    space_name, arch = args.space, args.arch
    if args.search is not None:
        try:
            search = json.loads(args.search.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as err:
            raise TrainfreeError(f"--search {args.search}: not a search output JSON ({str(err)[:200]})") from None
        if not isinstance(search, dict) or not isinstance(search.get("trials"), list) or "metric" not in search:
            raise TrainfreeError(f"--search {args.search}: not a `trainfree search --output` JSON")
        if space_name is not None and get_space(space_name).name != search.get("space"):
            raise TrainfreeError(f"--search {args.search}: a search of space {search.get('space')!r}, not {space_name!r}")
        space_name = space_name or search.get("space")
        arch = ranked(search, args.rank)["arch"]
    elif args.space is None:
        raise TrainfreeError("--arch needs --space (the space the architecture belongs to)")
    space = get_space(space_name)
    settings = space.default_settings()
    if args.tokenizer:
        settings = settings.with_(tokenizer=args.tokenizer)
    written = api.export_config(space, arch, args.output, settings)
    print(f"wrote {written['path']}: {written['model']} {written['shape']}, {written['params']:,} parameters")
    print(f"  train from it: transformers.AutoModelForCausalLM.from_config(AutoConfig.from_pretrained({str(args.output)!r}))")
    return 0
