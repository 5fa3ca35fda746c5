"""Search-space analysis: what the design factors say about the trained results, and a shrinking rule
found from the data: a greedy, regression-tree-like descent that splits the current set on the
condition explaining most of the target's variance, keeps the better side, and stops when a Welch
t-test no longer separates the sides or too few architectures would remain."""
from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import stats

from trainfree.benchmarks import Benchmark

BERT_CAVEAT = ("Caveat: every trained NAS-Bench-BERT model used plain dot-product self-attention (the original "
               "TensorFlow code compared op names with `is`, so no other operation was ever built), and a layer's "
               "feed-forward dimension is unused when it has one FFN layer. Operation type and parameter therefore "
               "had no effect on these scores: read only depth, width, FFN layers and heads as design signal.")


def factors(arch) -> dict[str, float]:
    """Architecture-level design factors of a NAS-Bench-BERT genotype or a NAS-Bench-NLP recipe."""
    if hasattr(arch, "hidden_size"):  # NAS-Bench-BERT
        out = {"num_layers": len(arch.layers), "hidden_size": arch.hidden_size,
               "total_heads": sum(layer.num_operation_heads for layer in arch.layers),
               "total_ffn_layers": sum(layer.num_feed_forward for layer in arch.layers)}
        ops = Counter(layer.operation_type for layer in arch.layers)
        params = Counter(str(layer.operation_parameter) for layer in arch.layers)
        for op in ("SA", "LT", "DSC"):
            out[f"n_{op}"] = ops[op]
        for p in ("SDP", "WMA", "DFT", "DCT", "5", "9"):
            out[f"n_{'kernel' + p if p.isdigit() else p}"] = params[p]
        out["n_ffn_dim_1024"] = sum(layer.feed_forward_dimension == 1024 for layer in arch.layers)
        return out
    ops = Counter(node.op for node in arch.nodes)  # NAS-Bench-NLP recipe
    out = {"num_nodes": len(arch.nodes), "hidden_tuple_size": arch.hidden_tuple_size}
    for op in ("linear", "blend", "elementwise_prod", "elementwise_sum", "activation_tanh", "activation_sigm",
               "activation_leaky_relu"):
        out[f"n_{op}"] = ops[op]
    out["linear_inputs"] = sum(len(n.inputs) for n in arch.nodes if n.op == "linear")
    return out


def layer_factors(arch) -> list[dict[str, object]]:
    """Per-layer factors (NAS-Bench-BERT): one dict per encoder layer."""
    if not hasattr(arch, "layers"):
        return []
    return [{"operation_type": layer.operation_type, "operation_parameter": str(layer.operation_parameter),
             "num_operation_heads": layer.num_operation_heads, "feed_forward_dimension": layer.feed_forward_dimension,
             "num_feed_forward": layer.num_feed_forward} for layer in arch.layers]


@dataclass(frozen=True)
class LevelStats:
    factor: str
    level: object
    n: int
    mean: float
    sd: float
    scope: str  # "architecture" or "layer" (each layer carries its architecture's target)


def factor_table(bench: Benchmark) -> list[LevelStats]:
    rows = []
    groups: dict[tuple[str, str, object], list[float]] = {}
    for rec in bench.records:
        for f, v in factors(rec.arch).items():
            groups.setdefault(("architecture", f, v), []).append(rec.target)
        for layer in layer_factors(rec.arch):
            for f, v in layer.items():
                groups.setdefault(("layer", f, v), []).append(rec.target)
    for (scope, f, v), ys in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))):
        a = np.asarray(ys)
        rows.append(LevelStats(f, v, len(a), float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else math.nan, scope))
    return rows


@dataclass(frozen=True)
class Condition:
    factor: str
    op: str  # "==", ">=", "<="
    value: float

    def holds(self, facts: dict) -> bool:
        x = facts[self.factor]
        return x == self.value if self.op == "==" else (x >= self.value if self.op == ">=" else x <= self.value)

    def __str__(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.factor} {self.op} {value}"


@dataclass(frozen=True)
class Rule:
    conditions: tuple[Condition, ...]
    kept: int
    total: int
    kept_mean: float
    kept_min: float
    population_median: float
    kendall_tau: float
    spearman: float
    topk_hits: dict  # k -> share of the true top-k inside the kept set
    best_outside_rank: int | None  # rank (1 = best) of the best architecture the rule drops

    def score(self, facts: dict) -> int:
        """Lexicographic rule score: earlier conditions weigh more (2*[c1] + [c2] for two conditions)."""
        d = len(self.conditions)
        return sum(2 ** (d - 1 - i) for i, c in enumerate(self.conditions) if c.holds(facts))


def _candidates(facts: list[dict]) -> list[Condition]:
    out = []
    for f in facts[0]:
        values = sorted({x[f] for x in facts})
        for v in values:
            out.append(Condition(f, "==", v))
            if len(values) > 2 and v != values[0]:
                out.append(Condition(f, ">=", v))
            if len(values) > 2 and v != values[-1]:
                out.append(Condition(f, "<=", v))
    return out


def induce_rule(bench: Benchmark, min_keep: float = 0.25, max_conditions: int = 3, alpha: float = 0.01,
                topk: tuple[int, ...] = (10, 50)) -> Rule:
    """Greedily add the condition whose split of the kept set removes most squared error (as a
    regression tree's split does), keeping its better side, while that side stays >= ``min_keep`` of
    all architectures and the two sides differ by a Welch t-test at ``alpha``."""
    facts = [factors(r.arch) for r in bench.records]
    y = np.array([r.target for r in bench.records]) * (-1 if bench.lower_is_better else 1)
    keep = np.ones(len(y), dtype=bool)
    chosen: list[Condition] = []
    candidates = _candidates(facts)
    masks = {c: np.array([c.holds(f) for f in facts]) for c in candidates}
    while len(chosen) < max_conditions:
        best, best_gain = None, 0.0
        for c in candidates:
            kept, dropped = keep & masks[c], keep & ~masks[c]
            nk, nd = int(kept.sum()), int(dropped.sum())
            if nk < max(2, min_keep * len(y)) or nd < 2:
                continue
            diff = y[kept].mean() - y[dropped].mean()
            gain = nk * nd / (nk + nd) * diff ** 2  # between-group sum of squares of the split
            if diff > 0 and gain > best_gain:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    p = stats.ttest_ind(y[kept], y[dropped], equal_var=False).pvalue
                if p < alpha:
                    best, best_gain = c, gain
        if best is None:
            break
        chosen.append(best)
        keep &= masks[best]
    d = len(chosen)
    score = np.array([sum(2 ** (d - 1 - i) for i, c in enumerate(chosen) if c.holds(f)) for f in facts])
    target = np.array([r.target for r in bench.records])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = float(stats.kendalltau(score, y).statistic) if d else math.nan
        rho = float(stats.spearmanr(score, y).statistic) if d else math.nan
    order = np.argsort(-y, kind="stable")  # best first
    hits = {k: float(keep[order[:k]].mean()) for k in topk if k <= len(y)}
    outside = [rank + 1 for rank, i in enumerate(order) if not keep[i]]
    kept_t = target[keep]
    return Rule(tuple(chosen), int(keep.sum()), len(y), float(kept_t.mean()),
                float(kept_t.max() if bench.lower_is_better else kept_t.min()), float(np.median(target)),
                tau, rho, hits, outside[0] if outside else None)


def to_markdown(bench: Benchmark, table: list[LevelStats], rule: Rule, command: str) -> str:
    lines = [f"# Search-space analysis: {bench.name}", "",
             f"{len(bench)} architectures, target `{bench.target}` ({'lower' if bench.lower_is_better else 'higher'} "
             f"is better). Command: `{command}`", "", "## Shrinking rule found from the data", ""]
    if rule.conditions:
        lines.append("Keep architectures with " + " and ".join(f"`{c}`" for c in rule.conditions) + ".")
    else:
        lines.append("No condition passed the test: the data suggest no shrinking rule.")
    worst = "worst" if not bench.lower_is_better else "worst (highest)"
    lines += ["",
              f"- kept: {rule.kept} of {rule.total} ({100 * rule.kept / rule.total:.0f}%), mean {rule.kept_mean:.3f}, "
              f"{worst} member {rule.kept_min:.3f} (population median {rule.population_median:.3f})",
              f"- rule as a ranking score (lexicographic over its conditions): Kendall tau {rule.kendall_tau:.3f}, "
              f"Spearman {rule.spearman:.3f}",
              "- share of the true top-k inside the kept set: "
              + ", ".join(f"top-{k}: {v:.2f}" for k, v in rule.topk_hits.items()),
              f"- best architecture the rule drops: rank {rule.best_outside_rank}", ""]
    if bench.space == "nasbench-bert":
        lines += [BERT_CAVEAT, ""]
    lines += ["## Target by factor level", "", "| scope | factor | level | n | mean | sd |", "|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r.scope} | {r.factor} | {r.level} | {r.n} | {r.mean:.3f} | {r.sd:.3f} |")
    lines.append("")
    return "\n".join(lines)
