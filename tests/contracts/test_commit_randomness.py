"""commit and the randomness: what the solver commits, and randomness that neither the solver, nor
a block builder, nor the verifier alone can steer, that waiting does not re-roll, and that a
re-verification reuses (PROTOCOL.md §9)."""

from __future__ import annotations

from typing import Any

from eth_utils.crypto import keccak

from scripts.deploy import ProtocolParameters
from scripts.protocol import Status, randomness, secret_hash, seed_hash
from tests.contracts.driver import (
    CHECKPOINT_ROOT,
    PROOF_CID,
    SECRET,
    SEED,
    SEED_HASH,
    SEGMENTS,
    Clock,
    Driver,
    Parties,
    hexed,
    plain,
    reverts,
    rpc,
)


def test_commit_records_the_proof_and_the_seed_hash(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    task_id = driver.to_status(Status.TRAINING)
    at = clock.advance(13)
    tx = pool.commit(task_id, PROOF_CID, CHECKPOINT_ROOT, SEED_HASH, {"from": parties.solver})
    task = pool.task(task_id)
    assert task["status"] == Status.COMMITTED
    assert task["segments"] == SEGMENTS  # fixed at submission: a proof has exactly S segments
    assert task["flags"] == 0  # no randomness yet
    assert task["deadline"] == at + params.verifierClaimWindow
    assert plain(tx.events["ProofCommitted"]) == {
        "taskId": task_id,
        "solver": parties.solver,
        "proofCid": PROOF_CID,
        "checkpointRoot": CHECKPOINT_ROOT,
        "seedHash": SEED_HASH,
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


def test_commit_needs_a_checkpoint_root_a_seed_hash_and_a_cid(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    task_id = driver.to_status(Status.TRAINING)
    zero = "0x" + "00" * 32
    with reverts("EmptyCommitment"):
        pool.commit(task_id, PROOF_CID, zero, SEED_HASH, {"from": parties.solver})
    with reverts("EmptyCommitment"):
        pool.commit(task_id, PROOF_CID, CHECKPOINT_ROOT, zero, {"from": parties.solver})
    with reverts("InvalidCid", 0):
        pool.commit(task_id, "", CHECKPOINT_ROOT, SEED_HASH, {"from": parties.solver})


def test_commit_before_a_claim_is_refused(driver: Driver) -> None:
    task_id = driver.submit()
    with reverts("WrongStatus", task_id, int(Status.OPEN)):
        driver.commit(task_id)


# -- randomness: who could steer it --------------------------------------------------------


def coinbase(i: int) -> str:
    return "0x" + keccak(b"builder/" + bytes([i]))[-20:].hex()


def send(sender: Any, call: Any, *args: Any, value: int = 0) -> Any:
    """Send through web3: a replay after ``evm_revert`` repeats a transaction hash brownie has
    already seen, which it would wait on forever."""
    from brownie import web3

    transaction: Any = {
        "from": sender.address,
        "to": call._address,
        "data": call.encode_input(*args),
        "value": value,
        "gas": 1_000_000,
    }
    txid = web3.eth.send_transaction(transaction)
    receipt = web3.eth.wait_for_transaction_receipt(txid)
    assert receipt["status"] == 1
    return receipt


def grind_round(driver: Driver, task_id: int, commit: bool, builder: int) -> tuple[bytes, bytes]:
    """From Training (``commit``) or Committed: (the ground block's hash, the drawn randomness)."""
    pool, parties = driver.pool, driver.parties
    stake = driver.amounts().verifier_stake
    rpc("anvil_setCoinbase", [coinbase(builder)])
    if commit:
        receipt = send(parties.solver, pool.commit, task_id, PROOF_CID, CHECKPOINT_ROOT, SEED_HASH)
        rpc("anvil_setCoinbase", [coinbase(builder + 50)])
    claim = send(
        parties.verifier, pool.claimVerification, task_id, hexed(secret_hash(SECRET)), value=stake
    )
    ground = receipt if commit else claim
    before, commit_data, claim_data = driver.seed_proof(task_id)
    send(parties.solver, pool.revealSeed, task_id, hexed(SEED), before, commit_data, claim_data)
    return bytes(ground["blockHash"]), driver.randomness(task_id)


def test_grinding_the_commit_block_cannot_steer_the_sample(driver: Driver) -> None:
    """A solver that builds its own commit block tries many coinbases (each gives the block
    another hash) and keeps the one it likes: with the commit block's hash as the randomness it
    would have had as many samples to choose from; here every try draws the same randomness."""
    task_id = driver.to_status(Status.TRAINING)
    hashes, drawn = set(), set()
    for i in range(12):
        snapshot = rpc("evm_snapshot")
        try:
            ground, drew = grind_round(driver, task_id, commit=True, builder=i)
            hashes.add(ground)
            drawn.add(drew)
        finally:
            rpc("evm_revert", [snapshot])
    assert len(hashes) == 12  # the grinding worked on the block...
    assert len({keccak(h + task_id.to_bytes(32, "big")) for h in hashes}) == 12
    assert len(drawn) == 1  # ...and moved nothing
    assert drawn == {randomness(SEED, secret_hash(SECRET), task_id)}


def test_grinding_the_claim_block_cannot_steer_the_sample(driver: Driver) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    hashes, drawn = set(), set()
    for i in range(6):
        snapshot = rpc("evm_snapshot")
        try:
            ground, drew = grind_round(driver, task_id, commit=False, builder=100 + i)
            hashes.add(ground)
            drawn.add(drew)
        finally:
            rpc("evm_revert", [snapshot])
    assert len(hashes) == 6
    assert len(drawn) == 1


def test_waiting_does_not_re_roll_the_randomness(driver: Driver, clock: Clock) -> None:
    """Mining past blockhash's 256-block horizon before the claim, and blocks between the claim
    and the seed, changes nothing: the randomness depends only on what the two parties
    committed. (A seed revealed more than 256 blocks after the claim is refused:
    tests/contracts/test_verification.py.)"""
    task_id = driver.to_status(Status.COMMITTED)
    snapshot = rpc("evm_snapshot")
    try:
        _, promptly = grind_round(driver, task_id, commit=False, builder=7)
    finally:
        rpc("evm_revert", [snapshot])
    clock.mine(300)
    driver.claim_verification(task_id)
    clock.mine(200)
    driver.reveal_seed(task_id)
    assert driver.randomness(task_id) == promptly


def test_the_solvers_seed_and_the_verifiers_secret_both_move_the_randomness() -> None:
    """Each party committed to its share before it could see the other's: whichever share the
    solver picks, a verifier secret it does not know decides the draw, and the other way round."""
    seeds = [keccak(bytes([i])) for i in range(8)]
    secrets = [secret_hash(keccak(b"v" + bytes([i]))) for i in range(8)]
    table = {(s, v): randomness(s, v, 7) for s in seeds for v in secrets}
    assert len(set(table.values())) == 64
    for s in seeds:
        assert len({table[(s, v)] for v in secrets}) == 8
    for v in secrets:
        assert len({table[(s, v)] for s in seeds}) == 8


def test_the_verifier_cannot_see_the_seed_before_it_commits(pool: Any, driver: Driver) -> None:
    # All the chain shows of the seed before the verifier's claim is its hash.
    task_id = driver.to_status(Status.TRAINING)
    tx = driver.commit(task_id)
    data = tx.events["ProofCommitted"]
    assert bytes(data["seedHash"]) == seed_hash(SEED)
    assert SEED.hex() not in tx.input


def test_a_re_verification_reuses_the_randomness(
    driver: Driver, parties: Parties, clock: Clock
) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    first = driver.randomness(task_id)
    driver.timeout(task_id)
    clock.mine(300)
    driver.claim_verification(task_id, by=parties.stranger, secret=keccak(b"another verifier"))
    with reverts("WrongStatus", task_id, int(Status.VERIFYING)):
        driver.reveal_seed(task_id)  # nothing left to reveal
    assert driver.randomness(task_id) == first


def test_a_withheld_seed_ends_the_task_without_a_new_draw(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    """The solver sees the verifier's share before revealing its seed; withholding it is settled
    like a failed proof (its stake is slashed), so it cannot shop for another verifier's share."""
    task_id = driver.to_status(Status.COMMITTED)
    driver.claim_verification(task_id)
    tx = driver.timeout(task_id)
    assert tx.events["TaskTimedOut"]["penalised"] == parties.solver
    assert tx.events["TaskSettled"]["outcome"] == 7  # SeedWithheld
    with reverts("WrongStatus", task_id, int(Status.SETTLED)):
        driver.claim_verification(task_id, by=parties.stranger)
