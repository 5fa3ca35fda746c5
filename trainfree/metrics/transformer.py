"""The paper's transformer metrics on NAS-Bench-BERT encoders (Serianni & Kalita 2023; docs/metrics.md).

One forward in train mode (dropout on, its masks seeded) feeds every metric. Gradient metrics
differentiate R = sum(y * c) for a cotangent c. By default c ~ N(0, 1), drawn once under the seed:
the paper's c = 1 (R = sum of the last hidden state) ends in a LayerNorm whose outputs sum to a
constant, so its true gradient is exactly zero and those metrics measure float round-off. The
paper's variant stays available under the ``_ones`` names. "_n" metrics divide by the number of
tensors summed, as the paper's "Normalized" columns do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from trainfree.metrics.base import metric
from trainfree.probe import Probe
from trainfree.metrics.jacobian import jacobian_cosine as _row_cosine
from trainfree.linalg import binary_code_kernel, correlation_rows, eig_score
from trainfree.spaces.bert.ops import LinearTransform, MixedAttention, SelfAttention

REQUIRES = {"encoder_ops"}  # the NAS-Bench-BERT encoder's ops, FFNs and softmaxes


def _op_linears(layer, dsc_extras: tuple[str, ...] = ()) -> list[nn.Linear]:
    """The op's projections: q, k, v (+ W_w for WMA), or the LT map; plus the named DSC extras."""
    op = layer.op
    if isinstance(op, LinearTransform):
        return [op.dense]
    mods = [op.query, op.key, op.value]
    if isinstance(op, SelfAttention) and op.weight is not None:
        mods.append(op.weight)
    if isinstance(op, MixedAttention):
        mods += [getattr(op, name) for name in dsc_extras]
    return mods


def _mixing_linears(layer) -> list[nn.Linear]:
    """Token-mixing Linears (synaptic diversity): the op's, DSC's kernel and conv-out maps, and W_o."""
    mods = _op_linears(layer, ("kernel_layer", "conv_out"))
    return mods if isinstance(layer.op, LinearTransform) else mods + [layer.output]


def _head_linears(layer) -> list[nn.Linear]:
    """Wide projections (head importance): q, k, v (+ W_w), the LT map, DSC's conv-out map."""
    return _op_linears(layer, ("conv_out",))


def _confidence_linears(layer) -> list[nn.Linear]:
    """Projections whose outputs head confidence reads: q, k, v (+ W_w), the LT map."""
    return _op_linears(layer)


def _ffn_linears(layer) -> list[nn.Linear]:
    return [layer.ffn_in, *layer.ffn_hidden, layer.ffn_out]


@dataclass
class ForwardStats:
    head_confidence: list[float] = field(default_factory=list)  # one per hooked projection
    softmax_confidence: list[float] = field(default_factory=list)  # one per layer
    activation_distance: list[float] = field(default_factory=list)  # one per FFN GELU call
    first_projection_sq: list[float] = field(default_factory=list)  # per layer: mean(z^2) of its op's first projection


def forward_stats(probe: Probe) -> ForwardStats:
    """One seeded train-mode forward with hooks (no gradients)."""
    def compute() -> ForwardStats:
        model, out = probe.model, ForwardStats()
        handles = []

        def on_projection(_m, _inp, z):  # mean over (batch, unit) of the max over the sequence
            out.head_confidence.append(float(z.detach().amax(dim=1).mean()))

        def on_softmax(_m, _inp, p):  # mean over the rest of the max over heads (dim 1)
            out.softmax_confidence.append(float(p.detach().amax(dim=1).mean()))

        def on_first(_m, _inp, z):  # LPZero's BERT input: the op's first projection (q, or the LT map)
            out.first_projection_sq.append(float(z.detach().double().pow(2).mean()))

        def on_gelu(_m, _inp, a):  # sum of the token x token binary-code kernel of the first sequence
            out.activation_distance.append(float(binary_code_kernel(a[0].detach() > 0).sum()))  # (T, F) codes

        for layer in model.layers:
            handles += [m.register_forward_hook(on_projection) for m in _confidence_linears(layer)]
            handles.append(_op_linears(layer)[0].register_forward_hook(on_first))
            handles.append(layer.op.softmax.register_forward_hook(on_softmax))
            handles.append(layer.act.register_forward_hook(on_gelu))
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=_devices(probe)):
                torch.manual_seed(probe.settings.seed)  # the dropout masks
                stats_pass(model, probe.inputs)
        finally:
            for h in handles:
                h.remove()
        return out

    return probe.cached("bert_forward_stats", compute)


def stats_pass(model, tokens: torch.Tensor, lean: bool = True) -> None:
    """The forward that forward_stats' hooks watch. Lean: the last layer's FFN runs on the first sequence
    only and its output map, dropout and LayerNorm are skipped. Past the last layer's mixing the hooks
    read only the first sequence's GELU codes, and nothing after it draws from the RNG, so every hooked
    value is the full forward's; it saves a quarter to a half of the FFN work (docs/performance.md)."""
    if not lean or not model.layers:
        model(tokens)
        return
    h = model.embed(tokens)
    for layer in model.layers[:-1]:
        h = layer(h)
    last = model.layers[-1]
    last.ffn_activations(last.mix(h)[:1])


def _devices(probe: Probe) -> list:
    return [probe.device] if probe.device.type == "cuda" else []


def gradients(probe: Probe, cotangent: str) -> dict:
    """dR/dW for every Linear weight the metrics read and dR/d(position table), R = sum(y * c)."""
    def compute() -> dict:
        model = probe.model
        linears = [m for layer in model.layers for m in
                   dict.fromkeys(_mixing_linears(layer) + _head_linears(layer) + _ffn_linears(layer))]
        weights = [m.weight for m in linears] + [model.position.weight]
        with torch.enable_grad(), torch.random.fork_rng(devices=_devices(probe)):
            torch.manual_seed(probe.settings.seed)  # the same dropout masks as forward_stats
            y = model(probe.inputs)
            if cotangent == "ones":
                c = torch.ones_like(y)
            else:
                gen = torch.Generator().manual_seed(probe.settings.seed)
                c = torch.randn(y.shape, generator=gen, dtype=y.dtype).to(y.device)
            grads = torch.autograd.grad((y * c).sum(), weights, materialize_grads=True)
        by_module = {id(m): g.detach() for m, g in zip(linears, grads)}
        return {"linear": by_module, "position": grads[-1].detach()[: probe.inputs.shape[1]]}

    return probe.cached(("bert_gradients", cotangent), compute)


def _nuclear(w: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(w.double(), ord="nuc"))


def _saliency(m: nn.Linear, g: torch.Tensor) -> float:
    return float((m.weight.detach().double() * g.double()).abs().sum())


def synaptic_diversity_terms(probe: Probe, cotangent: str) -> list[float]:
    def compute():
        grads = gradients(probe, cotangent)["linear"]
        return [_nuclear(m.weight.detach()) * _nuclear(grads[id(m)])
                for layer in probe.model.layers for m in _mixing_linears(layer)]

    return probe.cached(("synaptic_diversity_terms", cotangent), compute)


def ffn_saliency_terms(probe: Probe, cotangent: str) -> list[float]:
    def compute():
        grads = gradients(probe, cotangent)["linear"]
        return [_saliency(m, grads[id(m)]) for layer in probe.model.layers for m in _ffn_linears(layer)]

    return probe.cached(("ffn_saliency_terms", cotangent), compute)


def head_importance_terms(probe: Probe, cotangent: str) -> list[float]:
    def compute():
        grads = gradients(probe, cotangent)["linear"]
        return [_saliency(m, grads[id(m)]) for layer in probe.model.layers for m in _head_linears(layer)]

    return probe.cached(("head_importance_terms", cotangent), compute)


def jacobian_dims(probe: Probe, cotangent: str) -> torch.Tensor:
    """(E, T): each embedding dimension's gradient over the positions fed."""
    return gradients(probe, cotangent)["position"].t()


def _register(name: str, terms, doc: str, column: str, higher: bool = True) -> None:
    for cot, suffix in (("random", ""), ("ones", "_ones")):
        for normalise, tail in ((False, ""), (True, "_n")):
            def fn(probe: Probe, cot=cot, normalise=normalise) -> float:
                values = terms(probe, cot)
                return sum(values) / len(values) if normalise else sum(values)

            fn.__doc__ = (doc + (" Mean over the tensors summed." if normalise else "")
                          + (" Paper variant: cotangent ones (degenerate: float round-off)." if cot == "ones"
                             else " Cotangent: a seeded N(0, 1) draw."))
            published = f"{column} Normalized" if cot == "ones" and normalise else None
            metric(f"{name}{suffix}{tail}", higher_is_better=higher, requires=REQUIRES, backward=True,
                   published_column=published)(fn)


_register("synaptic_diversity", synaptic_diversity_terms,
          "Synaptic diversity: sum over the token-mixing Linears of ||W||_* ||dR/dW||_* (nuclear norms).",
          "Synaptic Diversity")
_register("bert_synaptic_saliency", ffn_saliency_terms,
          "Synaptic saliency of the FFN Linears: sum |W * dR/dW|.", "Synaptic Saliency")
_register("head_importance", head_importance_terms,
          "Head importance: sum |W * dR/dW| over the op's q, k, v (+ W_w), LT map and DSC conv-out Linears.",
          "Head Importance")

for _cot, _suffix in (("random", ""), ("ones", "_ones")):
    def _jac_score(probe: Probe, cot=_cot) -> float:
        return eig_score(correlation_rows(jacobian_dims(probe, cot).t()))

    def _jac_cosine(probe: Probe, cot=_cot) -> float:
        dims = jacobian_dims(probe, cot)  # (E, T) rows
        return _row_cosine(dims[None])  # (1, E, T): one row per embedding dimension

    _jac_score.__doc__ = ("Jacobian score: eigen score of the correlation between embedding dimensions of "
                          "dR/d(position table) over the positions fed." + (" Cotangent ones (paper)." if _cot == "ones" else ""))
    _jac_cosine.__doc__ = ("Jacobian cosine of the same rows (the paper's 'Jacobian Score Normalized' column)."
                           + (" Cotangent ones (paper)." if _cot == "ones" else ""))
    metric(f"bert_jacobian_score{_suffix}", higher_is_better=True, requires=REQUIRES, backward=True,
           published_column="Jacobian Score" if _cot == "ones" else None)(_jac_score)
    metric(f"bert_jacobian_cosine{_suffix}", higher_is_better=True, requires=REQUIRES, backward=True,
           published_column="Jacobian Score Normalized" if _cot == "ones" else None)(_jac_cosine)


def _forward_metric(name: str, attr: str, doc: str, column: str) -> None:
    for normalise, tail in ((False, ""), (True, "_n")):
        def fn(probe: Probe, normalise=normalise) -> float:
            values = getattr(forward_stats(probe), attr)
            if not values:
                return math.nan
            return sum(values) / len(values) if normalise else sum(values)

        fn.__doc__ = doc + (" Mean over the terms summed." if normalise else "")
        metric(f"{name}{tail}", higher_is_better=True, requires=REQUIRES,
               published_column=f"{column} Normalized" if normalise else None)(fn)


_forward_metric("head_confidence", "head_confidence",
                "Head confidence: sum over q, k, v (+ W_w) and LT-map outputs of mean_(b, unit) max_t Z.",
                "Head Confidence")
_forward_metric("head_softmax_confidence", "softmax_confidence",
                "Head softmax confidence: sum over layers of the mean over the rest of the max over heads of the "
                "layer's softmax output.", "Head Softmax Confidence")
_forward_metric("bert_activation_distance", "activation_distance",
                "Activation distance: sum over FFN GELU calls of the sum of the token x token binary-code kernel "
                "of the first sequence (not a log-determinant).", "Activation Distance")
