"""claimVerification and reportVerification: stakes, the secret commitment, the verdict rule."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.deploy import ProtocolParameters
from scripts.protocol import Mode, Outcome, Status, Verdict
from tests.contracts.driver import (
    BOUNTY,
    SECRET_HASH,
    TAU,
    TRACE_ROOTS_ROOT,
    Clock,
    Driver,
    Parties,
    balance,
    f32,
    held,
    plain,
    reverts,
)


def test_verification_claim_locks_the_stake_and_commits_the_secret(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    amounts = driver.amounts()
    before = balance(parties.verifier)
    at = clock.advance(17)
    tx = driver.claim_verification(task_id)
    assert balance(parties.verifier) == before - amounts.verifier_stake
    task = pool.task(task_id)
    assert (task["status"], task["verifier"]) == (Status.VERIFYING, parties.verifier)
    assert task["deadline"] == at + params.verifyWindow
    assert plain(tx.events["VerificationClaimed"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "secretHash": SECRET_HASH,
        "stake": amounts.verifier_stake,
        "deadline": at + params.verifyWindow,
    }
    assert held(pool, task_id) == (BOUNTY, amounts.solver_stake + amounts.verifier_stake, 0)


def test_the_solver_cannot_verify_itself(driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    with reverts("SolverCannotVerify", task_id, parties.solver.address):
        driver.claim_verification(task_id, by=parties.solver)


def test_verification_claim_needs_a_secret_hash_and_the_stake(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    stake = driver.amounts().verifier_stake
    with reverts("EmptyCommitment"):
        driver.claim_verification(task_id, secret="0x" + "00" * 32)
    with reverts("WrongValue", stake, stake + 1):
        pool.claimVerification(task_id, SECRET_HASH, {"from": parties.verifier, "value": stake + 1})


def test_verification_claim_after_the_deadline_is_refused(driver: Driver) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    deadline = int(driver.task(task_id)["deadline"])
    driver.past_deadline(task_id)
    with reverts("DeadlinePassed", task_id, deadline):
        driver.claim_verification(task_id)


def test_a_verification_is_claimed_once(driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    with reverts("WrongStatus", task_id, int(Status.VERIFYING)):
        driver.claim_verification(task_id, by=parties.stranger)


# -- report --------------------------------------------------------------------------------


def test_report_within_threshold_passes_and_opens_the_challenge_window(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    distances = [0, 0, 0, 0]
    at = clock.advance(19)
    tx = pool.reportVerification(task_id, distances, TRACE_ROOTS_ROOT, {"from": parties.verifier})
    task = pool.task(task_id)
    assert (task["status"], task["outcome"]) == (Status.CHALLENGE_WINDOW, Outcome.PASSED)
    assert task["deadline"] == at + params.challengeWindow
    assert plain(tx.events["VerificationReported"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "distances": distances,
        "traceRootsRoot": TRACE_ROOTS_ROOT,
        "verdict": Verdict.PASS,
        "challengeDeadline": at + params.challengeWindow,
    }


# Tolerant mode, τ = 0.05: the chain derives the verdict from the distances alone.
VERDICTS = [
    ([0, 0, 0, 0], Verdict.PASS),
    ([TAU, TAU, TAU, TAU], Verdict.PASS),  # equal to τ passes
    ([0, 1, TAU - 1, 1], Verdict.PASS),  # subnormal and just below τ
    ([0, 0, 0, TAU + 1], Verdict.FAIL),  # one ulp above τ
    ([f32(0.5), 0, 0, 0], Verdict.FAIL),
    ([0x7F800000, 0, 0, 0], Verdict.FAIL),  # +inf
    ([0, 0x7FC00000, 0, 0], Verdict.FAIL),  # the canonical NaN
    ([0, 0, 0x7F800001, 0], Verdict.FAIL),  # a signalling NaN pattern
    ([0x7F7FFFFF, 0x7F7FFFFF, 0x7F7FFFFF, 0x7F7FFFFF], Verdict.FAIL),  # largest finite
]


@pytest.mark.parametrize(("distances", "verdict"), VERDICTS)
def test_verdict_is_pass_iff_every_distance_is_at_most_tau(
    pool: Any, driver: Driver, parties: Parties, distances: list[int], verdict: Verdict
) -> None:
    task_id = driver.to_status(Status.VERIFYING, Mode.TOLERANT)
    assert pool.task(task_id)["threshold"] == TAU
    tx = pool.reportVerification(task_id, distances, TRACE_ROOTS_ROOT, {"from": parties.verifier})
    assert tx.events["VerificationReported"]["verdict"] == verdict
    expected = Outcome.PASSED if verdict == Verdict.PASS else Outcome.FAILED
    assert pool.task(task_id)["outcome"] == expected


def test_exact_mode_passes_only_zero_distances(pool: Any, driver: Driver, parties: Parties) -> None:
    passing = driver.to_status(Status.VERIFYING)
    failing = driver.to_status(Status.VERIFYING)
    pool.reportVerification(passing, [0, 0, 0, 0], TRACE_ROOTS_ROOT, {"from": parties.verifier})
    pool.reportVerification(failing, [0, 1, 0, 0], TRACE_ROOTS_ROOT, {"from": parties.verifier})
    assert pool.task(passing)["outcome"] == Outcome.PASSED
    assert pool.task(failing)["outcome"] == Outcome.FAILED


@pytest.mark.parametrize("bad", [0x80000000, f32(-0.5), 0xFF800000, 0xFFC00000])
def test_distances_with_the_sign_bit_are_invalid(
    pool: Any, driver: Driver, parties: Parties, bad: int
) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    with reverts("InvalidDistance", 2, bad):
        pool.reportVerification(
            task_id, [0, 0, bad, 0], TRACE_ROOTS_ROOT, {"from": parties.verifier}
        )


@pytest.mark.parametrize(("segments", "count"), [(1, 1), (3, 3), (4, 4), (10, 4)])
def test_one_distance_per_sampled_segment(
    pool: Any, driver: Driver, parties: Parties, segments: int, count: int
) -> None:
    task_id = driver.to_status(Status.TRAINING)
    driver.commit(task_id, segments=segments)
    driver.claim_verification(task_id)
    assert pool.sampleCount(task_id) == count
    for wrong in (count - 1, count + 1):
        with reverts("WrongDistanceCount", count, wrong):
            pool.reportVerification(
                task_id, [0] * wrong, TRACE_ROOTS_ROOT, {"from": parties.verifier}
            )
    pool.reportVerification(task_id, [0] * count, TRACE_ROOTS_ROOT, {"from": parties.verifier})


def test_only_the_verifier_reports(driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    for other in (parties.stranger, parties.solver):
        with reverts("NotAuthorized", task_id, other.address):
            driver.report(task_id, by=other)


def test_report_needs_a_trace_roots_root(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    with reverts("EmptyCommitment"):
        pool.reportVerification(task_id, [0, 0, 0, 0], "0x" + "00" * 32, {"from": parties.verifier})


def test_report_after_the_verify_window_is_refused(driver: Driver) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    deadline = int(driver.task(task_id)["deadline"])
    driver.past_deadline(task_id)
    with reverts("DeadlinePassed", task_id, deadline):
        driver.report(task_id)


def test_report_needs_a_verification_claim(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    with reverts("WrongStatus", task_id, int(Status.COMMITTED)):
        pool.reportVerification(task_id, [0, 0, 0, 0], TRACE_ROOTS_ROOT, {"from": parties.verifier})
