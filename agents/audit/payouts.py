"""What a settled task must pay each party, from the pool's parameters and the task's facts.

This is the settlement table of docs/contracts.md (``agents.rules.payouts``, written from the
documentation, not from the pool's Solidity, and held to the chain by the contract tests), read
with the names the audit finds in the events, with what challenges change in it ("Payouts after
challenges"). All amounts round down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from agents.rules import Amounts, Flag, Outcome, payouts

PARTIES = ("submitter", "solver", "verifier", "profiler", "jackpot")
# The outcomes a settlement can have, by their names in Types.sol (``TaskSettled.outcome``).
OUTCOMES = {
    "Passed": Outcome.PASSED,
    "Failed": Outcome.FAILED,
    "Cancelled": Outcome.CANCELLED,
    "Expired": Outcome.EXPIRED,
    "SolverTimedOut": Outcome.SOLVER_TIMED_OUT,
    "Unverified": Outcome.UNVERIFIED,
    "SeedWithheld": Outcome.SEED_WITHHELD,
}


@dataclass(frozen=True)
class Marks:
    """What a task's history left in ``Task.flags`` that changes its payouts.

    ``forfeited``: the verifier forfeits its fee and stake to the jackpot; ``void``: the report
    lost a challenge and its verifier was slashed already (no verifier payout, its fee stays
    with the bounty); ``stake_taken``: the verifier's stake was credited back before settlement
    (a fault report voided by a published state; it gets its fee only); ``slash_awarded``: the
    jackpot's part of a failed
    proof's slashed stake was credited to the challenger that won against it."""

    forfeited: bool = False
    void: bool = False
    stake_taken: bool = False
    slash_awarded: bool = False

    # The bits of ``Task.flags`` (lib/Types.sol ``Flag``) these stand for.
    BITS: ClassVar[dict[str, int]] = {
        "forfeited": Flag.FORFEITED,
        "void": Flag.VOID,
        "slash_awarded": Flag.SLASH_AWARDED,
        "stake_taken": Flag.STAKE_TAKEN,
    }

    @property
    def bits(self) -> int:
        return sum(bit for name, bit in self.BITS.items() if getattr(self, name))

    @classmethod
    def of_bits(cls, flags: int) -> Marks:
        """The marks of a stored ``Task.flags`` (other bits ignored)."""
        return cls(**{name: bool(flags & bit) for name, bit in cls.BITS.items()})

    def names(self) -> str:
        set_ = [name.upper() for name in self.BITS if getattr(self, name)]
        return " | ".join(set_) or "none"


def expected_payouts(
    params: Mapping[str, int],
    outcome: str,
    bounty: int,
    profiled: bool,
    forfeited: bool = False,
    marks: Marks | None = None,
    taxed: bool = False,
) -> dict[str, int] | None:
    """Each party's payout for ``outcome`` (``None`` for an outcome the table does not know).

    ``forfeited``: the verifier of a Pass or a Fail did not reveal its secret in time, or
    revealed a report it should have falsified (or one it disowns); its fee and stake go to
    the jackpot. ``marks``: what challenges changed (see :class:`Marks`; its ``forfeited``
    is the same as the argument's). ``taxed``: the verifier made the task's first verification
    claim, the one report that may be forced: when it is paid, it pays the forced-error tax
    (``forcedErrorTaxBps`` of the bounty, none when ``forcedErrorPpm`` is zero) to the jackpot."""
    known = OUTCOMES.get(outcome)
    if known is None:
        return None
    flags = (marks or Marks()).bits | (Flag.FORFEITED if forfeited else 0)
    paid = payouts(known, Amounts.of(bounty, params), profiled, params, flags=flags, taxed=taxed)
    return {party: getattr(paid, party) for party in PARTIES}


def verdict_of(distances: list[int], threshold: int) -> str:
    """The pool's verdict on reported distances: Pass iff every bit pattern is at most τ's
    (distances carry no sign bit, so integer order is numeric order and NaN fails)."""
    return "Pass" if all(d <= threshold for d in distances) else "Fail"


def outcome_of_verdict(verdict: str) -> str:
    """The outcome a verdict settles to once its challenge window is over."""
    return {"Pass": "Passed", "Fail": "Failed"}.get(verdict, "None")
