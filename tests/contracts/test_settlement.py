"""Settlement and timeouts: every path to a final task, its payouts, and who is penalised.

The payouts are checked against scripts.protocol.payouts, the settlement table written from
docs/contracts.md, and then paid out: every party withdraws and gets exactly its share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from scripts.deploy import ProtocolParameters
from scripts.protocol import Amounts, Mode, Outcome, Status, payouts
from tests.contracts.driver import BOUNTY, Clock, Driver, Parties, balance, held, plain, reverts


@dataclass(frozen=True)
class Path:
    """How a task reaches settlement: the state it is driven to, then the final step."""

    name: str
    mode: Mode
    reach: Status
    finish: Callable[[Driver, int], Any]
    outcome: Outcome
    profiled: bool
    penalised: str | None  # the role whose stake is slashed by the timeout, if any
    passed: bool = True


def cancel(driver: Driver, task_id: int) -> Any:
    return driver.pool.cancel(task_id, {"from": driver.parties.submitter})


def timeout(driver: Driver, task_id: int) -> Any:
    return driver.timeout(task_id)


def settle(driver: Driver, task_id: int) -> Any:
    return driver.settle(task_id)


PATHS = [
    Path("cancel-open-exact", Mode.EXACT, Status.OPEN, cancel, Outcome.CANCELLED, False, None),
    Path(
        "cancel-submitted", Mode.TOLERANT, Status.SUBMITTED, cancel, Outcome.CANCELLED, False, None
    ),
    Path("cancel-profiled", Mode.TOLERANT, Status.OPEN, cancel, Outcome.CANCELLED, True, None),
    Path("unprofiled", Mode.TOLERANT, Status.SUBMITTED, timeout, Outcome.EXPIRED, False, None),
    Path("unclaimed-exact", Mode.EXACT, Status.OPEN, timeout, Outcome.EXPIRED, False, None),
    Path("unclaimed-profiled", Mode.TOLERANT, Status.OPEN, timeout, Outcome.EXPIRED, True, None),
    Path(
        "no-commit", Mode.EXACT, Status.TRAINING, timeout, Outcome.SOLVER_TIMED_OUT, False, "solver"
    ),
    Path(
        "no-commit-tolerant",
        Mode.TOLERANT,
        Status.TRAINING,
        timeout,
        Outcome.SOLVER_TIMED_OUT,
        True,
        "solver",
    ),
    Path("no-verifier", Mode.EXACT, Status.COMMITTED, timeout, Outcome.UNVERIFIED, False, None),
    Path(
        "no-verifier-tolerant",
        Mode.TOLERANT,
        Status.COMMITTED,
        timeout,
        Outcome.UNVERIFIED,
        True,
        None,
    ),
    Path("pass-exact", Mode.EXACT, Status.CHALLENGE_WINDOW, settle, Outcome.PASSED, False, None),
    Path(
        "pass-tolerant", Mode.TOLERANT, Status.CHALLENGE_WINDOW, settle, Outcome.PASSED, True, None
    ),
    Path(
        "fail-exact",
        Mode.EXACT,
        Status.CHALLENGE_WINDOW,
        settle,
        Outcome.FAILED,
        False,
        None,
        False,
    ),
    Path(
        "fail-tolerant",
        Mode.TOLERANT,
        Status.CHALLENGE_WINDOW,
        settle,
        Outcome.FAILED,
        True,
        None,
        False,
    ),
]


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_settlement_pays_every_party_its_share(
    pool: Any,
    jackpot: Any,
    driver: Driver,
    parties: Parties,
    params: ProtocolParameters,
    path: Path,
) -> None:
    accrued_before = int(pool.jackpotAccrued())
    task_id = driver.to_status(path.reach, path.mode, passed=path.passed)
    locked = sum(held(pool, task_id))
    tx = path.finish(driver, task_id)

    amounts = Amounts.of(BOUNTY, params)
    expected = payouts(path.outcome, amounts, path.profiled, params)
    settled = tx.events["TaskSettled"]
    assert plain(settled) == {
        "taskId": task_id,
        "outcome": path.outcome,
        "toSubmitter": expected.submitter,
        "toSolver": expected.solver,
        "toVerifier": expected.verifier,
        "toProfiler": expected.profiler,
        "toJackpot": expected.jackpot,
    }
    assert plain(pool.payouts(task_id)) == [
        expected.submitter,
        expected.solver,
        expected.verifier,
        expected.profiler,
        expected.jackpot,
    ]
    # Nothing is created or lost: what was locked is what is paid out.
    assert expected.total() == locked
    task = pool.task(task_id)
    assert (task["status"], task["outcome"]) == (Status.SETTLED, path.outcome)
    assert int(pool.jackpotAccrued()) == accrued_before + amounts.protocol_fee + expected.jackpot

    if path.penalised is not None:
        timed_out = tx.events["TaskTimedOut"]
        assert timed_out["penalised"] == getattr(parties, path.penalised)
        assert timed_out["slashed"] == amounts.solver_stake
    elif "TaskTimedOut" in tx.events:
        assert int(tx.events["TaskTimedOut"]["penalised"], 16) == 0
        assert tx.events["TaskTimedOut"]["slashed"] == 0

    shares = {
        parties.submitter: expected.submitter,
        parties.solver: expected.solver,
        parties.verifier: expected.verifier,
        parties.profiler: expected.profiler,
    }
    for account, share in shares.items():
        assert pool.owed(task_id, account) == share
        if share == 0:
            with reverts("NothingToWithdraw", account.address):
                pool.withdraw([task_id], {"from": account})
            continue
        before = balance(account)
        pool.withdraw([task_id], {"from": account})
        assert balance(account) - before == share
        assert pool.owed(task_id, account) == 0
    assert held(pool, task_id) == (0, 0, 0)
    assert pool.balance() == pool.jackpotAccrued()


def test_settle_waits_for_the_end_of_the_challenge_window(
    pool: Any, driver: Driver, parties: Parties, clock: Clock
) -> None:
    task_id = driver.to_status(Status.CHALLENGE_WINDOW)
    deadline = int(driver.task(task_id)["deadline"])
    clock.next_at(deadline)
    with reverts("DeadlineNotReached", task_id, deadline):
        pool.settle(task_id, {"from": parties.stranger})
    clock.next_at(deadline + 1)
    pool.settle(task_id, {"from": parties.stranger})
    assert driver.status(task_id) == Status.SETTLED


@pytest.mark.parametrize("status", [Status.OPEN, Status.VERIFYING, Status.SETTLED])
def test_settle_only_ends_a_challenge_window(driver: Driver, status: Status) -> None:
    task_id = driver.to_status(status)
    with reverts("WrongStatus", task_id, int(status)):
        driver.settle(task_id)


def test_settling_an_unknown_task(pool: Any, parties: Parties) -> None:
    with reverts("UnknownTask", 4):
        pool.settle(4, {"from": parties.stranger})


@pytest.mark.parametrize(
    ("status", "mode"),
    [
        (Status.SUBMITTED, Mode.TOLERANT),
        (Status.OPEN, Mode.EXACT),
        (Status.TRAINING, Mode.EXACT),
        (Status.COMMITTED, Mode.EXACT),
        (Status.VERIFYING, Mode.EXACT),
    ],
)
def test_timeout_waits_for_the_deadline(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, status: Status, mode: Mode
) -> None:
    task_id = driver.to_status(status, mode)
    deadline = int(driver.task(task_id)["deadline"])
    clock.next_at(deadline)
    with reverts("DeadlineNotReached", task_id, deadline):
        pool.timeout(task_id, {"from": parties.stranger})


@pytest.mark.parametrize("status", [Status.CHALLENGE_WINDOW, Status.SETTLED])
def test_timeout_does_not_apply_to_a_verdict(driver: Driver, status: Status) -> None:
    task_id = driver.to_status(status)
    with reverts("WrongStatus", task_id, int(status)):
        driver.timeout(task_id)


def test_timeout_of_an_unknown_task(pool: Any, parties: Parties) -> None:
    with reverts("UnknownTask", 5):
        pool.timeout(5, {"from": parties.stranger})


def test_a_silent_verifier_is_slashed_and_the_proof_waits_for_another(
    pool: Any, driver: Driver, parties: Parties, params: ProtocolParameters
) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    amounts = driver.amounts()
    accrued = int(pool.jackpotAccrued())
    tx = driver.timeout(task_id)
    timed_out = tx.events["TaskTimedOut"]
    assert (timed_out["status"], timed_out["penalised"]) == (Status.VERIFYING, parties.verifier)
    assert timed_out["slashed"] == amounts.verifier_stake
    reopened = tx.events["VerificationReopened"]
    assert reopened["deadline"] == tx.timestamp + params.verifierClaimWindow
    task = pool.task(task_id)
    assert (task["status"], int(task["verifier"], 16)) == (Status.COMMITTED, 0)
    assert task["deadline"] == reopened["deadline"]
    assert int(pool.jackpotAccrued()) == accrued + amounts.verifier_stake
    assert held(pool, task_id) == (BOUNTY, amounts.solver_stake, 0)

    # Another verifier takes over with the same randomness (it is not drawn twice).
    claim = driver.claim_verification(task_id, by=parties.stranger)
    assert "RandomnessDrawn" not in claim.events
    driver.report(task_id, by=parties.stranger)
    settled = driver.settle(task_id).events["TaskSettled"]
    assert settled["toVerifier"] == amounts.verification_fee + amounts.verifier_stake
    assert pool.owed(task_id, parties.stranger) == settled["toVerifier"]
    with reverts("NothingToWithdraw", parties.verifier.address):
        pool.withdraw([task_id], {"from": parties.verifier})


def test_the_reopened_proof_times_out_as_unverified(driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    driver.timeout(task_id)
    tx = driver.timeout(task_id)
    assert tx.events["TaskSettled"]["outcome"] == Outcome.UNVERIFIED
    assert tx.events["TaskSettled"]["toSolver"] == driver.amounts().solver_stake
