"""What a settled task must pay each party, from the pool's parameters and the task's facts.

This is the settlement table of docs/contracts.md, written again from the documentation, so
that an audit does not take the pool's own arithmetic on trust. All amounts round down.
"""

from __future__ import annotations

from collections.abc import Mapping

BPS = 10_000
PARTIES = ("submitter", "solver", "verifier", "profiler", "jackpot")


def expected_payouts(
    params: Mapping[str, int],
    outcome: str,
    bounty: int,
    profiled: bool,
    forfeited: bool = False,
) -> dict[str, int] | None:
    """Each party's payout for ``outcome`` (``None`` for an outcome the table does not know).

    ``forfeited``: the verifier of a Pass or a Fail did not reveal its secret in time, or
    revealed a report it should have falsified (or one it disowns); its fee and stake go to
    the jackpot."""

    def share(amount: int, name: str) -> int:
        return amount * int(params[name]) // BPS

    fee = share(bounty, "verificationFeeBps")
    accepted = outcome not in ("Cancelled", "Expired")
    profile_fee = share(bounty, "profileFeeBps") if profiled and accepted else 0
    profiler = profile_fee + share(bounty, "profilerStakeBps") if profiled else 0
    stake = share(bounty, "solverStakeBps")
    verifier_stake = share(bounty, "verifierStakeBps")
    to_submitter = share(stake, "slashToSubmitterBps")
    verifier, lost = (0, fee + verifier_stake) if forfeited else (fee + verifier_stake, 0)
    refund = bounty - profile_fee
    table: dict[str, tuple[int, int, int, int]] = {
        # outcome: (submitter, solver, verifier, jackpot); the verifier's fee is the same for
        # a pass and a fail, and a slashed solver stake never goes to the verifier.
        "Passed": (0, bounty - fee - profile_fee + stake, verifier, lost),
        "Failed": (refund - fee + to_submitter, 0, verifier, lost + stake - to_submitter),
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
