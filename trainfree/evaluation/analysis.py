"""Search-space analysis: what the design factors say about the trained results, a shrinking rule
found from the data, and how stable that rule is.

Factors come from the space (``space.factors(arch)``), so every space is analysed the same way.
The rule is a conditional-inference-tree descent (Hothorn, Hornik & Zeileis 2006): at each step
every candidate condition splits the current set, the split statistic is the regression tree's
between-group sum of squares (kept side better), and the best split is kept only if its statistic
beats a permutation null of the *maximum* over all candidate splits (Westfall-Young max-T, which
corrects for the multiple comparisons) at ``alpha``. The descent stops at the first step that fails.
No share of the data is fixed in advance; ``min_leaf`` only keeps either side from being a handful.
Stability: the same procedure refitted on seeded bootstrap resamples.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

from trainfree.benchmarks import Benchmark
from trainfree.errors import TrainfreeError
from trainfree.records import orient

BERT_CAVEAT = ("Caveat: every trained NAS-Bench-BERT model used plain dot-product self-attention (the original "
               "TensorFlow code compared op names with `is`, so no other operation was ever built), and a layer's "
               "feed-forward dimension is unused when it has one FFN layer. Operation type and parameter therefore "
               "had no effect on these scores: read only depth, width, FFN layers and heads as design signal.")

#: a numeric factor with more distinct values is tabulated in quartile bins and split at quantiles
MAX_LEVELS = 12
#: thresholds tried for a factor with many values (quantiles); more candidates cost power under max-T
MAX_THRESHOLDS = 32
_CHUNK = 100  # permutations per batch; the test stops early once it cannot reach alpha


def benchmark_factors(bench: Benchmark) -> list[dict]:
    """``space.factors(arch)`` for every record; every record must give the same factor names."""
    from trainfree.spaces import get_space

    space = get_space(bench.space)
    if not callable(getattr(space, "factors", None)):
        raise TrainfreeError(f"space {bench.space!r} gives no design factors (a factors(arch) method) to analyse")
    facts = [space.factors(r.arch) for r in bench.records]
    if not facts:
        raise TrainfreeError(f"benchmark {bench.name!r} has no records to analyse")
    names = set(facts[0])
    for rec, f in zip(bench.records, facts):
        if set(f) != names:
            raise TrainfreeError(f"space {bench.space!r}: factors of record {rec.name!r} are {sorted(f)}, "
                                 f"those of the first record {sorted(names)}")
    return facts


def _numeric(values) -> bool:
    return all(isinstance(v, Real) and not isinstance(v, bool) for v in values)


@dataclass(frozen=True)
class LevelStats:
    factor: str
    level: object  # a value, or a "[low, high)" bin of a factor with many values
    n: int
    mean: float
    sd: float


def _bins(values: np.ndarray) -> list[tuple[float, float]]:
    edges = np.unique(np.quantile(values, [0, 0.25, 0.5, 0.75, 1]))
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)] or [(edges[0], edges[0])]


def _fmt(x) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def factor_table(bench: Benchmark, facts: list[dict] | None = None) -> list[LevelStats]:
    """The target's n, mean and sd at every level of every factor (quartile bins for a numeric
    factor with more than MAX_LEVELS values)."""
    facts = benchmark_factors(bench) if facts is None else facts
    y = np.array([r.target for r in bench.records], dtype=float)
    rows = []
    for f in facts[0]:
        values = [x[f] for x in facts]
        levels = sorted(set(values), key=lambda v: (not _numeric([v]), v if _numeric([v]) else str(v)))
        if _numeric(values) and len(levels) > MAX_LEVELS:
            v = np.asarray(values, dtype=float)
            bins = _bins(v)
            groups = [(f"[{_fmt(lo)}, {_fmt(hi)}{']' if i == len(bins) - 1 else ')'}",
                       (v >= lo) & ((v <= hi) if i == len(bins) - 1 else (v < hi))) for i, (lo, hi) in enumerate(bins)]
        else:
            groups = [(lvl, np.array([x == lvl for x in values])) for lvl in levels]
        for level, mask in groups:
            a = y[mask]
            rows.append(LevelStats(f, level, len(a), float(a.mean()) if len(a) else math.nan,
                                   float(a.std(ddof=1)) if len(a) > 1 else math.nan))
    return rows


@dataclass(frozen=True)
class Condition:
    factor: str
    op: str  # "==", ">=", "<="
    value: object

    def holds(self, facts: dict) -> bool:
        x = facts[self.factor]
        return x == self.value if self.op == "==" else (x >= self.value if self.op == ">=" else x <= self.value)

    def __str__(self) -> str:
        value = _fmt(self.value) if _numeric([self.value]) else self.value
        return f"{self.factor} {self.op} {value}"


def candidates(facts: list[dict]) -> list[Condition]:
    """Every condition a split may use: equality with each level, and for an ordered factor with more
    than two levels, ``>=`` and ``<=`` each inner level (at most MAX_THRESHOLDS quantiles)."""
    out = []
    for f in facts[0]:
        values = [x[f] for x in facts]
        if not _numeric(values):
            levels = sorted(set(values), key=str)
            out += [Condition(f, "==", v) for v in levels] if len(levels) > 1 else []
            continue
        levels = sorted(set(values))
        if len(levels) < 2:
            continue
        if len(levels) <= MAX_LEVELS:
            out += [Condition(f, "==", v) for v in levels]
        if len(levels) > 2:
            cuts = levels
            if len(levels) > MAX_THRESHOLDS:
                q = np.quantile(np.asarray(values, dtype=float), np.linspace(0, 1, MAX_THRESHOLDS + 1))
                cuts = sorted({min(lv for lv in levels if lv >= x) for x in q})
            out += [Condition(f, ">=", v) for v in cuts if v != levels[0]]
            out += [Condition(f, "<=", v) for v in cuts if v != levels[-1]]
    return out


def condition_masks(facts: list[dict], conds: list[Condition]) -> np.ndarray:
    """Which architectures each condition holds for (conditions x architectures)."""
    columns = {f: np.array([x[f] for x in facts], dtype=object) for f in facts[0]}
    out = np.zeros((len(conds), len(facts)), dtype=bool)
    for i, c in enumerate(conds):
        x = columns[c.factor]
        out[i] = x == c.value if c.op == "==" else (x >= c.value if c.op == ">=" else x <= c.value)
    return out


def simplify(conditions) -> tuple[Condition, ...]:
    """The same kept set with one condition per factor: successive steps on one factor (``d_model >=
    128``, then ``d_model >= 256``) narrow to the tightest one, or to an interval."""
    order, eq, lo, hi = [], {}, {}, {}
    for c in conditions:
        if c.factor not in order:
            order.append(c.factor)
        if c.op == "==":
            eq[c.factor] = c.value
        elif c.op == ">=":
            lo[c.factor] = max(lo.get(c.factor, c.value), c.value)
        else:
            hi[c.factor] = min(hi.get(c.factor, c.value), c.value)
    out = []
    for f in order:
        if f in eq or (f in lo and f in hi and lo[f] == hi[f]):
            out.append(Condition(f, "==", eq[f] if f in eq else lo[f]))
            continue
        out += [Condition(f, ">=", lo[f])] if f in lo else []
        out += [Condition(f, "<=", hi[f])] if f in hi else []
    return tuple(out)


def _node_splits(masks: np.ndarray, min_leaf: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate splits of a node (rows of ``masks``, c x n) leaving both sides >= min_leaf, as
    float masks, their kept sizes, and their candidate indices."""
    n = masks.shape[1]
    nk = masks.sum(axis=1)
    ok = (nk >= min_leaf) & (n - nk >= min_leaf)
    return masks[ok].astype(float), nk[ok].astype(float), np.flatnonzero(ok)


def _max_gain(m: np.ndarray, nk: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each column of ``ys`` (n x k), the largest between-group sum of squares over the splits
    ``m`` whose kept side is better, and which split gave it."""
    n = m.shape[1]
    s = m @ ys
    total = ys.sum(axis=0)
    diff = s / nk[:, None] - (total - s) / (n - nk)[:, None]
    gain = np.where(diff > 0, (nk * (n - nk) / n)[:, None] * diff ** 2, 0.0)
    best = gain.argmax(axis=0)
    return gain[best, np.arange(ys.shape[1])], best


@dataclass(frozen=True)
class Step:
    condition: Condition
    p_value: float  # max-T permutation p-value; for the rejected step, a lower bound when stopped early
    kept: int
    gain: float


def descend(y: np.ndarray, masks: np.ndarray, conds: list[Condition], rng: np.random.Generator, alpha: float,
            permutations: int, max_conditions: int, min_leaf: int) -> tuple[list[Step], Step | None]:
    """The tree descent on oriented targets ``y`` (higher is better): the steps kept, and the best
    split of the step that failed the test (None when no split was possible or the cap was hit)."""
    keep = np.ones(len(y), dtype=bool)
    steps: list[Step] = []
    while len(steps) < max_conditions:
        idx = np.flatnonzero(keep)
        node_y = y[idx]
        m, nk, rows = _node_splits(masks[:, idx], min_leaf)
        if not len(rows):
            return steps, None
        obs, best = _max_gain(m, nk, node_y[:, None])
        which = rows[best]
        if obs[0] <= 0:
            return steps, None
        exceed, done = 0, 0
        while done < permutations:
            k = min(_CHUNK, permutations - done)
            perm = rng.permuted(np.tile(node_y, (k, 1)), axis=1).T
            null, _ = _max_gain(m, nk, perm)
            exceed += int((null >= obs[0] * (1 - 1e-12)).sum())
            done += k
            if (1 + exceed) / (1 + permutations) >= alpha:
                break  # cannot reach alpha any more: the decision is the full run's
        p = (1 + exceed) / (1 + permutations)
        step = Step(conds[which[0]], p, int((keep & masks[which[0]]).sum()), float(obs[0]))
        if p >= alpha:
            return steps, step
        steps.append(step)
        keep &= masks[which[0]]
    return steps, None


@dataclass(frozen=True)
class Rule:
    conditions: tuple[Condition, ...]
    p_values: tuple[float, ...]
    kept: int
    total: int
    kept_mean: float
    kept_min: float  # the worst kept member's target
    population_median: float
    kendall_tau: float
    spearman: float
    topk_hits: dict  # k -> share of the true top-k inside the kept set
    best_outside_rank: int | None  # rank (1 = best) of the best architecture the rule drops
    rejected: Step | None  # the best split of the step that failed the test
    alpha: float
    permutations: int

    @property
    def simplified(self) -> tuple[Condition, ...]:
        return simplify(self.conditions)

    def score(self, facts: dict) -> int:
        """Lexicographic rule score: earlier conditions weigh more (2*[c1] + [c2] for two conditions)."""
        d = len(self.conditions)
        return sum(2 ** (d - 1 - i) for i, c in enumerate(self.conditions) if c.holds(facts))


def check_rule_settings(alpha: float, permutations: int, max_conditions: int, min_leaf: int) -> None:
    if not 0 < alpha < 1:
        raise TrainfreeError(f"alpha must be in (0, 1), got {alpha}")
    if permutations < 1 or (1 / (1 + permutations)) >= alpha:
        raise TrainfreeError(f"{permutations} permutations cannot give a p-value below alpha {alpha}: "
                             f"use at least {math.ceil(1 / alpha)}")
    if max_conditions < 1 or min_leaf < 1:
        raise TrainfreeError(f"max_conditions and min_leaf must be positive, got {max_conditions} and {min_leaf}")


def _oriented(bench: Benchmark) -> np.ndarray:
    return orient(np.array([r.target for r in bench.records], dtype=float), not bench.lower_is_better)


def induce_rule(bench: Benchmark, facts: list[dict] | None = None, alpha: float = 0.01, permutations: int = 999,
                max_conditions: int = 3, min_leaf: int = 5, seed: int = 0, topk: tuple[int, ...] = (10, 50)) -> Rule:
    """The shrinking rule of ``bench`` (see the module docstring), its permutation p-values, and how
    well it ranks: the rule as a lexicographic score against the target, and the top-k it keeps."""
    check_rule_settings(alpha, permutations, max_conditions, min_leaf)
    facts = benchmark_factors(bench) if facts is None else facts
    y = _oriented(bench)
    if not np.isfinite(y).all():
        raise TrainfreeError(f"benchmark {bench.name!r}: the target {bench.target!r} has non-finite values")
    conds = candidates(facts)
    masks = condition_masks(facts, conds)
    with threadpool_limits(1, user_api="blas"):  # small products: BLAS threads cost 20x on a busy machine
        steps, rejected = descend(y, masks, conds, np.random.default_rng(seed), alpha, permutations, max_conditions,
                                  min_leaf)
    chosen = [s.condition for s in steps]
    held = [masks[conds.index(c)] for c in chosen]
    keep = np.logical_and.reduce(held) if held else np.ones(len(y), dtype=bool)
    d = len(chosen)
    score = sum((2 ** (d - 1 - i) * m.astype(int) for i, m in enumerate(held)), np.zeros(len(y), dtype=int))
    target = np.array([r.target for r in bench.records])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = float(stats.kendalltau(score, y).statistic) if d else math.nan
        rho = float(stats.spearmanr(score, y).statistic) if d else math.nan
    order = np.argsort(-y, kind="stable")  # best first
    hits = {k: float(keep[order[:k]].mean()) for k in topk if k <= len(y)}
    outside = [rank + 1 for rank, i in enumerate(order) if not keep[i]]
    kept_t = target[keep]
    return Rule(tuple(chosen), tuple(s.p_value for s in steps), int(keep.sum()), len(y), float(kept_t.mean()),
                float(kept_t.max() if bench.lower_is_better else kept_t.min()), float(np.median(target)),
                tau, rho, hits, outside[0] if outside else None, rejected, alpha, permutations)


@dataclass(frozen=True)
class Stability:
    resamples: int
    seed: int
    same_rule: float  # share of resamples whose (simplified) rule has exactly the full-data rule's conditions
    conditions: dict = field(default_factory=dict)  # condition text -> share of resamples choosing it
    factors: dict = field(default_factory=dict)  # factor -> share of resamples with a condition on it
    lengths: dict = field(default_factory=dict)  # number of conditions -> share of resamples
    rules: dict = field(default_factory=dict)  # rule text ("none" for no condition) -> count


def rule_text(conditions) -> str:
    return " and ".join(str(c) for c in conditions) if conditions else "none"


def rule_stability(bench: Benchmark, rule: Rule, facts: list[dict] | None = None, resamples: int = 100,
                   seed: int = 0, max_conditions: int = 3, min_leaf: int = 5) -> Stability:
    """Refit the rule on ``resamples`` bootstrap resamples (resample b draws its rows and its
    permutations from child b of ``SeedSequence(seed)``) with the rule's alpha and permutations;
    rules are compared in their simplified form. Duplicated rows make a resample look larger than
    it is, so a resample tends to keep more conditions than the full data does."""
    if resamples < 1:
        raise TrainfreeError(f"resamples must be positive, got {resamples}")
    check_rule_settings(rule.alpha, rule.permutations, max_conditions, min_leaf)
    facts = benchmark_factors(bench) if facts is None else facts
    y = _oriented(bench)
    conds = candidates(facts)
    masks = condition_masks(facts, conds)
    found = []
    with threadpool_limits(1, user_api="blas"):
        for child in np.random.SeedSequence(seed).spawn(resamples):
            rng = np.random.default_rng(child)
            rows = rng.integers(len(y), size=len(y))
            steps, _ = descend(y[rows], masks[:, rows], conds, rng, rule.alpha, rule.permutations, max_conditions,
                               min_leaf)
            found.append(simplify(s.condition for s in steps))
    share = lambda counter: {k: v / resamples for k, v in counter.most_common()}  # noqa: E731
    return Stability(resamples, seed,
                     sum(set(f) == set(rule.simplified) for f in found) / resamples,
                     share(Counter(str(c) for f in found for c in f)),
                     share(Counter(fac for f in found for fac in dict.fromkeys(c.factor for c in f))),
                     {k: v / resamples for k, v in sorted(Counter(len(f) for f in found).items())},
                     dict(Counter(rule_text(f) for f in found).most_common()))


def caveat(bench: Benchmark) -> str | None:
    """What the benchmark's data cannot show, to print beside its rule."""
    return BERT_CAVEAT if bench.space == "nasbench-bert" else None


@dataclass(frozen=True)
class Analysis:
    benchmark: Benchmark
    table: list[LevelStats]
    rule: Rule
    stability: Stability | None  # None when asked for no resamples

    def summary(self) -> list[str]:
        """What ``trainfree analyze`` prints: the rule, its stability and a compact factor table."""
        b = self.benchmark
        lines = [f"{b.name}: {len(b)} architectures, target {b.target} "
                 f"({'lower' if b.lower_is_better else 'higher'} is better)"]
        lines += summary_lines(b, self.rule, self.stability)
        lines += ["target by factor level (mean ± sd (n)):"] + ["  " + line for line in compact_table(self.table)]
        return lines + ([caveat(b)] if caveat(b) else [])

    def table_rows(self) -> list[dict]:
        return [{"factor": r.factor, "level": r.level, "n": r.n, "mean": r.mean, "sd": r.sd} for r in self.table]

    def markdown(self, command: str) -> str:
        return to_markdown(self.benchmark, self.table, self.rule, command, self.stability)


def analyze_benchmark(bench: Benchmark, alpha: float = 0.01, permutations: int = 999, max_conditions: int = 3,
                      min_leaf: int = 5, resamples: int = 100, seed: int = 0) -> Analysis:
    """Factor table, rule and (with ``resamples`` > 0) its bootstrap stability; ``seed`` seeds the
    rule's permutations and the resamples."""
    facts = benchmark_factors(bench)
    rule = induce_rule(bench, facts, alpha=alpha, permutations=permutations, max_conditions=max_conditions,
                       min_leaf=min_leaf, seed=seed)
    stability = (rule_stability(bench, rule, facts, resamples=resamples, seed=seed, max_conditions=max_conditions,
                                min_leaf=min_leaf) if resamples else None)
    return Analysis(bench, factor_table(bench, facts), rule, stability)


def compact_table(table: list[LevelStats]) -> list[str]:
    """One line per factor: each level's mean, sd and n of the target; factors with one level in one line."""
    lines, by = [], {}
    for r in table:
        by.setdefault(r.factor, []).append(r)
    constant = [f"{f} = {rows[0].level}" for f, rows in by.items() if len(rows) == 1]
    by = {f: rows for f, rows in by.items() if len(rows) > 1}
    width = max((len(f) for f in by), default=0)
    for f, rows in by.items():
        cells = [f"{r.level}: {r.mean:.3f} ± {r.sd:.3f} (n={r.n})" if r.n > 1 else f"{r.level}: {r.mean:.3f} (n={r.n})"
                 for r in rows]
        lines.append(f"{f:{width}s}  " + "; ".join(cells))
    return lines + (["the same in every architecture: " + ", ".join(constant)] if constant else [])


def summary_lines(bench: Benchmark, rule: Rule, stability: Stability | None) -> list[str]:
    """The rule, its p-values and ranking quality, and its stability, as printed by ``analyze``."""
    lines = [f"rule: keep {rule_text(rule.simplified)}" if rule.conditions else
             f"rule: none (no split beats the permutation null at alpha {rule.alpha:g})"]
    if rule.conditions:
        lines.append(f"  steps, with max-T permutation p ({rule.permutations} permutations): "
                     + ", ".join(f"{c} p={p:.3g}" for c, p in zip(rule.conditions, rule.p_values)))
    if rule.rejected is not None:
        lines.append(f"  stopped: the next best split, {rule.rejected.condition}, has p >= {rule.rejected.p_value:.3g} "
                     f"(alpha {rule.alpha:g})")
    lines.append(f"kept {rule.kept}/{rule.total}, mean {rule.kept_mean:.3f}, population median "
                 f"{rule.population_median:.3f}; rule score Kendall tau {rule.kendall_tau:.3f}, Spearman "
                 f"{rule.spearman:.3f}; top-k inside: " + ", ".join(f"top-{k} {v:.2f}" for k, v in rule.topk_hits.items()))
    if stability is not None:
        lines.append(f"stability over {stability.resamples} bootstrap resamples (seed {stability.seed}): same rule "
                     f"{100 * stability.same_rule:.0f}%")
        lines.append("  conditions chosen: " + (", ".join(f"{c} {100 * s:.0f}%" for c, s in stability.conditions.items())
                                               or "none in any resample"))
        lines.append("  factors used: " + (", ".join(f"{c} {100 * s:.0f}%" for c, s in stability.factors.items())
                                          or "none"))
        lines.append("  conditions per rule: " + ", ".join(f"{k}: {100 * s:.0f}%" for k, s in stability.lengths.items()))
    return lines


def to_markdown(bench: Benchmark, table: list[LevelStats], rule: Rule, command: str,
                stability: Stability | None = None) -> str:
    lines = [f"# Search-space analysis: {bench.name}", "",
             f"{len(bench)} architectures, target `{bench.target}` ({'lower' if bench.lower_is_better else 'higher'} "
             f"is better). Command: `{command}`", "", "## Shrinking rule found from the data", ""]
    if rule.conditions:
        lines.append("Keep architectures with " + " and ".join(f"`{c}`" for c in rule.simplified) + ".")
    else:
        lines.append(f"No split beat the permutation null at alpha {rule.alpha:g}: the data suggest no shrinking rule.")
    worst = "worst" if not bench.lower_is_better else "worst (highest)"
    lines += ["",
              f"Each condition is the split of the remaining set with the largest between-group sum of squares "
              f"(its kept side better), kept only if that beats the maximum over all candidate splits under "
              f"{rule.permutations} permutations of the target at alpha {rule.alpha:g}.", ""]
    lines += [f"- step {i + 1}, `{c}`: permutation p = {p:.3g}"
              for i, (c, p) in enumerate(zip(rule.conditions, rule.p_values))]
    if rule.rejected is not None:
        lines.append(f"- stopped: the next best split, `{rule.rejected.condition}`, has p >= {rule.rejected.p_value:.3g}")
    lines += [f"- kept: {rule.kept} of {rule.total} ({100 * rule.kept / rule.total:.0f}%), mean {rule.kept_mean:.3f}, "
              f"{worst} member {rule.kept_min:.3f} (population median {rule.population_median:.3f})",
              f"- rule as a ranking score (lexicographic over its conditions): Kendall tau {rule.kendall_tau:.3f}, "
              f"Spearman {rule.spearman:.3f}",
              "- share of the true top-k inside the kept set: "
              + ", ".join(f"top-{k}: {v:.2f}" for k, v in rule.topk_hits.items()),
              f"- best architecture the rule drops: rank {rule.best_outside_rank}", ""]
    if stability is not None:
        lines += [f"## Stability over {stability.resamples} bootstrap resamples (seed {stability.seed})", "",
                  f"The same rule (these conditions, in any order) in {100 * stability.same_rule:.0f}% of resamples. "
                  "A resample repeats some architectures, which makes it look larger to the permutation test than "
                  "it is, so resamples tend to keep more conditions than the full data.", "",
                  "| condition | share of resamples |", "|---|---|"]
        lines += [f"| `{c}` | {s:.2f} |" for c, s in stability.conditions.items()]
        lines += ["", "| rule found | resamples |", "|---|---|"]
        lines += [f"| {r} | {n} |" for r, n in stability.rules.items()]
        lines.append("")
    if caveat(bench):
        lines += [caveat(bench), ""]
    lines += ["## Target by factor level", "", "| factor | level | n | mean | sd |", "|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r.factor} | {r.level} | {r.n} | {r.mean:.3f} | {r.sd:.3f} |")
    lines.append("")
    return "\n".join(lines)
