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
from scripts.protocol import Amounts, Flag, Mode, Outcome, Payouts, Status, payouts
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
    forfeited: bool = False  # the verifier did not reveal its secret
    revealed: bool = False  # the verifier's reveal settles and pays every party


def cancel(driver: Driver, task_id: int) -> Any:
    return driver.pool.cancel(task_id, {"from": driver.parties.submitter})


def timeout(driver: Driver, task_id: int) -> Any:
    return driver.timeout(task_id)


def settle(driver: Driver, task_id: int) -> Any:
    return driver.settle(task_id)


def reveal(driver: Driver, task_id: int) -> Any:
    driver.past_deadline(task_id)
    return driver.reveal(task_id, driver.secrets[task_id])


def withhold_seed(driver: Driver, task_id: int) -> Any:
    return driver.timeout(task_id)


def to_seed(driver: Driver, mode: Mode) -> int:
    """A task whose verifier has claimed and whose solver has not revealed its seed."""
    task_id = driver.to_status(Status.COMMITTED, mode)
    driver.claim_verification(task_id)
    return task_id


E, T, CW = Mode.EXACT, Mode.TOLERANT, Status.CHALLENGE_WINDOW
PATHS = [
    Path("cancel-open-exact", E, Status.OPEN, cancel, Outcome.CANCELLED, False, None),
    Path("cancel-submitted", T, Status.SUBMITTED, cancel, Outcome.CANCELLED, False, None),
    Path("cancel-profiled", T, Status.OPEN, cancel, Outcome.CANCELLED, True, None),
    Path("unprofiled", T, Status.SUBMITTED, timeout, Outcome.EXPIRED, False, None),
    Path("unclaimed-exact", E, Status.OPEN, timeout, Outcome.EXPIRED, False, None),
    Path("unclaimed-profiled", T, Status.OPEN, timeout, Outcome.EXPIRED, True, None),
    Path("no-commit", E, Status.TRAINING, timeout, Outcome.SOLVER_TIMED_OUT, False, "solver"),
    Path(
        "no-commit-tolerant", T, Status.TRAINING, timeout, Outcome.SOLVER_TIMED_OUT, True, "solver"
    ),
    Path("no-verifier", E, Status.COMMITTED, timeout, Outcome.UNVERIFIED, False, None),
    Path("no-verifier-tolerant", T, Status.COMMITTED, timeout, Outcome.UNVERIFIED, True, None),
    Path("seed-withheld", E, Status.NONE, withhold_seed, Outcome.SEED_WITHHELD, False, "solver"),
    Path("seed-withheld-tol", T, Status.NONE, withhold_seed, Outcome.SEED_WITHHELD, True, "solver"),
    Path("pass-exact", E, CW, reveal, Outcome.PASSED, False, None, revealed=True),
    Path("pass-tolerant", T, CW, reveal, Outcome.PASSED, True, None, revealed=True),
    Path("fail-exact", E, CW, reveal, Outcome.FAILED, False, None, False, revealed=True),
    Path("fail-tolerant", T, CW, reveal, Outcome.FAILED, True, None, False, revealed=True),
    Path("pass-unrevealed", E, CW, settle, Outcome.PASSED, False, None, forfeited=True),
    Path("fail-unrevealed", T, CW, settle, Outcome.FAILED, True, None, False, forfeited=True),
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
    if path.reach == Status.NONE:
        task_id = to_seed(driver, path.mode)
    else:
        task_id = driver.to_status(path.reach, path.mode, passed=path.passed)
    locked = sum(held(pool, task_id))
    accounts = (parties.submitter, parties.solver, parties.verifier, parties.profiler)
    before = {a: balance(a) for a in accounts}
    tx = path.finish(driver, task_id)

    amounts = Amounts.of(BOUNTY, params)
    # Each path's verifier (where there is one) made the task's first claim: it pays the tax.
    expected = payouts(path.outcome, amounts, path.profiled, params, path.forfeited, taxed=True)
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

    if path.revealed:
        # The verifier's reveal settled the task and paid every party in the same transaction.
        pushed = {
            parties.submitter: expected.submitter,
            parties.solver: expected.solver,
            parties.verifier: expected.verifier,
            parties.profiler: expected.profiler,
        }
        for account, share in pushed.items():
            assert balance(account) - before[account] == share
        paid = [(e["account"], e["amount"]) for e in tx.events["PayoutWithdrawn"]]
        assert paid == [(a, v) for a, v in pushed.items() if v]
        expected = Payouts(jackpot=expected.jackpot)
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
        start = balance(account)
        pool.withdraw([task_id], {"from": account})
        assert balance(account) - start == share
        assert pool.owed(task_id, account) == 0
    assert held(pool, task_id) == (0, 0, 0)
    assert pool.balance() == pool.jackpotAccrued()


def test_settle_waits_for_the_end_of_the_challenge_window(
    pool: Any, driver: Driver, parties: Parties, clock: Clock
) -> None:
    # A re-verification is never a forced error: its verdict settles when the window ends.
    task_id = driver.to_status(Status.VERIFYING)
    driver.timeout(task_id)
    driver.claim_verification(task_id, by=parties.stranger)
    driver.report(task_id, by=parties.stranger)
    assert driver.flags(task_id) & Flag.FORCEABLE == 0
    deadline = int(driver.task(task_id)["deadline"])
    clock.next_at(deadline)
    with reverts("DeadlineNotReached", task_id, deadline):
        pool.settle(task_id, {"from": parties.stranger})
    clock.next_at(deadline + 1)
    pool.settle(task_id, {"from": parties.stranger})
    assert driver.status(task_id) == Status.SETTLED


def test_a_report_that_may_be_forced_waits_for_the_reveal_window(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    task_id = driver.to_status(Status.CHALLENGE_WINDOW)
    end = int(driver.task(task_id)["deadline"]) + params.revealWindow
    clock.next_at(end)
    with reverts("DeadlineNotReached", task_id, end):
        pool.settle(task_id, {"from": parties.stranger})
    assert pool.owed(task_id, parties.solver) == 0
    clock.next_at(end + 1)
    pool.settle(task_id, {"from": parties.stranger})
    # The verifier never revealed: its fee and stake went to the jackpot.
    assert driver.flags(task_id) & Flag.FORFEITED
    assert pool.owed(task_id, parties.verifier) == 0


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
    randomness = driver.randomness(task_id)
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
    assert task["flags"] == Flag.RANDOMNESS  # no longer forceable
    assert int(pool.jackpotAccrued()) == accrued + amounts.verifier_stake
    assert held(pool, task_id) == (BOUNTY, amounts.solver_stake, 0)

    # Another verifier takes over with the same randomness: no seed, the replay window at once.
    claim = driver.claim_verification(task_id, by=parties.stranger, secret=b"\x01" * 32)
    assert "RandomnessDrawn" not in claim.events
    assert claim.events["VerificationClaimed"]["deadline"] == claim.timestamp + params.verifyWindow
    assert driver.randomness(task_id) == randomness
    driver.report(task_id, by=parties.stranger, secret=b"\x01" * 32)
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


def test_claim_and_abandon_is_bounded(
    pool: Any, driver: Driver, parties: Parties, params: ProtocolParameters
) -> None:
    # Each abandoned claim costs a verifier stake; after maxVerificationRounds claims the task
    # settles unverified instead of reopening, so a griefer cannot hold a proof forever.
    task_id = driver.to_status(Status.VERIFYING)
    stalls = 1
    driver.timeout(task_id)
    while stalls < params.maxVerificationRounds:
        driver.claim_verification(task_id, by=parties.stranger)
        tx = driver.timeout(task_id)
        stalls += 1
    assert tx.events["TaskTimedOut"]["penalised"] == parties.stranger
    assert tx.events["TaskSettled"]["outcome"] == Outcome.UNVERIFIED
    assert "VerificationReopened" not in tx.events
    assert driver.task(task_id)["rounds"] == params.maxVerificationRounds
