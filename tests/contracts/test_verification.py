"""claimVerification, revealSeed and reportVerification: stakes, both shares of the randomness,
the verdict rule, extra segments."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from agents.rules import CLAIM_BLOCK_REACH, MAX_SEED_REVEAL_WINDOW
from scripts.deploy import ProtocolParameters, deploy_pool, pool_contract
from scripts.network import revert, snapshot
from scripts.protocol import Flag, Mode, Outcome, Status, Verdict, randomness, secret_hash
from tests.contracts.driver import (
    BOUNTY,
    SECRET,
    SECRET_HASH,
    SEED,
    TAU,
    Clock,
    Driver,
    Parties,
    balance,
    error_data,
    f32,
    held,
    hexed,
    last_folded,
    plain,
    reverts,
    rpc,
    trace_roots,
)

ZERO = "0x" + "00" * 32
SEAL = "0x" + keccak(b"seal").hex()


def report(pool: Any, task_id: int, distances: list[int], by: Any, extras: Any = ([], [])) -> Any:
    return pool.reportVerification(
        task_id,
        (distances, extras[0], extras[1], trace_roots(len(distances) + len(extras[0])), SEAL),
        {"from": by},
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
    # Before the randomness exists the solver must reveal its seed, within the seed window.
    assert task["deadline"] == at + params.seedRevealWindow
    assert (task["rounds"], task["flags"]) == (1, 0)
    assert plain(tx.events["VerificationClaimed"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "secretHash": SECRET_HASH,
        "stake": amounts.verifier_stake,
        "deadline": at + params.seedRevealWindow,
        "claimBlock": tx.block_number,
    }
    assert held(pool, task_id) == (BOUNTY, amounts.solver_stake + amounts.verifier_stake, 0)


def test_neither_the_solver_nor_the_submitter_may_verify(driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    with reverts("SolverCannotVerify", task_id, parties.solver.address):
        driver.claim_verification(task_id, by=parties.solver)
    with reverts("SubmitterCannotVerify", task_id, parties.submitter.address):
        driver.claim_verification(task_id, by=parties.submitter)


def test_verification_claim_needs_a_secret_hash_and_the_stake(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    stake = driver.amounts().verifier_stake
    with reverts("EmptyCommitment"):
        pool.claimVerification(task_id, ZERO, {"from": parties.verifier, "value": stake})
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


# -- the solver's seed ---------------------------------------------------------------------


def test_the_revealed_seed_fixes_the_randomness(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    from brownie import web3

    task_id = driver.to_status(Status.COMMITTED)
    claim = driver.claim_verification(task_id)
    record = bytes(pool.task(task_id)["record"])
    at = clock.advance(23)
    tx = driver.reveal_seed(task_id)
    expected = randomness(SEED, secret_hash(SECRET), task_id)
    assert plain(tx.events["RandomnessDrawn"]) == {
        "taskId": task_id,
        "solver": parties.solver,
        "randomness": hexed(expected),
        "seed": hexed(SEED),
        "deadline": at + params.verifyWindow,
        # The hash of the block that holds the claim, as the chain knows it.
        "claimBlockHash": hexed(bytes(web3.eth.get_block(claim.block_number)["hash"])),
    }
    task = pool.task(task_id)
    assert task["status"] == Status.VERIFYING
    assert task["deadline"] == at + params.verifyWindow  # the replay window starts now
    assert task["flags"] == Flag.RANDOMNESS | Flag.FORCEABLE
    assert bytes(task["record"]) != record


def test_only_the_solver_reveals_its_seed(driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    driver.claim_verification(task_id)
    for other in (parties.verifier, parties.stranger):
        with reverts("NotAuthorized", task_id, other.address):
            driver.reveal_seed(task_id, by=other)


def test_a_wrong_seed_is_refused(driver: Driver) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    driver.claim_verification(task_id)
    with reverts("WrongSeed", task_id):
        driver.reveal_seed(task_id, seed=keccak(b"another seed"))


def test_a_seed_revealed_past_the_claims_block_hash_still_counts_and_forces_nothing(
    pool: Any, driver: Driver, clock: Clock
) -> None:
    """The chain gives the hashes of the 256 blocks before the current one, and anyone can mine
    blocks between the claim and the reveal (on a devnet every transaction is one). A seed
    revealed later still fixes the randomness, so that nobody can have an honest solver slashed
    for a withheld seed by pushing its claim's block out of reach: the draw records a zero claim
    block hash and the claim is not forceable (nothing to reveal, no forced error)."""
    in_reach = driver.to_status(Status.COMMITTED)
    claim = driver.claim_verification(in_reach)
    clock.mine(255)  # the reveal lands 256 blocks after the claim
    tx = driver.reveal_seed(in_reach)
    assert tx.block_number - claim.block_number == 256
    assert driver.claim_block_hash(in_reach) != bytes(32)
    assert driver.flags(in_reach) == Flag.RANDOMNESS | Flag.FORCEABLE

    late = driver.to_status(Status.COMMITTED)
    claim = driver.claim_verification(late)
    clock.mine(256)
    tx = driver.reveal_seed(late)
    assert tx.block_number - claim.block_number == 257
    assert tx.events["RandomnessDrawn"]["randomness"] == hexed(
        randomness(SEED, secret_hash(SECRET), late)
    )
    assert driver.claim_block_hash(late) == bytes(32)
    task = pool.task(late)
    assert (task["status"], task["flags"]) == (Status.VERIFYING, Flag.RANDOMNESS)
    assert not driver.forced(late)
    assert not pool.forcedError(hexed(SECRET), hexed(driver.randomness(late)), ZERO)


def test_on_a_chain_of_12_second_blocks_the_longest_seed_window_ends_within_the_claims_reach(
    project: Any, deployment: Any, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    """A solver alone cannot make its verifier's claim unforceable by waiting: with one block
    per 12 seconds (Ethereum's slots) and the longest seed window a pool accepts, the last
    block the window admits is still within the 256 blocks whose hashes the chain gives, and
    one second later the seed counts as withheld."""
    from brownie import web3

    longest = dataclasses.replace(params, seedRevealWindow=MAX_SEED_REVEAL_WINDOW)
    deployed = deploy_pool(
        project,
        parties.deployer,
        longest,
        deployment.jackpot.address,
        deployment.game.address,
        silent=True,
    )
    driver = Driver(pool_contract(project, deployed.address), longest, parties, clock)
    task_id = driver.to_status(Status.COMMITTED)
    claim = driver.claim_verification(task_id)
    claimed_at = clock.now()
    deadline = int(driver.task(task_id)["deadline"])
    assert deadline == claimed_at + MAX_SEED_REVEAL_WINDOW
    slots = (deadline - claimed_at) // 12
    # Every slot before the last one gets its block; the reveal takes the last slot's.
    for slot in range(1, slots):
        rpc("evm_mine", [claimed_at + 12 * slot])
    assert clock.now() == claimed_at + 12 * (slots - 1)
    before = snapshot()
    clock.next_at(deadline + 1)
    with reverts("DeadlinePassed", task_id, deadline):
        driver.reveal_seed(task_id)
    revert(before)
    clock.next_at(claimed_at + 12 * slots)
    tx = driver.reveal_seed(task_id)
    assert tx.block_number - claim.block_number == slots <= CLAIM_BLOCK_REACH
    assert driver.claim_block_hash(task_id) == bytes(web3.eth.get_block(claim.block_number)["hash"])
    assert driver.flags(task_id) == Flag.RANDOMNESS | Flag.FORCEABLE


def test_a_seed_revealed_in_the_claims_block_is_refused(pool: Any, driver: Driver) -> None:
    """The hash of the block that holds the claim is not known inside it: a reveal mined in the
    same block reverts (the solver reveals again in a later one, and it counts)."""
    from brownie import web3
    from web3.types import Wei

    task_id = driver.to_status(Status.COMMITTED)
    solver, verifier = driver.parties.solver, driver.parties.verifier
    stake = driver.amounts().verifier_stake
    params = driver.params
    rpc("evm_setAutomine", [False])
    try:
        claim_hash = web3.eth.send_transaction(
            {
                "from": verifier.address,
                "to": pool.address,
                "value": Wei(stake),
                "gas": 500_000,
                "data": pool.claimVerification.encode_input(task_id, SECRET_HASH),
            }
        )
        # The claim's event data, as it will be logged: its deadline and block are the next block's.
        block = driver.clock.block() + 1
        at = driver.clock.now() + 1
        driver.clock.next_at(at)
        claim_data = encode(
            ["bytes32", "uint256", "uint40", "uint256"],
            [secret_hash(SECRET), stake, at + params.seedRevealWindow, block],
        )
        commit = last_folded(pool, task_id, "ProofCommitted")
        reveal_hash = web3.eth.send_transaction(
            {
                "from": solver.address,
                "to": pool.address,
                "gas": 500_000,
                "data": pool.revealSeed.encode_input(
                    task_id, hexed(SEED), hexed(commit.before), commit.data, claim_data
                ),
            }
        )
        rpc("evm_mine", [])
    finally:
        rpc("evm_setAutomine", [True])
    claimed = web3.eth.get_transaction_receipt(claim_hash)
    revealed = web3.eth.get_transaction_receipt(reveal_hash)
    assert claimed["status"] == 1 and claimed["blockNumber"] == block
    assert (revealed["status"], revealed["blockNumber"]) == (0, block)
    trace = rpc("debug_traceTransaction", [reveal_hash.hex(), {"disableStorage": True}])
    assert "0x" + trace["returnValue"].removeprefix("0x") == error_data(
        "ClaimBlockOutOfReach", task_id, block
    )
    assert driver.flags(task_id) == 0  # no randomness yet: the solver reveals again, later
    tx = driver.reveal_seed(task_id)
    assert driver.claim_block_hash(task_id) == bytes(web3.eth.get_block(block)["hash"])
    assert tx.block_number == block + 1


def test_the_seed_is_checked_against_the_record(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    driver.claim_verification(task_id)
    before, commit, claim = driver.seed_proof(task_id)
    # Data that does not rebuild the record cannot smuggle in another seed hash or secret hash.
    forged = commit[:64] + keccak(b"forged").rjust(32, b"\0") + commit[96:]
    for args in (
        (ZERO, commit, claim),
        (before, forged, claim),
        (before, commit, claim[:-1] + b"x"),
    ):
        with reverts("RecordMismatch", task_id):
            pool.revealSeed(task_id, hexed(SEED), *args, {"from": parties.solver})


def test_the_seed_is_revealed_once_and_in_time(driver: Driver) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    driver.claim_verification(task_id)
    deadline = int(driver.task(task_id)["deadline"])
    driver.clock.next_at(deadline + 1)
    with reverts("DeadlinePassed", task_id, deadline):
        driver.reveal_seed(task_id)
    other = driver.to_status(Status.VERIFYING)
    with reverts("WrongStatus", other, int(Status.VERIFYING)):
        driver.reveal_seed(other)


def test_a_report_waits_for_the_randomness(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    driver.claim_verification(task_id)
    with reverts("RandomnessPending", task_id):
        report(pool, task_id, [0] * 6, parties.verifier)


# -- report --------------------------------------------------------------------------------


def test_report_within_threshold_passes_and_opens_the_challenge_window(
    pool: Any, driver: Driver, parties: Parties, clock: Clock, params: ProtocolParameters
) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    distances = [0] * 6
    at = clock.advance(19)
    tx = report(pool, task_id, distances, parties.verifier)
    task = pool.task(task_id)
    assert (task["status"], task["outcome"]) == (Status.CHALLENGE_WINDOW, Outcome.PASSED)
    assert task["deadline"] == at + params.challengeWindow
    assert plain(tx.events["VerificationReported"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "distances": distances,
        "extraSegments": [],
        "extraDistances": [],
        "traceRoots": trace_roots(6),
        "sealedTraceRoots": SEAL,
        "verdict": Verdict.PASS,
        "challengeDeadline": at + params.challengeWindow,
    }
    assert last_folded(pool, task_id, "VerificationReported").args["verdict"] == Verdict.PASS


# Tolerant mode, τ = 0.05: the chain derives the verdict from the distances alone.
VERDICTS = [
    ([0, 0, 0, 0, 0, 0], Verdict.PASS),
    ([TAU] * 6, Verdict.PASS),  # equal to τ passes
    ([0, 1, TAU - 1, 1, 0, 0], Verdict.PASS),  # subnormal and just below τ
    ([0, 0, 0, 0, 0, TAU + 1], Verdict.FAIL),  # one ulp above τ
    ([f32(0.5), 0, 0, 0, 0, 0], Verdict.FAIL),
    ([0x7F800000, 0, 0, 0, 0, 0], Verdict.FAIL),  # +inf
    ([0, 0x7FC00000, 0, 0, 0, 0], Verdict.FAIL),  # the canonical NaN
    ([0, 0, 0x7F800001, 0, 0, 0], Verdict.FAIL),  # a signalling NaN pattern
    ([0x7F7FFFFF] * 6, Verdict.FAIL),  # largest finite
]


@pytest.mark.parametrize(("distances", "verdict"), VERDICTS)
def test_verdict_is_pass_iff_every_distance_is_at_most_tau(
    pool: Any, driver: Driver, parties: Parties, distances: list[int], verdict: Verdict
) -> None:
    task_id = driver.to_status(Status.VERIFYING, Mode.TOLERANT)
    assert pool.task(task_id)["threshold"] == TAU
    tx = report(pool, task_id, distances, parties.verifier)
    assert tx.events["VerificationReported"]["verdict"] == verdict
    expected = Outcome.PASSED if verdict == Verdict.PASS else Outcome.FAILED
    assert pool.task(task_id)["outcome"] == expected


def test_exact_mode_passes_only_zero_distances(pool: Any, driver: Driver, parties: Parties) -> None:
    passing = driver.to_status(Status.VERIFYING)
    failing = driver.to_status(Status.VERIFYING)
    report(pool, passing, [0] * 6, parties.verifier)
    report(pool, failing, [0, 1, 0, 0, 0, 0], parties.verifier)
    assert pool.task(passing)["outcome"] == Outcome.PASSED
    assert pool.task(failing)["outcome"] == Outcome.FAILED


@pytest.mark.parametrize("bad", [0x80000000, f32(-0.5), 0xFF800000, 0xFFC00000])
def test_distances_with_the_sign_bit_are_invalid(
    pool: Any, driver: Driver, parties: Parties, bad: int
) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    with reverts("InvalidDistance", 2, bad):
        report(pool, task_id, [0, 0, bad, 0, 0, 0], parties.verifier)
    # Extra distances are numbered after the sampled ones.
    with reverts("InvalidDistance", 7, bad):
        report(pool, task_id, [0] * 6, parties.verifier, ([3, 5], [0, bad]))


@pytest.mark.parametrize(
    ("segments", "sampled", "count"), [(1, 3, 1), (5, 3, 5), (6, 4, 6), (10, 4, 6), (10, 3, 5)]
)
def test_one_distance_per_sampled_segment(
    pool: Any, driver: Driver, parties: Parties, segments: int, sampled: int, count: int
) -> None:
    # min(S, s + 2): the first and the last segment and s random ones.
    task_id = driver.submit(segments=segments, sampled=sampled)
    driver.claim(task_id)
    driver.commit(task_id)
    driver.verify_with(task_id, None)
    assert pool.sampleCount(task_id) == count
    for wrong in (count - 1, count + 1):
        with reverts("WrongDistanceCount", count, wrong):
            report(pool, task_id, [0] * wrong, parties.verifier)
    report(pool, task_id, [0] * count, parties.verifier)


def test_extra_segments_enter_the_verdict(pool: Any, driver: Driver, parties: Parties) -> None:
    passing = driver.to_status(Status.VERIFYING)
    failing = driver.to_status(Status.VERIFYING)
    tx = report(pool, passing, [0] * 6, parties.verifier, ([1, 2, 9], [0, 0, 0]))
    assert plain(tx.events["VerificationReported"]["extraSegments"]) == [1, 2, 9]
    report(pool, failing, [0] * 6, parties.verifier, ([4], [1]))
    assert pool.task(passing)["outcome"] == Outcome.PASSED
    assert pool.task(failing)["outcome"] == Outcome.FAILED


@pytest.mark.parametrize(
    ("segments", "distances", "index"),
    [
        ([3, 3], [0, 0], 1),  # not strictly increasing
        ([5, 2], [0, 0], 1),
        ([10], [0], 0),  # not below S
        ([2, 3], [0], 2),  # one distance short: the count is the index
        (list(range(10)) * 7, [0] * 70, 70),  # more than 64
    ],
)
def test_extra_segments_are_checked(
    pool: Any,
    driver: Driver,
    parties: Parties,
    segments: list[int],
    distances: list[int],
    index: int,
) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    with reverts("InvalidExtraSegments", index):
        report(pool, task_id, [0] * 6, parties.verifier, (segments, distances))


def test_only_the_verifier_reports(driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    for other in (parties.stranger, parties.solver):
        with reverts("NotAuthorized", task_id, other.address):
            driver.report(task_id, by=other)


def test_report_needs_a_seal_and_a_trace_root_per_segment(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    with reverts("EmptyCommitment"):
        pool.reportVerification(
            task_id, ([0] * 6, [], [], trace_roots(6), ZERO), {"from": parties.verifier}
        )
    for count in (5, 7):
        with reverts("WrongTraceRootCount", 6, count):
            pool.reportVerification(
                task_id, ([0] * 6, [], [], trace_roots(count), SEAL), {"from": parties.verifier}
            )
    # With extra segments, one more root each.
    with reverts("WrongTraceRootCount", 7, 6):
        pool.reportVerification(
            task_id, ([0] * 6, [3], [0], trace_roots(6), SEAL), {"from": parties.verifier}
        )


def test_report_after_the_verify_window_is_refused(driver: Driver) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    deadline = int(driver.task(task_id)["deadline"])
    driver.past_deadline(task_id)
    with reverts("DeadlinePassed", task_id, deadline):
        driver.report(task_id)


def test_report_needs_a_verification_claim(pool: Any, driver: Driver, parties: Parties) -> None:
    task_id = driver.to_status(Status.COMMITTED)
    with reverts("WrongStatus", task_id, int(Status.COMMITTED)):
        report(pool, task_id, [0] * 6, parties.verifier)
