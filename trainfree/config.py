"""Settings that change a metric's number, and their fingerprint."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from trainfree.errors import InvalidSetting

#: seeds are 32-bit: numpy's legacy and torch's generators agree on that range, and a seed beyond it
#: would otherwise fail inside every model build instead of once, up front
MAX_SEED = 2**32 - 1
#: floating-point types a model can be built in (torch.<name>)
DTYPES = ("float32", "float64", "bfloat16", "float16")
DEVICE_HELP = "auto (CUDA when present), cpu, cuda or cuda:N"


def check_seed(seed, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidSetting(f"{name} must be an integer from 0 to {MAX_SEED} (2**32 - 1), got {str(seed)[:40]}")
    return seed


def check_device(device) -> str:
    """The device's spelling only (no torch import); whether CUDA is there is :meth:`ScoreSettings.resolved_device`'s."""
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:[0-9]{1,4})?", device, flags=re.ASCII):
        raise InvalidSetting(f"device {str(device)[:40]!r} is not supported; use {DEVICE_HELP}")
    return device


def is_file_name(corpus: str) -> bool:
    """A corpus given as a path to a text file rather than a shipped name (``ptb``, ``wikitext-2``)."""
    return isinstance(corpus, str) and ("/" in corpus or "\\" in corpus or corpus.endswith((".txt", ".tokens")))


_digests: dict[tuple, str] = {}


def file_identity(path: str) -> str:
    """``file:`` and 16 hex digits of the SHA-1 of the file's bytes (cached by path, size and mtime)."""
    import os

    try:
        st = os.stat(path)
    except OSError as err:
        raise InvalidSetting(f"{path}: cannot read ({err.strerror or err})") from None
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha1()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _digests[key] = "file:" + digest.hexdigest()[:16]
    return _digests[key]


def fingerprint_of(identity: dict) -> str:
    """12 hex digits of the SHA-1 of ``identity`` as sorted JSON."""
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ScoreSettings:
    """Everything besides the architecture and the metric that a score depends on.

    Defaults are the paper's protocol on NAS-Bench-NLP: the paper-size model built under seed 0,
    and the first 70 tokens of each of the 50 columns of the batchified PTB test split.
    """

    seed: int = 0
    size: str = "paper"
    corpus: str = "ptb"
    split: str = "test"
    batch_size: int = 50
    seq_len: int = 70
    offset: int = 0
    dtype: str = "float32"
    device: str = "auto"  # where it runs; not part of the fingerprint
    #: a `tokenizers` JSON file (read offline) for the spaces that tokenise subwords; "" = the shipped WordPiece
    tokenizer: str = ""

    def __post_init__(self):
        check_seed(self.seed)
        check_device(self.device)
        if self.dtype not in DTYPES:
            raise InvalidSetting(f"dtype {str(self.dtype)[:40]!r} is not supported; choose from: {', '.join(DTYPES)}")
        if not isinstance(self.tokenizer, str):
            raise InvalidSetting(f"tokenizer must be a path (a string), got {type(self.tokenizer).__name__}")

    def identity(self, device_type: str | None = None) -> dict:
        """The fields that change a number: all but the device, and the device type where a space's
        numbers depend on it (given, and not the CPU: CPU fingerprints stay those of earlier versions).
        A corpus or tokenizer given as a file is identified by its content (``file:`` and the SHA-1 of the
        bytes), not by its path; no tokenizer leaves the field out (fingerprints of earlier versions)."""
        fields = asdict(self)
        fields.pop("device")
        if not fields["tokenizer"]:
            fields.pop("tokenizer")
        else:
            fields["tokenizer"] = file_identity(fields["tokenizer"])
        if is_file_name(fields["corpus"]):
            fields["corpus"] = file_identity(fields["corpus"])
        if device_type is not None and device_type != "cpu":
            fields["device_type"] = device_type
        return fields

    def fingerprint(self, device_type: str | None = None) -> str:
        """Prefer ``space.fingerprint(settings)``, which adds the device type and the space's model
        version where they matter."""
        return fingerprint_of(self.identity(device_type))

    def resolved_device(self) -> "torch.device":
        import torch  # here, not at the top: `trainfree --help` must not import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(check_device(self.device))
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InvalidSetting(f"device {self.device!r} requested but CUDA is not available; use cpu or auto")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise InvalidSetting(f"device {self.device!r} requested but there are {torch.cuda.device_count()} CUDA "
                                 f"devices (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
        return device

    def with_(self, **changes) -> "ScoreSettings":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)
