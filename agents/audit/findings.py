"""One claim of the chain, checked: what the chain says, what the auditor found, whether it
holds (the unit of every audit: a task's and a game's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One claim of the chain, checked."""

    area: str
    claim: str
    chain: str
    audit: str
    holds: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "claim": self.claim,
            "chain": self.chain,
            "audit": self.audit,
            "holds": self.holds,
        }
