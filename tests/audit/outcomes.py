"""What the differential payout tests draw from: the pool's outcome names as the reference
model (scripts/protocol.py) spells them, and basis points."""

from __future__ import annotations

from hypothesis import strategies as st

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
