"""An architecture that is a flat dict of config values (factory spaces, Hugging Face config spaces)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FactoryArch:
    """One config: the searched fields and their values, in field order."""
    items: tuple[tuple[str, Any], ...]

    @property
    def config(self) -> dict:
        return dict(self.items)

    def to_dict(self) -> dict:
        return self.config

    def canonical_json(self) -> str:
        return json.dumps(self.config, sort_keys=True, separators=(",", ":"))

    @property
    def arch_id(self) -> str:
        return hashlib.sha1(self.canonical_json().encode()).hexdigest()[:16]
