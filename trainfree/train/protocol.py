"""Training protocols (one per space, looked up by name) and budgets.

A protocol fixes everything that changes a trained number except the architecture, the seed and the
budget: model size, corpus, batching, optimiser, regularisers and how validation is measured. Its
``fingerprint`` keys stored results. Schedules never depend on the total budget (constant learning
rate after an optional warm-up), so the validation loss recorded at step s of a long run is the one a
run of s steps gives: one run yields every shorter fidelity, and a longer budget resumes a shorter run.

A space without a registered protocol is trained by the generic causal-LM protocol when it provides
the ``lm_loss`` artefact and reads its batch window through the ``split`` and ``offset`` settings
(``trainfree.spaces.base``): the model's ``proxy_loss(inputs, targets)`` is the training loss.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from trainfree.config import fingerprint_of
from trainfree.errors import TrainfreeError, UnknownName
from trainfree.registry import Registry

#: budget units: optimiser steps, training tokens (inputs fed), or CPU-seconds of training (process time)
UNITS = ("steps", "tokens", "cpu-seconds")
#: how a protocol trains: its batches and its step (trainfree.train.loop.TRAINERS)
TRAINERS = ("awd-lstm", "window-lm", "wordpiece-mlm")


@dataclass(frozen=True)
class Protocol:
    name: str
    space: str
    trainer: str  # one of TRAINERS
    size: str
    corpus: str
    batch_size: int
    seq_len: int
    lr: float
    weight_decay: float
    optimizer: str = "adam"  # adam (L2 added to the gradient, as torch.optim.Adam) or adamw (decoupled)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip: float = 0.0  # gradient-norm clip (0: none)
    warmup_steps: int = 0  # linear warm-up, then constant
    eval_batch_size: int = 50
    eval_tokens: int = 20_000  # validation tokens read from the start of the valid split at every record
    #: trainer options (dropouts, regularisers), as sorted (name, value) pairs so the protocol stays hashable
    options: tuple = field(default=())
    version: str = "1"
    source: str = ""  # where the recipe comes from (for the docs and the benchmark files)

    def __post_init__(self):
        if self.trainer not in TRAINERS:
            raise TrainfreeError(f"protocol {self.name!r}: unknown trainer {self.trainer!r}; choose from: "
                                 f"{', '.join(TRAINERS)}")
        if self.optimizer not in ("adam", "adamw"):
            raise TrainfreeError(f"protocol {self.name!r}: optimizer must be adam or adamw, got {self.optimizer!r}")
        for name in ("batch_size", "seq_len", "eval_batch_size", "eval_tokens"):
            if getattr(self, name) < 1:
                raise TrainfreeError(f"protocol {self.name!r}: {name} must be positive, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TrainfreeError(f"protocol {self.name!r}: lr must be positive, got {self.lr}")

    def option(self, name: str, default=None):
        return dict(self.options).get(name, default)

    def with_(self, **changes) -> "Protocol":
        return replace(self, **changes)

    def identity(self) -> dict:
        out = asdict(self)
        out.pop("source")
        out["options"] = dict(self.options)
        version = _model_version(self.space)
        if version != 1:  # a rebuilt model family trains differently: it must not reuse older runs
            out["model_version"] = version
        return out

    def fingerprint(self) -> str:
        return fingerprint_of(self.identity())


def _model_version(space_name: str) -> int:
    from trainfree.spaces import get_space

    try:
        return get_space(space_name).model_version
    except UnknownName:  # a protocol written for a space not registered here: nothing to compare against
        return 1


@dataclass(frozen=True)
class Budget:
    """Where a run stops (``value`` in ``unit``) and where along the way it records validation loss."""
    unit: str
    points: tuple[float, ...]  # ascending; the last is the stop

    def __post_init__(self):
        if self.unit not in UNITS:
            raise TrainfreeError(f"unknown budget unit {self.unit!r}; choose from: {', '.join(UNITS)}")
        if not self.points:
            raise TrainfreeError("a budget needs at least one point")
        for p in self.points:
            if not p > 0 or p != p or p == float("inf"):
                raise TrainfreeError(f"budget points must be positive and finite, got {p}")
        if list(self.points) != sorted(set(self.points)):
            raise TrainfreeError(f"budget points must be distinct and ascending, got {list(self.points)}")

    @classmethod
    def of(cls, value: float, unit: str = "steps", record_at=()) -> "Budget":
        points = sorted({float(v) for v in record_at if float(v) < float(value)} | {float(value)})
        return cls(unit, tuple(points))

    @property
    def stop(self) -> float:
        return self.points[-1]

    def label(self, point: float | None = None) -> str:
        v = self.stop if point is None else point
        return f"{v:g} {self.unit}"


PROTOCOLS: Registry[Protocol] = Registry("training protocol")


def register_protocol(protocol: Protocol, default: bool = True) -> Protocol:
    """Add a protocol; ``default`` makes it the one ``protocol_for(space)`` gives."""
    PROTOCOLS.add(protocol.name, protocol)
    if default:
        _DEFAULTS[protocol.space] = protocol.name
    return protocol


_DEFAULTS: dict[str, str] = {}

#: NAS-Bench-NLP's main_one_model_train.py / train.py (github.com/fmsnew/nas-bench-nlp-release):
#: torch.optim.Adam(lr 1e-3, weight_decay 1.2e-6), batch 20, bptt 70 (randomised as AWD-LSTM does),
#: clip 0.25, dropouts 0.4 / 0.25 / 0.4 / 0.1 and weight drop 0.5, AR alpha 2 and TAR beta 1,
#: validation at batch 50, the hidden state carried across windows.
AWD_OPTIONS = (("alpha", 2.0), ("beta", 1.0), ("dropout", 0.4), ("dropoute", 0.1), ("dropouth", 0.25),
               ("dropouti", 0.4), ("wdrop", 0.5))
NASBENCH_NLP = Protocol(
    name="nasbench-nlp", space="nasbench-nlp", trainer="awd-lstm", size="paper", corpus="ptb", batch_size=20,
    seq_len=70, lr=1e-3, weight_decay=1.2e-6, optimizer="adam", clip=0.25, eval_batch_size=50, eval_tokens=14_000,
    options=AWD_OPTIONS,
    source="NAS-Bench-NLP main_one_model_train.py (Adam, lr 1e-3, wd 1.2e-6) and train.py (AWD-LSTM loop)")
#: a cheaper fidelity for CPU budgets of a minute: the benchmark's optimiser, rate, batching, clipping and
#: AR/TAR, at the "small" size (emsize 128, nhid 192), without the dropouts (they regularise 50-epoch
#: runs; in a fraction of an epoch they only slow learning, and with weight drop's doubled recurrent
#: weights small cells the benchmark trained diverged within 20 steps), validated on 5,000 tokens.
#: Option ``unigram_bias`` (start the output bias at the train split's log unigram distribution) is
#: available; docs/fidelity.md says why it is off.
NASBENCH_NLP_SHORT = NASBENCH_NLP.with_(
    name="nasbench-nlp-short", size="small", eval_tokens=5_000, options=(("alpha", 2.0), ("beta", 1.0)),
    source="NAS-Bench-NLP's recipe (Adam 1e-3, wd 1.2e-6, batch 20, bptt 70, clip 0.25, AR 2 / TAR 1) at the "
           "small size, without dropout")
#: ELECTRA-small's optimiser settings (AdamW, lr 5e-4, wd 0.01, eps 1e-6, clip 1; docs/metrics.md) on
#: masked-LM alone, without the generator/discriminator pair, at the genotype's own sizes, on WikiText-2
NASBENCH_BERT = Protocol(
    name="nasbench-bert", space="nasbench-bert", trainer="wordpiece-mlm", size="as-specified", corpus="wikitext-2",
    batch_size=16, seq_len=128, lr=5e-4, weight_decay=0.01, optimizer="adamw", eps=1e-6, clip=1.0, warmup_steps=50,
    eval_batch_size=16, eval_tokens=16 * 128 * 4, options=(("mask_rate", 0.15),),
    source="ELECTRA-small optimiser settings (NAS-Bench-BERT's TensorFlow code), masked-LM objective")
#: causal LM with AdamW (the LTS recipe's optimiser family) at a constant rate after a short warm-up
DECODER = Protocol(
    name="decoder", space="decoder", trainer="window-lm", size="paper", corpus="wikitext-2", batch_size=16,
    seq_len=64, lr=1e-3, weight_decay=0.01, optimizer="adamw", clip=0.25, warmup_steps=50, eval_batch_size=16,
    eval_tokens=16 * 64 * 8, source="causal LM on WikiText-2 (frequency-ranked ids, the space's own batches)")

for _p in (NASBENCH_NLP, NASBENCH_BERT, DECODER):
    register_protocol(_p)
register_protocol(NASBENCH_NLP_SHORT, default=False)


def generic_protocol(space) -> Protocol:
    """Causal LM through the space's own batches and ``proxy_loss``: for a space with no protocol of its
    own that provides ``lm_loss`` and reads ``split`` and ``offset``."""
    missing = [a for a in ("lm_loss",) if a not in space.provides]
    unread = [s for s in ("split", "offset") if s not in space.uses]
    if missing or unread:
        why = (f"it does not provide {', '.join(missing)}" if missing else
               f"its batches do not read the {', '.join(unread)} setting(s)")
        raise TrainfreeError(f"space {space.name!r} cannot be trained: no protocol is registered for it and {why} "
                             f"(register one with trainfree.train.register_protocol)")
    base = space.default_settings()
    return Protocol(name=f"{space.name}-lm", space=space.name, trainer="window-lm", size=base.size,
                    corpus=base.corpus, batch_size=base.batch_size, seq_len=base.seq_len, lr=1e-3,
                    weight_decay=0.01, optimizer="adamw", clip=1.0, warmup_steps=50,
                    eval_batch_size=base.batch_size, eval_tokens=base.batch_size * base.seq_len * 8,
                    source="generic causal LM: the space's own batches and proxy_loss")


def protocol_for(space_name: str, name: str | None = None, **overrides) -> Protocol:
    """The protocol ``name`` (default: the space's own, else the generic causal-LM one), with
    ``overrides`` (size, corpus, batch_size, ...) applied; None values are ignored."""
    from trainfree.spaces import get_space

    space = get_space(space_name)
    if name is not None:
        protocol = PROTOCOLS.get(name)
        if protocol.space != space.name:
            raise TrainfreeError(f"protocol {name!r} is for space {protocol.space!r}, not {space.name!r}")
    elif space.name in _DEFAULTS:
        protocol = PROTOCOLS.get(_DEFAULTS[space.name])
    else:
        protocol = generic_protocol(space)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        unknown = set(changes) - set(Protocol.__dataclass_fields__)
        if unknown:
            raise TrainfreeError(f"unknown protocol field(s): {', '.join(sorted(unknown))}")
        protocol = protocol.with_(**changes)
    if protocol.size not in space.sizes:
        raise TrainfreeError(f"protocol {protocol.name!r}: space {space.name!r} has no size {protocol.size!r} "
                             f"(choose from: {', '.join(space.sizes)})")
    return protocol
