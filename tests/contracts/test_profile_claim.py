"""profile and claim: stakes, thresholds, deadlines and who may act."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.deploy import ProtocolParameters
from scripts.protocol import Mode, Status
from tests.contracts.driver import (
    BOUND,
    BOUNTY,
    PROFILE_CID,
    TAU,
    TRAINING_WINDOW,
    Clock,
    Driver,
    Parties,
    balance,
    f32,
    held,
    plain,
    reverts,
)


def test_profile_locks_the_stake_and_opens_the_task(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    task_id = driver.submit(Mode.TOLERANT)
    stake = driver.amounts().profiler_stake
    before = balance(parties.profiler)
    at = clock.advance(11)
    tx = pool.profile(task_id, TAU, PROFILE_CID, {"from": parties.profiler, "value": stake})
    assert balance(parties.profiler) == before - stake
    task = pool.task(task_id)
    assert task["status"] == Status.OPEN
    assert task["profiler"] == parties.profiler
    assert task["threshold"] == TAU
    review = at + params.profileReviewWindow
    assert task["reviewDeadline"] == review
    assert task["deadline"] == review + params.claimWindow
    assert plain(tx.events["TaskProfiled"]) == {
        "taskId": task_id,
        "profiler": parties.profiler,
        "threshold": TAU,
        "profileCid": PROFILE_CID,
        "stake": stake,
        "deadline": review + params.claimWindow,
        "reviewDeadline": review,
    }
    assert held(pool, task_id) == (BOUNTY, stake, 0)


@pytest.mark.parametrize(
    "threshold",
    [0x7F800000, 0x7FC00000, 0x7F800001, 0x80000000, f32(-1.0), 0xFFFFFFFF],
    ids=["+inf", "qNaN", "sNaN", "-0", "-1", "-NaN"],
)
def test_threshold_must_be_finite_and_not_negative(
    pool: Any, driver: Driver, parties: Parties, threshold: int
) -> None:
    task_id = driver.submit(Mode.TOLERANT)
    with reverts("InvalidThreshold", threshold):
        pool.profile(
            task_id,
            threshold,
            PROFILE_CID,
            {"from": parties.profiler, "value": driver.amounts().profiler_stake},
        )


@pytest.mark.parametrize("threshold", [0, 1, BOUND], ids=["+0", "min-subnormal", "the-bound"])
def test_edge_thresholds_are_accepted(pool: Any, driver: Driver, threshold: int) -> None:
    task_id = driver.submit(Mode.TOLERANT)
    driver.profile(task_id, threshold)
    assert pool.task(task_id)["threshold"] == threshold


@pytest.mark.parametrize("threshold", [BOUND + 1, f32(1.0), 0x7F7FFFFF])
def test_a_threshold_above_the_submitters_bound_is_refused(
    pool: Any, driver: Driver, parties: Parties, threshold: int
) -> None:
    # A profiler cannot post a τ that would pass anything (the τ = FLT_MAX).
    task_id = driver.submit(Mode.TOLERANT)
    with reverts("ThresholdAboveBound", threshold, BOUND):
        driver.profile(task_id, threshold)
    assert pool.task(task_id)["status"] == Status.SUBMITTED


def test_each_task_has_its_own_bound(pool: Any, driver: Driver) -> None:
    tight = driver.submit(Mode.TOLERANT, bound=f32(0.01))
    with reverts("ThresholdAboveBound", f32(0.05), f32(0.01)):
        driver.profile(tight, f32(0.05))
    driver.profile(tight, f32(0.01))
    assert pool.task(tight)["threshold"] == f32(0.01)


def test_profile_needs_the_exact_stake(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.submit(Mode.TOLERANT)
    stake = driver.amounts().profiler_stake
    with reverts("WrongValue", stake, stake - 1):
        pool.profile(task_id, TAU, PROFILE_CID, {"from": parties.profiler, "value": stake - 1})


def test_profile_needs_a_cid(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.submit(Mode.TOLERANT)
    with reverts("InvalidCid", 0):
        pool.profile(
            task_id, TAU, "", {"from": parties.profiler, "value": driver.amounts().profiler_stake}
        )


def test_exact_tasks_are_not_profiled(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.submit(Mode.EXACT)
    with reverts("WrongStatus", task_id, int(Status.OPEN)):
        driver.profile(task_id)


def test_profile_is_accepted_up_to_the_deadline_and_not_after(
    pool: Any, driver: Driver, clock: Clock
) -> None:
    first, second = driver.submit(Mode.TOLERANT), driver.submit(Mode.TOLERANT)
    clock.next_at(int(pool.task(first)["deadline"]))
    driver.profile(first)
    deadline = int(pool.task(second)["deadline"])
    clock.next_at(deadline + 1)
    with reverts("DeadlinePassed", second, deadline):
        driver.profile(second)


def test_profiling_an_unknown_task(driver: Driver) -> None:
    with reverts("UnknownTask", 3):
        driver.pool.profile(3, TAU, PROFILE_CID, {"from": driver.parties.profiler})


# -- the submitter's review of a profile -----------------------------------------------------


def conserved(pool: Any, task_ids: list[int]) -> None:
    credits, deposits = pool.challengeFunds()
    expected = sum(sum(held(pool, t)) for t in task_ids)
    expected += int(pool.jackpotAccrued()) + int(credits) + int(deposits)
    assert int(pool.balance()) == expected


def test_a_profiled_task_is_claimed_only_after_its_review(
    pool: Any, driver: Driver, clock: Clock
) -> None:
    """Left alone, a profile stands once its review deadline (inclusive) has passed."""
    task_id = driver.submit(Mode.TOLERANT)
    driver.profile(task_id)
    review = int(pool.task(task_id)["reviewDeadline"])
    with reverts("ProfileUnderReview", task_id, review):
        driver.claim(task_id)
    clock.next_at(review)
    with reverts("ProfileUnderReview", task_id, review):
        driver.claim(task_id)
    clock.next_at(review + 1)
    driver.claim(task_id)
    assert driver.status(task_id) == Status.TRAINING
    conserved(pool, [task_id])


def test_an_accepted_profile_opens_the_task_at_once(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    task_id = driver.submit(Mode.TOLERANT)
    driver.profile(task_id, f32(0.002))
    deadline = int(pool.task(task_id)["deadline"])
    tx = driver.accept_profile(task_id)
    assert plain(tx.events["ProfileAccepted"]) == {
        "taskId": task_id,
        "profiler": parties.profiler,
        "threshold": f32(0.002),
        "deadline": deadline,
    }
    task = pool.task(task_id)
    assert task["reviewDeadline"] == 0 and task["deadline"] == deadline
    assert task["status"] == Status.OPEN and task["threshold"] == f32(0.002)
    # Accepted for good: neither accepted again nor rejected.
    with reverts("NoProfileUnderReview", task_id):
        driver.accept_profile(task_id)
    with reverts("NoProfileUnderReview", task_id):
        driver.reject_profile(task_id)
    driver.claim(task_id)
    assert driver.status(task_id) == Status.TRAINING


def test_a_rejected_profile_is_paid_for_and_the_task_waits_for_another(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    task_id = driver.submit(Mode.TOLERANT)
    driver.profile(task_id)
    amounts = driver.amounts()
    fee = amounts.profile_rejection_fee
    assert fee == BOUNTY * params.profileRejectionFeeBps // 10_000 > 0
    submitter_before = balance(parties.submitter)
    accrued_before = int(pool.jackpotAccrued())
    at = clock.advance(7)
    tx = driver.reject_profile(task_id)
    assert balance(parties.submitter) == submitter_before - fee
    # The fee pays nobody: it accrues to the jackpot.
    assert int(pool.jackpotAccrued()) == accrued_before + fee
    assert plain(tx.events["ProfileRejected"]) == {
        "taskId": task_id,
        "profiler": parties.profiler,
        "refund": amounts.profiler_stake,
        "fee": fee,
        "deadline": at + params.profileWindow,
    }
    task = pool.task(task_id)
    assert task["status"] == Status.SUBMITTED
    assert task["deadline"] == at + params.profileWindow
    assert task["profiler"] == "0x" + "00" * 20
    assert (task["threshold"], task["reviewDeadline"]) == (0, 0)
    assert held(pool, task_id) == (BOUNTY, 0, 0)
    assert int(pool.credit(parties.profiler)) == amounts.profiler_stake
    conserved(pool, [task_id])
    with reverts("WrongStatus", task_id, int(Status.SUBMITTED)):
        driver.claim(task_id)
    # Another profile, reviewed anew; the rejected profiler takes its stake back, no more.
    driver.profile(task_id, f32(0.003), by=parties.stranger)
    assert pool.task(task_id)["profiler"] == parties.stranger
    with reverts("ProfileUnderReview", task_id, int(pool.task(task_id)["reviewDeadline"])):
        driver.claim(task_id)
    before = balance(parties.profiler)
    pool.withdrawCredit({"from": parties.profiler})
    assert balance(parties.profiler) == before + amounts.profiler_stake
    conserved(pool, [task_id])
    driver.accept_profile(task_id)
    driver.claim(task_id)
    conserved(pool, [task_id])


@pytest.mark.parametrize("junk", [0, BOUND], ids=["tau=+0", "tau=the bound"])
def test_a_junk_profile_rejected_earns_its_profiler_nothing(
    pool: Any, driver: Driver, parties: Parties, junk: int
) -> None:
    """A profiler and its sybil post junk τ in turn, to be rejected and paid: each ends with
    exactly what it started with; every rejection fee went to the jackpot."""
    task_id = driver.submit(Mode.TOLERANT)
    amounts = driver.amounts()
    farmers = (parties.profiler, parties.stranger)
    start = {f: balance(f) for f in farmers}
    submitter_before = balance(parties.submitter)
    accrued_before = int(pool.jackpotAccrued())
    rounds = 4
    for i in range(rounds):
        farmer = farmers[i % 2]
        driver.profile(task_id, junk, by=farmer)
        tx = driver.reject_profile(task_id)
        assert tx.events["ProfileRejected"]["refund"] == amounts.profiler_stake
        pool.withdrawCredit({"from": farmer})
        assert balance(farmer) == start[farmer]
        conserved(pool, [task_id])
    assert all(balance(f) == start[f] for f in farmers)
    assert int(pool.credit(parties.profiler)) == int(pool.credit(parties.stranger)) == 0
    fees = rounds * amounts.profile_rejection_fee
    assert balance(parties.submitter) == submitter_before - fees
    assert int(pool.jackpotAccrued()) == accrued_before + fees
    assert driver.status(task_id) == Status.SUBMITTED


def test_a_profiler_is_paid_only_when_the_task_completes(
    pool: Any, driver: Driver, parties: Parties, params: ProtocolParameters
) -> None:
    """Nothing reaches the profiler (no credit, no withdrawal) while the task runs; the
    settlement pays it the profile fee and its stake."""
    task_id = driver.submit(Mode.TOLERANT)
    amounts = driver.amounts()
    before = balance(parties.profiler)

    def unpaid() -> None:
        assert int(pool.credit(parties.profiler)) == 0
        with reverts("NothingToWithdraw", parties.profiler.address):
            pool.withdraw([task_id], {"from": parties.profiler})
        assert balance(parties.profiler) == before - amounts.profiler_stake

    driver.profile(task_id)
    unpaid()
    driver.accept_profile(task_id)
    for step in (driver.claim, driver.commit):
        step(task_id)
        unpaid()
    secret = driver.verify_with(task_id, forced=False)
    unpaid()
    driver.report(task_id, True, secret=secret)
    assert driver.status(task_id) == Status.CHALLENGE_WINDOW
    unpaid()
    driver.finish(task_id, secret)
    assert driver.status(task_id) == Status.SETTLED
    paid = amounts.profile_fee + amounts.profiler_stake
    if balance(parties.profiler) == before - amounts.profiler_stake:  # not pushed by a reveal
        pool.withdraw([task_id], {"from": parties.profiler})
    assert balance(parties.profiler) == before - amounts.profiler_stake + paid
    assert amounts.profile_fee == BOUNTY * params.profileFeeBps // 10_000 > 0


def test_who_may_review_a_profile_and_when(
    pool: Any, driver: Driver, parties: Parties, clock: Clock
) -> None:
    exact = driver.submit(Mode.EXACT)
    with reverts("NoProfileUnderReview", exact):
        driver.accept_profile(exact)
    task_id = driver.submit(Mode.TOLERANT)
    with reverts("WrongStatus", task_id, int(Status.SUBMITTED)):
        driver.accept_profile(task_id)
    with reverts("UnknownTask", 99):
        pool.rejectProfile(99, {"from": parties.submitter})
    driver.profile(task_id)
    fee = driver.amounts().profile_rejection_fee
    for who in (parties.profiler, parties.stranger, parties.solver):
        with reverts("NotAuthorized", task_id, who.address):
            driver.accept_profile(task_id, by=who)
        with reverts("NotAuthorized", task_id, who.address):
            pool.rejectProfile(task_id, {"from": who, "value": fee})
    # Rejecting is never free, nor paid with more than the fee.
    for value in (0, fee - 1, fee + 1):
        with reverts("WrongValue", fee, value):
            pool.rejectProfile(task_id, {"from": parties.submitter, "value": value})
    review = int(pool.task(task_id)["reviewDeadline"])
    clock.next_at(review + 1)
    with reverts("DeadlinePassed", task_id, review):
        driver.reject_profile(task_id)
    with reverts("DeadlinePassed", task_id, review):
        driver.accept_profile(task_id)
    driver.claim(task_id)
    with reverts("WrongStatus", task_id, int(Status.TRAINING)):
        driver.reject_profile(task_id)


def test_a_profile_may_be_rejected_up_to_its_review_deadline(
    pool: Any, driver: Driver, clock: Clock
) -> None:
    task_id = driver.submit(Mode.TOLERANT)
    driver.profile(task_id)
    clock.next_at(int(pool.task(task_id)["reviewDeadline"]))
    driver.reject_profile(task_id)
    assert driver.status(task_id) == Status.SUBMITTED


# -- claim ---------------------------------------------------------------------------------


def test_claim_locks_the_solver_stake_and_starts_the_training_window(
    pool: Any, driver: Driver, parties: Parties, clock: Clock
) -> None:
    task_id = driver.submit()
    stake = driver.amounts().solver_stake
    before = balance(parties.solver)
    at = clock.advance(5)
    tx = pool.claim(task_id, {"from": parties.solver, "value": stake})
    assert balance(parties.solver) == before - stake
    task = pool.task(task_id)
    assert (task["status"], task["solver"]) == (Status.TRAINING, parties.solver)
    assert task["deadline"] == at + TRAINING_WINDOW
    assert plain(tx.events["TaskClaimed"]) == {
        "taskId": task_id,
        "solver": parties.solver,
        "stake": stake,
        "deadline": at + TRAINING_WINDOW,
    }
    assert held(pool, task_id) == (BOUNTY, stake, 0)


def test_claim_needs_the_exact_stake(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.submit()
    stake = driver.amounts().solver_stake
    with reverts("WrongValue", stake, 0):
        pool.claim(task_id, {"from": parties.solver})


def test_a_task_is_claimed_once(driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.TRAINING)
    with reverts("WrongStatus", task_id, int(Status.TRAINING)):
        driver.claim(task_id, by=parties.stranger)


def test_a_tolerant_task_is_claimed_only_after_its_profile(driver: Driver) -> None:
    task_id = driver.submit(Mode.TOLERANT)
    with reverts("WrongStatus", task_id, int(Status.SUBMITTED)):
        driver.claim(task_id)


def test_claim_after_the_open_deadline_is_refused(driver: Driver) -> None:
    task_id = driver.submit()
    deadline = int(driver.task(task_id)["deadline"])
    driver.past_deadline(task_id)
    with reverts("DeadlinePassed", task_id, deadline):
        driver.claim(task_id)


def test_the_submitter_may_solve_its_own_task(driver: Driver, parties: Parties) -> None:
    task_id = driver.submit()
    driver.claim(task_id, by=parties.submitter)
    assert driver.task(task_id)["solver"] == parties.submitter


def test_claiming_an_unknown_task(driver: Driver) -> None:
    with reverts("UnknownTask", 9):
        driver.pool.claim(9, {"from": driver.parties.solver})
