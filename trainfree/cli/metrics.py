"""`trainfree metrics`: list the registered metrics as a table."""
from __future__ import annotations

import inspect
import shutil
import textwrap


def add_parser(sub) -> None:
    from trainfree.spaces import space_names

    p = sub.add_parser("metrics", help="list the registered metrics")
    p.add_argument("--space", default=None, help=f"only the metrics that apply to this space ({', '.join(space_names())}, "
                                                  "or a space file .toml/.json)")
    p.set_defaults(func=run)


def description(m) -> str:
    """The first paragraph of the metric's docstring, in full (the registry keeps its first line only)."""
    doc = inspect.cleandoc(getattr(m.fn, "__doc__", None) or m.description or "")
    return " ".join(doc.split("\n\n")[0].split()) or m.description


def run(args) -> int:
    from trainfree.metrics import METRICS
    from trainfree.metrics.base import ALIASES

    if args.space:
        from trainfree.spaces import get_space

        args.space = get_space(args.space).name  # an unknown name lists the choices; a file registers its space
    shown = [m for m in METRICS if not args.space or m.applies_to(args.space)]
    header = ["name", "better", "version", "requires", "spaces"]
    cells = [[m.name, "higher" if m.higher_is_better else "lower", m.version, ",".join(sorted(m.requires)),
              ",".join(m.spaces)] for m in shown]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    used = sum(widths) + 2 * len(widths)
    width = shutil.get_terminal_size((100, 24)).columns
    beside = width - used >= 40  # the description as a last column, else wrapped under each row
    print(("  ".join(h.ljust(w) for h, w in zip(header, widths)) + ("  description" if beside else "")).rstrip())
    for m, row in zip(shown, cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths))
        if beside:
            text = textwrap.wrap(description(m), width - used) or [""]
            print(line + "  " + text[0])
            for more in text[1:]:
                print(" " * used + more)
        else:
            print(line.rstrip())
            for more in textwrap.wrap(description(m), width - 4, initial_indent="    ", subsequent_indent="    "):
                print(more)
    aliases = [(old, new) for old, new in ALIASES.items() if not args.space or METRICS.get(new).applies_to(args.space)]
    for old, new in aliases:
        print(f"{old}  alias of {new} (same function and version)")
    combos = shipped_combinations(args.space)
    for line in combos:
        print(line)
    print(f"({len(shown)} metrics, {len(aliases)} aliases, {len(combos)} shipped combinations; better: the direction "
          f"in which a metric ranks an architecture higher)")
    return 0


def shipped_combinations(space: str | None) -> list[str]:
    """One line per shipped combination: its inputs, its nested cross-validated tau, and its cost per
    architecture (the sum of its inputs' CPU-seconds in the shipped suite, on the benchmark it was fitted on;
    the suite records shared work, such as building the model, once, so a metric run alone costs more)."""
    from trainfree.metrics.combo import BUILTIN, load
    from trainfree.store.shipped import read_suite

    suite = read_suite()
    lines = []
    for name in BUILTIN:
        model, _ = load(name)
        if space and model.space != space:
            continue
        cv = model.cv
        entry = (suite or {}).get("benchmarks", {}).get(model.benchmark, {}).get("metrics", {})
        parts = [entry.get(f) for f in model.features]
        cost = ("cost unknown (not in the shipped suite)" if not all(parts) else
                f"{sum(p['cpu_seconds'] / max(1, p['computed']) for p in parts):.2f} CPU-s per architecture in the "
                f"shipped suite (work shared with other metrics, such as building the model, counted once)")
        lines.append(f"{name}  combination ({model.space}): {BUILTIN[name]}; held-out Kendall tau "
                     f"{cv['mean_tau']:.3f} +- {cv['sd_tau']:.3f} over {cv['outer_folds']} outer folds on "
                     f"{model.benchmark} (nested CV); {cost}")
    return lines
