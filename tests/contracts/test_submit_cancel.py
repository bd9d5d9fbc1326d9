"""submit and cancel: escrow, fees, every input check, who may cancel and what it returns."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.deploy import ProtocolParameters
from scripts.protocol import Mode, Outcome, Status
from tests.contracts.driver import (
    BOUND,
    BOUNTY,
    PROGRAM_ROOT,
    SAMPLED,
    SEGMENTS,
    SPEC_CID,
    SPEC_HASH,
    TRAINING_WINDOW,
    Clock,
    Driver,
    Parties,
    balance,
    f32,
    held,
    reverts,
)

UINT80_MAX = 2**80 - 1
ZERO = "0x" + "00" * 32


def send_terms(
    pool: Any, parties: Parties, terms: list[Any], value: int, cid: str = SPEC_CID
) -> Any:
    return pool.submit(cid, tuple(terms), {"from": parties.submitter, "value": value})


def test_exact_submission_escrows_the_bounty_and_accrues_the_fee(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    fee = driver.amounts().protocol_fee
    before = balance(parties.submitter)
    at = clock.advance(7)
    tx = pool.submit(SPEC_CID, driver.terms(), {"from": parties.submitter, "value": BOUNTY + fee})
    assert tx.return_value == 1
    assert balance(parties.submitter) == before - BOUNTY - fee
    assert pool.balance() == BOUNTY + fee
    assert pool.jackpotAccrued() == fee
    assert pool.nextTaskId() == 2
    task = pool.task(1)
    assert task["submitter"] == parties.submitter
    assert task["bounty"] == BOUNTY
    assert task["mode"] == Mode.EXACT
    assert task["status"] == Status.OPEN  # exact tasks skip profiling
    assert task["deadline"] == at + params.claimWindow
    assert task["trainingWindow"] == TRAINING_WINDOW
    assert (task["segments"], task["sampledSegments"]) == (SEGMENTS, SAMPLED)
    assert (task["threshold"], task["thresholdBound"]) == (0, 0)
    event = tx.events["TaskSubmitted"]
    assert dict(event) == {
        "taskId": 1,
        "submitter": parties.submitter,
        "mode": Mode.EXACT,
        "bounty": BOUNTY,
        "protocolFee": fee,
        "specHash": SPEC_HASH,
        "programRoot": PROGRAM_ROOT,
        "segments": SEGMENTS,
        "sampledSegments": SAMPLED,
        "thresholdBound": 0,
        "specCid": SPEC_CID,
        "trainingWindow": TRAINING_WINDOW,
        "deadline": at + params.claimWindow,
    }
    assert held(pool, 1) == (BOUNTY, 0, 0)


def test_tolerant_submission_waits_for_a_profile(
    pool: Any, driver: Driver, clock: Clock, params: ProtocolParameters
) -> None:
    at = clock.advance(3)
    task_id = driver.submit(Mode.TOLERANT)
    task = pool.task(task_id)
    assert task["status"] == Status.SUBMITTED
    assert task["deadline"] == at + params.profileWindow
    assert task["thresholdBound"] == BOUND


def test_task_ids_increase_by_one(driver: Driver) -> None:
    assert [driver.submit() for _ in range(3)] == [1, 2, 3]


@pytest.mark.parametrize("delta", [-1, 1, None])
def test_submission_needs_exactly_bounty_plus_fee(
    pool: Any, driver: Driver, parties: Parties, delta: int | None
) -> None:
    expected = BOUNTY + driver.amounts().protocol_fee
    sent = BOUNTY if delta is None else expected + delta
    with reverts("WrongValue", expected, sent):
        send_terms(pool, parties, list(driver.terms()), sent)
    assert pool.balance() == 0


@pytest.mark.parametrize("bounty", [10**9 - 1, 0, UINT80_MAX + 1])
def test_bounty_outside_the_range_is_refused(
    pool: Any, driver: Driver, parties: Parties, params: ProtocolParameters, bounty: int
) -> None:
    with reverts("BountyOutOfRange", bounty, params.minBounty, UINT80_MAX):
        send_terms(pool, parties, list(driver.terms(bounty=bounty)), 0)


def test_the_largest_and_smallest_bounties_are_accepted(
    pool: Any, driver: Driver, params: ProtocolParameters, parties: Parties
) -> None:
    for bounty in (params.minBounty, UINT80_MAX):
        task_id = driver.submit(bounty=bounty)
        assert pool.task(task_id)["bounty"] == bounty


@pytest.mark.parametrize("cid", ["", "x" * 129])
def test_cid_must_have_1_to_128_bytes(
    pool: Any, driver: Driver, parties: Parties, cid: str
) -> None:
    value = BOUNTY + driver.amounts().protocol_fee
    with reverts("InvalidCid", len(cid)):
        send_terms(pool, parties, list(driver.terms()), value, cid)


def test_a_128_byte_cid_is_accepted(pool: Any, driver: Driver, parties: Parties) -> None:
    value = BOUNTY + driver.amounts().protocol_fee
    tx = send_terms(pool, parties, list(driver.terms()), value, "c" * 128)
    assert tx.events["TaskSubmitted"]["specCid"] == "c" * 128


@pytest.mark.parametrize("field", [0, 1])  # the spec hash, the program root
def test_spec_hash_and_program_root_must_not_be_zero(
    pool: Any, driver: Driver, parties: Parties, field: int
) -> None:
    value = BOUNTY + driver.amounts().protocol_fee
    terms = list(driver.terms())
    terms[field] = ZERO
    with reverts("EmptyCommitment"):
        send_terms(pool, parties, terms, value)


@pytest.mark.parametrize("segments", [0, 2**32 - 1])
def test_segment_count_must_be_sensible(
    pool: Any, driver: Driver, parties: Parties, segments: int
) -> None:
    value = BOUNTY + driver.amounts().protocol_fee
    with reverts("InvalidSegmentCount", segments):
        send_terms(pool, parties, list(driver.terms(segments=segments)), value)


def test_a_task_samples_at_least_the_pools_minimum(
    pool: Any, driver: Driver, parties: Parties, params: ProtocolParameters
) -> None:
    value = BOUNTY + driver.amounts().protocol_fee
    low = params.minSampledSegments - 1
    with reverts("InvalidSampleCount", low, params.minSampledSegments):
        send_terms(pool, parties, list(driver.terms(sampled=low)), value)
    task_id = driver.submit(sampled=params.minSampledSegments, segments=1)
    assert driver.task(task_id)["sampledSegments"] == params.minSampledSegments
    assert pool.sampleCount(task_id) == 1  # a one-segment task replays its only segment


@pytest.mark.parametrize(
    ("mode", "bound"),
    [
        (Mode.EXACT, f32(0.1)),  # an exact task has τ = 0 and no bound
        (Mode.TOLERANT, 0),
        (Mode.TOLERANT, f32(1.0) + 1),  # above the pool's maximum
        (Mode.TOLERANT, 0x7F800000),  # +infinity
        (Mode.TOLERANT, 0x7FC00000),  # NaN
        (Mode.TOLERANT, 0x80000001),  # negative
    ],
)
def test_the_threshold_bound_is_checked(
    pool: Any,
    driver: Driver,
    parties: Parties,
    params: ProtocolParameters,
    mode: Mode,
    bound: int,
) -> None:
    value = BOUNTY + driver.amounts().protocol_fee
    with reverts("InvalidThresholdBound", bound, params.maxThreshold):
        send_terms(pool, parties, list(driver.terms(mode=mode, bound=bound)), value)


def test_the_pools_largest_threshold_bound_is_accepted(
    driver: Driver, params: ProtocolParameters
) -> None:
    task_id = driver.submit(Mode.TOLERANT, bound=params.maxThreshold)
    assert driver.task(task_id)["thresholdBound"] == params.maxThreshold


@pytest.mark.parametrize("window", [0, 50_001])
def test_training_window_must_be_within_the_maximum(
    pool: Any, driver: Driver, parties: Parties, params: ProtocolParameters, window: int
) -> None:
    value = BOUNTY + driver.amounts().protocol_fee
    with reverts("TrainingWindowOutOfRange", window, params.maxTrainingWindow):
        send_terms(pool, parties, list(driver.terms(training_window=window)), value)


def test_the_maximum_training_window_is_accepted(
    driver: Driver, params: ProtocolParameters
) -> None:
    task_id = driver.submit(training_window=params.maxTrainingWindow)
    assert driver.task(task_id)["trainingWindow"] == params.maxTrainingWindow


def test_an_unknown_mode_is_refused(pool: Any, driver: Driver, parties: Parties) -> None:
    from brownie.exceptions import VirtualMachineError

    value = BOUNTY + driver.amounts().protocol_fee
    # The ABI decoder refuses an out-of-range enum before any check of the pool runs.
    terms = list(driver.terms())
    terms[3] = 2
    with pytest.raises(VirtualMachineError) as info:
        send_terms(pool, parties, terms, value)
    assert info.value.revert_type == "revert"
    assert info.value.revert_msg is None  # no custom error: it never reached the pool's code
    assert pool.nextTaskId() == 1
    assert pool.balance() == 0


def test_plain_eth_is_refused(pool: Any, parties: Parties) -> None:
    from brownie.exceptions import VirtualMachineError

    with pytest.raises(VirtualMachineError):
        parties.stranger.transfer(pool, 1)
    assert pool.balance() == 0


# -- cancel --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [Mode.EXACT, Mode.TOLERANT])
def test_submitter_cancels_an_unclaimed_task_and_gets_the_bounty_back(
    pool: Any, driver: Driver, parties: Parties, mode: Mode
) -> None:
    task_id = driver.submit(mode)
    tx = pool.cancel(task_id, {"from": parties.submitter})
    assert tx.events["TaskCancelled"]["taskId"] == task_id
    settled = tx.events["TaskSettled"]
    assert settled["outcome"] == Outcome.CANCELLED
    assert settled["toSubmitter"] == BOUNTY
    task = pool.task(task_id)
    assert (task["status"], task["outcome"]) == (Status.SETTLED, Outcome.CANCELLED)
    assert pool.owed(task_id, parties.submitter) == BOUNTY
    before = balance(parties.submitter)
    pool.withdraw([task_id], {"from": parties.submitter})
    assert balance(parties.submitter) == before + BOUNTY
    assert pool.balance() == driver.amounts().protocol_fee  # only the jackpot's fee is left


def test_cancelling_after_the_profile_returns_the_profilers_stake_unpaid(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    # A profile is paid once a solver has accepted its τ by claiming; cancelling before that
    # rejects it: the submitter keeps the whole bounty, the profiler gets its stake back.
    task_id = driver.to_status(Status.OPEN, Mode.TOLERANT)
    tx = pool.cancel(task_id, {"from": parties.submitter})
    amounts = driver.amounts()
    settled = tx.events["TaskSettled"]
    assert settled["toSubmitter"] == BOUNTY
    assert settled["toProfiler"] == amounts.profiler_stake
    assert pool.owed(task_id, parties.profiler) == amounts.profiler_stake


def test_cancel_may_come_after_the_deadline(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.submit()
    driver.past_deadline(task_id)
    pool.cancel(task_id, {"from": parties.submitter})
    assert pool.task(task_id)["outcome"] == Outcome.CANCELLED


def test_only_the_submitter_may_cancel(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.submit()
    with reverts("NotAuthorized", task_id, parties.stranger.address):
        pool.cancel(task_id, {"from": parties.stranger})


@pytest.mark.parametrize("status", [Status.TRAINING, Status.COMMITTED, Status.SETTLED])
def test_a_claimed_task_cannot_be_cancelled(
    pool: Any, driver: Driver, parties: Parties, status: Status
) -> None:
    task_id = driver.to_status(status)
    with reverts("WrongStatus", task_id, int(status)):
        pool.cancel(task_id, {"from": parties.submitter})


def test_cancelling_an_unknown_task(pool: Any, parties: Parties) -> None:
    with reverts("UnknownTask", 7):
        pool.cancel(7, {"from": parties.submitter})
