"""Settings that change a metric's number, and their fingerprint."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace


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

    def identity(self, device_type: str | None = None) -> dict:
        """The fields that change a number: all but the device, and the device type where a space's
        numbers depend on it (given, and not the CPU: CPU fingerprints stay those of earlier versions)."""
        fields = asdict(self)
        fields.pop("device")
        if device_type is not None and device_type != "cpu":
            fields["device_type"] = device_type
        return fields

    def fingerprint(self, device_type: str | None = None) -> str:
        """Prefer ``space.fingerprint(settings)``, which passes the device type where it matters."""
        text = json.dumps(self.identity(device_type), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def resolved_device(self) -> "torch.device":
        import torch  # here, not at the top: `trainfree --help` must not import torch

        from trainfree.errors import TrainfreeError

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except (RuntimeError, ValueError):
            raise TrainfreeError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise TrainfreeError(f"device {self.device!r} requested but CUDA is not available")
        return device

    def with_(self, **changes) -> "ScoreSettings":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)
