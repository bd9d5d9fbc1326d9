"""Crash safety: kill -9 an agent at every crash point, and at random times, then restart it.

Every round must end exactly as an uncrashed one (outcome and payouts), and the
chain must show one transaction per decision: nothing sent twice.
"""

from __future__ import annotations

import random
import time

import pytest

from .conftest import Market, assert_once, passed_payouts

pytestmark = [pytest.mark.chain, pytest.mark.slow]

SOLVER_CALLS = {"claim", "commit", "revealSeed"}
VERIFIER_CALLS = {"profile", "claimVerification", "reportVerification", "revealVerification"}

CRASH_POINTS = [
    ("solver", "tx-signed:claim/"),
    ("solver", "tx-sent:claim/"),
    ("solver", "checkpoint-written=1"),
    ("solver", "checkpoint-written=7"),
    ("solver", "tx-signed:commit/"),
    ("solver", "tx-sent:commit/"),
    ("solver", "tx-signed:reveal-seed/"),
    ("solver", "tx-sent:reveal-seed/"),
    ("verifier", "tx-signed:profile/"),
    ("verifier", "tx-sent:claim-verification/"),
    ("verifier", "segment-replayed=2"),
    ("verifier", "tx-signed:report/"),
    ("verifier", "tx-signed:reveal/"),
    ("verifier", "tx-sent:reveal/"),
]


def assert_as_if_uncrashed(market: Market, task_id: int) -> None:
    view = market.wait_settled(task_id)
    assert view.outcome == "Passed"
    assert view.payouts == passed_payouts(market, view.bounty)
    # The verifier's reveal settles the task and pays everyone; a verifier forced to err
    # reopens the report with it instead, and the parties it pays settle by withdrawing.
    withdraw = {"withdraw"} if view.forced else set()
    assert_once(market.calls_by("solver"), SOLVER_CALLS | withdraw)
    assert_once(market.calls_by("verifier"), VERIFIER_CALLS | withdraw)


@pytest.mark.parametrize(("role", "point"), CRASH_POINTS, ids=[f"{r}-{p}" for r, p in CRASH_POINTS])
def test_crash_point(market: Market, role: str, point: str) -> None:
    victim = market.agent(role)
    victim.stop()
    victim.start(failpoints=point)
    market.agent("verifier" if role == "solver" else "solver")
    task_id = market.submit()
    market.wait(f"the {role} to die at {point}", lambda: not victim.alive, timeout=300)
    assert victim.returncode() == -9, victim.log_tail()
    victim.start()
    assert_as_if_uncrashed(market, task_id)


def test_random_kills(market: Market) -> None:
    rng = random.Random(20240917)
    solver, verifier = market.agent("solver"), market.agent("verifier")
    task_id = market.submit()
    deadline = time.monotonic() + 600
    kills = 0
    while time.monotonic() < deadline:
        view = market.task(task_id)
        if view.final:
            break
        time.sleep(rng.uniform(1.0, 6.0))
        victim = rng.choice([solver, verifier])
        victim.kill()
        kills += 1
        time.sleep(rng.uniform(0.0, 1.0))
        victim.start()
    assert kills >= 3
    assert_as_if_uncrashed(market, task_id)
