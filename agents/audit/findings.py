"""One claim of the chain, checked: what the chain says, what the auditor found, whether it
holds (the unit of every audit: a task's and a game's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.audit.errors import DIFFERS, HOLDS


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


class Checked:
    """An audit's answer from its findings (a task's, a game's): it holds when every one does."""

    findings: list[Finding]

    @property
    def holds(self) -> bool:
        return all(f.holds for f in self.findings)

    @property
    def exit_code(self) -> int:
        return HOLDS if self.holds else DIFFERS

    def differences(self) -> list[Finding]:
        return [f for f in self.findings if not f.holds]

    def add(self, area: str, claim: str, chain: object, audit: object, holds: bool) -> None:
        self.findings.append(Finding(area, claim, str(chain), str(audit), holds))
