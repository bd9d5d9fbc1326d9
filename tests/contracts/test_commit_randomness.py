"""commit and the randomness: what the solver commits, and randomness that exists only after it."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.deploy import ProtocolParameters
from scripts.protocol import Status, randomness
from tests.contracts.driver import (
    CHECKPOINT_ROOT,
    PROOF_CID,
    SEGMENTS,
    Clock,
    Driver,
    Parties,
    plain,
    revert_message,
    reverts,
    rpc,
)


def block_hash(number: int) -> bytes:
    from brownie import web3

    return bytes(web3.eth.get_block(number)["hash"])


def test_commit_records_the_proof_and_fixes_the_randomness_block(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    task_id = driver.to_status(Status.TRAINING)
    at = clock.advance(13)
    tx = pool.commit(task_id, PROOF_CID, CHECKPOINT_ROOT, SEGMENTS, {"from": parties.solver})
    task = pool.task(task_id)
    assert task["status"] == Status.COMMITTED
    assert task["segments"] == SEGMENTS
    assert task["randomnessBlock"] == tx.block_number
    assert task["deadline"] == at + params.verifierClaimWindow
    assert plain(tx.events["ProofCommitted"]) == {
        "taskId": task_id,
        "solver": parties.solver,
        "proofCid": PROOF_CID,
        "checkpointRoot": CHECKPOINT_ROOT,
        "segments": SEGMENTS,
        "randomnessBlock": tx.block_number,
        "deadline": at + params.verifierClaimWindow,
    }


def test_only_the_solver_commits(driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.TRAINING)
    with reverts("NotAuthorized", task_id, parties.stranger.address):
        driver.commit(task_id, by=parties.stranger)


def test_commit_after_the_training_window_is_refused(driver: Driver) -> None:
    task_id = driver.to_status(Status.TRAINING)
    deadline = int(driver.task(task_id)["deadline"])
    driver.past_deadline(task_id)
    with reverts("DeadlinePassed", task_id, deadline):
        driver.commit(task_id)


def test_commit_at_the_deadline_is_accepted(driver: Driver, clock: Clock) -> None:
    task_id = driver.to_status(Status.TRAINING)
    clock.next_at(int(driver.task(task_id)["deadline"]))
    driver.commit(task_id)
    assert driver.status(task_id) == Status.COMMITTED


@pytest.mark.parametrize("segments", [0, 2**32 - 1])
def test_segment_count_must_be_sensible(driver: Driver, segments: int) -> None:
    task_id = driver.to_status(Status.TRAINING)
    with reverts("InvalidSegmentCount", segments):
        driver.commit(task_id, segments=segments)


def test_commit_needs_a_checkpoint_root_and_a_cid(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    task_id = driver.to_status(Status.TRAINING)
    with reverts("EmptyCommitment"):
        pool.commit(task_id, PROOF_CID, "0x" + "00" * 32, SEGMENTS, {"from": parties.solver})
    with reverts("InvalidCid", 0):
        pool.commit(task_id, "", CHECKPOINT_ROOT, SEGMENTS, {"from": parties.solver})


def test_commit_before_a_claim_is_refused(driver: Driver) -> None:
    task_id = driver.submit()
    with reverts("WrongStatus", task_id, int(Status.OPEN)):
        driver.commit(task_id)


# -- randomness ----------------------------------------------------------------------------


def test_verification_claim_draws_the_randomness_from_the_commit_block_hash(
    pool: Any, driver: Driver
) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    commit_block = int(pool.task(task_id)["randomnessBlock"])
    tx = driver.claim_verification(task_id)
    drawn = tx.events["RandomnessDrawn"]
    expected = randomness(block_hash(commit_block), task_id)
    assert bytes(drawn["randomness"]) == expected
    assert drawn["sourceBlock"] == commit_block
    assert pool.task(task_id)["randomnessBlock"] == 0  # drawn
    # The log order is the record's order: the draw precedes the claim it happens in.
    names = [event.name for event in tx.events]
    assert names.index("RandomnessDrawn") < names.index("VerificationClaimed")


def test_anyone_may_draw_the_randomness_once(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    commit_block = int(pool.task(task_id)["randomnessBlock"])
    tx = pool.drawRandomness(task_id, {"from": parties.stranger})
    assert bytes(tx.events["RandomnessDrawn"]["randomness"]) == randomness(
        block_hash(commit_block), task_id
    )
    with reverts("RandomnessAlreadyDrawn", task_id):
        pool.drawRandomness(task_id, {"from": parties.stranger})
    claim = driver.claim_verification(task_id)
    assert "RandomnessDrawn" not in claim.events


def test_randomness_of_different_tasks_differs(driver: Driver) -> None:
    drawn = set()
    for _ in range(2):
        task_id = driver.to_status(Status.COMMITTED)
        drawn.add(str(driver.claim_verification(task_id).events["RandomnessDrawn"]["randomness"]))
    assert len(drawn) == 2


def test_randomness_is_not_drawn_before_the_commit(pool: Any, driver: Driver) -> None:
    task_id = driver.to_status(Status.TRAINING)
    with reverts("WrongStatus", task_id, int(Status.TRAINING)):
        pool.drawRandomness(task_id, {"from": driver.parties.stranger})
    with reverts("UnknownTask", 99):
        pool.drawRandomness(99, {"from": driver.parties.stranger})


def test_randomness_is_not_drawn_in_the_commit_block(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    from brownie import web3

    task_id = driver.to_status(Status.TRAINING)
    rpc("evm_setAutomine", [False])
    try:
        commit_hash = web3.eth.send_transaction(
            {
                "from": parties.solver.address,
                "to": pool.address,
                "data": pool.commit.encode_input(task_id, PROOF_CID, CHECKPOINT_ROOT, SEGMENTS),
                "gas": 500_000,
            }
        )
        draw_hash = web3.eth.send_transaction(
            {
                "from": parties.stranger.address,
                "to": pool.address,
                "data": pool.drawRandomness.encode_input(task_id),
                "gas": 500_000,
            }
        )
        rpc("evm_mine")
    finally:
        rpc("evm_setAutomine", [True])
    commit_receipt = web3.eth.get_transaction_receipt(commit_hash)
    draw_receipt = web3.eth.get_transaction_receipt(draw_hash)
    assert commit_receipt["blockNumber"] == draw_receipt["blockNumber"]
    assert commit_receipt["status"] == 1
    assert draw_receipt["status"] == 0
    trace = rpc(
        "debug_traceTransaction",
        [draw_hash.hex() if isinstance(draw_hash, bytes) else draw_hash, {}],
    )
    from brownie.exceptions import decode_typed_error

    assert decode_typed_error("0x" + trace["returnValue"].removeprefix("0x")) == revert_message(
        "RandomnessNotYetAvailable", task_id, commit_receipt["blockNumber"]
    )
    # One block later the hash exists and the draw succeeds.
    tx = pool.drawRandomness(task_id, {"from": parties.stranger})
    assert tx.events["RandomnessDrawn"]["sourceBlock"] == commit_receipt["blockNumber"]


def test_randomness_out_of_blockhash_reach_is_reanchored(
    pool: Any, driver: Driver, parties: Parties, clock: Clock
) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    commit_block = int(pool.task(task_id)["randomnessBlock"])
    clock.mine(256)  # the commit block is now 257 blocks back at the next transaction
    tx = driver.claim_verification(task_id)
    assert "RandomnessDrawn" not in tx.events
    reanchored = tx.events["RandomnessReanchored"]
    assert (reanchored["expiredBlock"], reanchored["newBlock"]) == (commit_block, tx.block_number)
    task = pool.task(task_id)
    assert (task["status"], task["randomnessBlock"]) == (Status.VERIFYING, tx.block_number)
    # The verifier cannot report before the randomness exists.
    with reverts("RandomnessPending", task_id):
        driver.report(task_id)
    drawn = pool.drawRandomness(task_id, {"from": parties.stranger})
    assert bytes(drawn.events["RandomnessDrawn"]["randomness"]) == randomness(
        block_hash(tx.block_number), task_id
    )
    driver.report(task_id)
    assert driver.status(task_id) == Status.CHALLENGE_WINDOW


def test_randomness_at_the_edge_of_blockhash_reach_is_drawn(
    pool: Any, driver: Driver, clock: Clock
) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    commit_block = int(pool.task(task_id)["randomnessBlock"])
    clock.mine(255)  # the next transaction is 256 blocks after the commit: still readable
    tx = driver.claim_verification(task_id)
    assert tx.block_number - commit_block == 256
    assert bytes(tx.events["RandomnessDrawn"]["randomness"]) == randomness(
        block_hash(commit_block), task_id
    )


def test_draw_after_the_horizon_without_a_verifier_reanchors_then_draws(
    pool: Any, driver: Driver, parties: Parties, clock: Clock
) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    clock.mine(300)
    first = pool.drawRandomness(task_id, {"from": parties.stranger})
    assert "RandomnessReanchored" in first.events
    second = pool.drawRandomness(task_id, {"from": parties.stranger})
    assert second.events["RandomnessDrawn"]["sourceBlock"] == first.block_number
