"""Shape baselines: what practitioners read off a decoder's shape, as metrics every training-free signal
must beat besides the parameter counts (docs/decoders.md).

None builds a model: they read the space's ``shape`` artefact (depth, width, heads, MLP width) or its
parameter counts (``Probe.param_counts``, counted on the meta device where models are large). Sources:
depth and the aspect ratio as factors of the loss, MobileLLM (Liu et al., ICML 2024: at equal size,
deep-and-thin wins below a billion parameters) and the Gemstones paper (McLeish et al., NeurIPS 2025:
the aspect ratio in the scaling law); ``depth_width_sq``, the analytic non-embedding size of a standard
block stack, Kaplan et al. 2020 (N = 12 n_layer d_model^2).
"""
from __future__ import annotations

from trainfree.metrics.base import metric
from trainfree.probe import Probe


@metric("depth", higher_is_better=True, requires={"shape"})
def depth(probe: Probe) -> float:
    """Number of blocks (layers): at equal size deeper decoders train better (MobileLLM, Gemstones)."""
    return float(probe.shape()["depth"])


@metric("width", higher_is_better=True, requires={"shape"})
def width(probe: Probe) -> float:
    """Model dimension (d_model, hidden_size)."""
    return float(probe.shape()["width"])


@metric("aspect_ratio", higher_is_better=False, requires={"shape"})
def aspect_ratio(probe: Probe) -> float:
    """Width over depth (d_model / n_layer); lower is taken as better: deep and thin (MobileLLM)."""
    shape = probe.shape()
    return float(shape["width"] / shape["depth"])


@metric("depth_width_sq", higher_is_better=True, requires={"shape"})
def depth_width_sq(probe: Probe) -> float:
    """n_layer x d_model^2: the analytic non-embedding size of a block stack, up to its constant (Kaplan 2020: 12)."""
    shape = probe.shape()
    return float(shape["depth"] * shape["width"] ** 2)


@metric("embedding_params", higher_is_better=True, requires={"parameters", "parameter_groups"}, counts_only=True)
def embedding_params(probe: Probe) -> float:
    """Parameters of the space's 'embedding' group (token and position tables, an untied LM head)."""
    return float(probe.param_counts()["embedding"])
