"""What the differential payout tests draw from and compare with: the pool's outcome names,
basis points, and the settlement table written out a second time, row by row from
docs/contracts.md ("Settlement", "Payouts after challenges"), independently of
``agents.rules.payouts`` (which the audit, the agents and the scripts share, and which the
contract tests hold to the chain)."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import strategies as st

from agents.audit.payouts import Marks
from scripts import protocol

OUTCOMES = {
    "Passed": protocol.Outcome.PASSED,
    "Failed": protocol.Outcome.FAILED,
    "SolverTimedOut": protocol.Outcome.SOLVER_TIMED_OUT,
    "SeedWithheld": protocol.Outcome.SEED_WITHHELD,
    "Unverified": protocol.Outcome.UNVERIFIED,
    "Cancelled": protocol.Outcome.CANCELLED,
    "Expired": protocol.Outcome.EXPIRED,
}
bps = st.integers(0, 10_000)


def written_out(
    params: Mapping[str, int],
    outcome: str,
    bounty: int,
    profiled: bool,
    marks: Marks,
    taxed: bool = False,
) -> dict[str, int]:
    """Each party's payout for ``outcome``: the table as docs/contracts.md lays it out, with the
    marks challenges leave (``forfeited``, ``void``, ``stake_taken``, ``slash_awarded``) and the
    forced-error tax of a taxed verifier. All amounts round down."""

    def share(amount: int, name: str) -> int:
        return amount * int(params[name]) // 10_000

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
    verifier, lost = (0, owed) if marks.forfeited else (owed, 0)
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
    submitter, solver, verifier_paid, jackpot = table[outcome]
    return {
        "submitter": submitter,
        "solver": solver,
        "verifier": verifier_paid,
        "profiler": profiler,
        "jackpot": jackpot,
    }
