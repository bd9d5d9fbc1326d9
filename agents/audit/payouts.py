"""What a settled task must pay each party, from the pool's parameters and the task's facts.

This is the settlement table of docs/contracts.md, written again from the documentation, so
that an audit does not take the pool's own arithmetic on trust, with what challenges change in
it ("Payouts after challenges"). All amounts round down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

BPS = 10_000
PARTIES = ("submitter", "solver", "verifier", "profiler", "jackpot")


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
        "forfeited": 4,
        "void": 32,
        "slash_awarded": 64,
        "stake_taken": 128,
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

    def share(amount: int, name: str) -> int:
        return amount * int(params[name]) // BPS

    marks = marks or Marks()
    forfeited = forfeited or marks.forfeited
    fee = 0 if marks.void else share(bounty, "verificationFeeBps")
    accepted = outcome not in ("Cancelled", "Expired")
    profile_fee = share(bounty, "profileFeeBps") if profiled and accepted else 0
    profiler = profile_fee + share(bounty, "profilerStakeBps") if profiled else 0
    stake = share(bounty, "solverStakeBps")
    verifier_stake = share(bounty, "verifierStakeBps")
    to_submitter = share(stake, "slashToSubmitterBps")
    # A voided report's verifier was slashed when it lost; a stake credited back before
    # settlement is not paid out again.
    owed = 0 if marks.void else fee if marks.stake_taken else fee + verifier_stake
    verifier, lost = (0, owed) if forfeited else (owed, 0)
    if taxed and verifier and int(params.get("forcedErrorPpm", 0)):
        tax = share(bounty, "forcedErrorTaxBps")
        verifier, lost = verifier - tax, tax
    # The jackpot's part of a failed proof's stake went to the challenger that won against it.
    slashed = 0 if marks.slash_awarded else stake - to_submitter
    refund = bounty - profile_fee
    table: dict[str, tuple[int, int, int, int]] = {
        # outcome: (submitter, solver, verifier, jackpot); the verifier's fee is the same for
        # a pass and a fail, and a slashed solver stake never goes to the verifier.
        "Passed": (0, bounty - fee - profile_fee + stake, verifier, lost),
        "Failed": (refund - fee + to_submitter, 0, verifier, lost + slashed),
        "SolverTimedOut": (refund + to_submitter, 0, 0, stake - to_submitter),
        "SeedWithheld": (refund + to_submitter, 0, verifier_stake, stake - to_submitter),
        "Unverified": (refund, stake, 0, 0),
        "Cancelled": (refund, 0, 0, 0),
        "Expired": (refund, 0, 0, 0),
    }
    row = table.get(outcome)
    if row is None:
        return None
    submitter, solver, verifier_paid, jackpot = row
    return {
        "submitter": submitter,
        "solver": solver,
        "verifier": verifier_paid,
        "profiler": profiler,
        "jackpot": jackpot,
    }


def verdict_of(distances: list[int], threshold: int) -> str:
    """The pool's verdict on reported distances: Pass iff every bit pattern is at most τ's
    (distances carry no sign bit, so integer order is numeric order and NaN fails)."""
    return "Pass" if all(d <= threshold for d in distances) else "Fail"


def outcome_of_verdict(verdict: str) -> str:
    """The outcome a verdict settles to once its challenge window is over."""
    return {"Pass": "Passed", "Fail": "Failed"}.get(verdict, "None")
