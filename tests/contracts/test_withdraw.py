"""withdraw and sweepJackpot: pull payments, batching, settlement on withdrawal, reentrancy."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.protocol import Mode, Outcome, Status
from tests.contracts.driver import (
    BOUNTY,
    CHECKPOINT_ROOT,
    PROOF_CID,
    SEED,
    SEED_HASH,
    SPEC_CID,
    Clock,
    Driver,
    Parties,
    balance,
    hexed,
    reverts,
    rpc,
)

# A payee that fights back: it re-enters withdraw from its receive(), or refuses the payment.
RECEIVER_SOURCE = """
// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

interface IPool {
    struct Terms {
        bytes32 specHash;
        bytes32 programRoot;
        uint256 bounty;
        uint8 mode;
        uint32 trainingWindow;
        uint32 segments;
        uint16 sampledSegments;
        uint32 thresholdBound;
    }
    function submit(string calldata, Terms calldata) external payable returns (uint64);
    function cancel(uint64) external;
    function withdraw(uint64[] calldata) external returns (uint256);
}

contract HostileReceiver {
    IPool public immutable pool;
    uint64 public taskId;
    bool public reenter;
    bool public refuse;
    bytes public innerError;
    uint256 public received;

    constructor(IPool pool_) { pool = pool_; }

    function submitAndCancel(string calldata cid, IPool.Terms calldata terms) external payable {
        taskId = pool.submit{value: msg.value}(cid, terms);
        pool.cancel(taskId);
    }

    function behave(bool reenter_, bool refuse_) external {
        reenter = reenter_;
        refuse = refuse_;
    }

    function pull() external {
        pool.withdraw(_ids());
    }

    /// Acts as any party of the pool: forwards a call with value.
    function act(bytes calldata data, uint256 value) external payable {
        (bool ok, bytes memory reason) = address(pool).call{value: value}(data);
        if (!ok) {
            assembly { revert(add(reason, 32), mload(reason)) }
        }
    }

    function follow(uint64 taskId_) external {
        taskId = taskId_;
    }

    receive() external payable {
        if (refuse) revert("refused");
        received += msg.value;
        if (reenter) {
            reenter = false;
            try pool.withdraw(_ids()) {} catch (bytes memory reason) { innerError = reason; }
        }
    }

    function _ids() private view returns (uint64[] memory ids) {
        ids = new uint64[](1);
        ids[0] = taskId;
    }
}
"""


@pytest.fixture(scope="module")
def hostile_source(project: Any) -> Any:
    """The compiled HostileReceiver (compiled once: solc-js takes seconds)."""
    from brownie import compile_source

    evm_version: Any = "cancun"
    return compile_source(RECEIVER_SOURCE, solc_version="0.8.28", evm_version=evm_version)


@pytest.fixture
def hostile(hostile_source: Any, pool: Any, driver: Driver, parties: Parties) -> Any:
    """A contract that submitted a task and cancelled it: the pool owes it the bounty."""
    receiver = hostile_source.HostileReceiver.deploy(pool.address, {"from": parties.deployer})
    value = BOUNTY + driver.amounts().protocol_fee
    receiver.submitAndCancel(SPEC_CID, driver.terms(), {"from": parties.deployer, "value": value})
    assert pool.owed(receiver.taskId(), receiver.address) == BOUNTY
    return receiver


def test_reentering_withdraw_is_refused_and_pays_once(
    pool: Any, hostile: Any, parties: Parties
) -> None:
    from eth_utils.crypto import keccak

    hostile.behave(True, False, {"from": parties.deployer})
    hostile.pull({"from": parties.deployer})
    assert hostile.received() == BOUNTY
    assert bytes(hostile.innerError()) == keccak(b"ReentrancyGuardReentrantCall()")[:4]
    assert pool.owed(hostile.taskId(), hostile.address) == 0
    assert hostile.balance() == BOUNTY


def test_a_refused_payment_stays_owed(pool: Any, hostile: Any, parties: Parties) -> None:
    hostile.behave(False, True, {"from": parties.deployer})
    with reverts("TransferFailed", hostile.address, BOUNTY):
        hostile.pull({"from": parties.deployer})
    assert pool.owed(hostile.taskId(), hostile.address) == BOUNTY
    hostile.behave(False, False, {"from": parties.deployer})
    hostile.pull({"from": parties.deployer})
    assert hostile.balance() == BOUNTY


def test_a_payout_pushed_at_the_reveal_and_refused_stays_owed(
    pool: Any, hostile_source: Any, driver: Driver, parties: Parties
) -> None:
    """The verifier's reveal pays every party; a party that refuses (or burns the gas) cannot
    block the settlement: its payout stays owed and it withdraws it later."""
    solver = hostile_source.HostileReceiver.deploy(pool.address, {"from": parties.deployer})
    task_id = driver.submit()
    stake = driver.amounts().solver_stake
    solver.follow(task_id, {"from": parties.deployer})
    solver.act(pool.claim.encode_input(task_id), stake, {"from": parties.deployer, "value": stake})
    solver.act(
        pool.commit.encode_input(task_id, PROOF_CID, CHECKPOINT_ROOT, SEED_HASH),
        0,
        {"from": parties.deployer},
    )
    secret = driver.verify_with(task_id, forced=False, draw=False)
    before, commit, claim = driver.seed_proof(task_id)
    solver.act(
        pool.revealSeed.encode_input(task_id, hexed(SEED), before, commit, claim),
        0,
        {"from": parties.deployer},
    )
    driver.report(task_id, secret=secret)
    solver.behave(False, True, {"from": parties.deployer})
    driver.past_deadline(task_id)
    tx = driver.reveal(task_id, secret)
    assert tx.events["TaskSettled"]["outcome"] == Outcome.PASSED
    share = tx.events["TaskSettled"]["toSolver"]
    assert [e["account"] for e in tx.events["PayoutWithdrawn"]] == [parties.verifier]
    assert pool.owed(task_id, solver.address) == share
    solver.behave(False, False, {"from": parties.deployer})
    solver.pull({"from": parties.deployer})
    assert solver.balance() == share


def test_one_withdrawal_collects_many_tasks_and_pays_repeats_once(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    first, second = driver.submit(), driver.submit()
    for task_id in (first, second):
        pool.cancel(task_id, {"from": parties.submitter})
    before = balance(parties.submitter)
    tx = pool.withdraw([first, second, first], {"from": parties.submitter})
    assert tx.return_value == 2 * BOUNTY
    assert balance(parties.submitter) == before + 2 * BOUNTY
    paid = [(e["taskId"], e["account"], e["amount"]) for e in tx.events["PayoutWithdrawn"]]
    assert paid == [(first, parties.submitter, BOUNTY), (second, parties.submitter, BOUNTY)]


def test_tasks_that_owe_nothing_are_skipped(pool: Any, driver: Driver, parties: Parties) -> None:
    owing = driver.submit()
    pool.cancel(owing, {"from": parties.submitter})
    running = driver.to_status(Status.TRAINING)
    tx = pool.withdraw([running, 77, owing], {"from": parties.submitter})
    assert tx.return_value == BOUNTY
    with reverts("NothingToWithdraw", parties.submitter.address):
        pool.withdraw([running, 77, owing], {"from": parties.submitter})
    with reverts("NothingToWithdraw", parties.stranger.address):
        pool.withdraw([owing], {"from": parties.stranger})
    with reverts("NothingToWithdraw", parties.stranger.address):
        pool.withdraw([], {"from": parties.stranger})


def test_withdrawal_settles_a_verdict_past_its_challenge_window(
    pool: Any, driver: Driver, parties: Parties, clock: Clock
) -> None:
    # A re-verification cannot be a forced error, so nothing waits for a reveal.
    task_id = driver.to_status(Status.VERIFYING)
    driver.timeout(task_id)
    driver.claim_verification(task_id)
    driver.report(task_id)
    amounts = driver.amounts()
    solver_share = BOUNTY - amounts.verification_fee + amounts.solver_stake
    # Within the window there is nothing to take yet.
    with reverts("NothingToWithdraw", parties.solver.address):
        pool.withdraw([task_id], {"from": parties.solver})
    assert pool.owed(task_id, parties.solver) == 0
    deadline = int(driver.task(task_id)["deadline"])
    clock.next_at(deadline + 1)
    rpc("evm_mine")  # views read the latest block, now past the window
    assert pool.owed(task_id, parties.solver) == solver_share
    before = balance(parties.solver)
    tx = pool.withdraw([task_id], {"from": parties.solver})
    assert tx.events["TaskSettled"]["outcome"] == Outcome.PASSED
    assert tx.events["PayoutWithdrawn"]["amount"] == solver_share
    assert balance(parties.solver) == before + solver_share
    assert driver.status(task_id) == Status.SETTLED
    pool.withdraw([task_id], {"from": parties.verifier})
    assert pool.balance() == pool.jackpotAccrued()


def test_an_account_in_two_roles_is_paid_both_shares(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    # The solver profiled the task it then solves: one withdrawal pays both shares.
    task_id = driver.submit(Mode.TOLERANT)
    driver.profile(task_id, by=parties.solver)
    driver.accept_profile(task_id)
    driver.claim(task_id)
    driver.commit(task_id)
    secret = driver.verify_with(task_id, forced=False)
    driver.report(task_id, secret=secret)
    before = balance(parties.solver)
    settled = driver.finish(task_id, secret).events["TaskSettled"]
    both = settled["toSolver"] + settled["toProfiler"]
    assert pool.owed(task_id, parties.solver) == 0
    assert balance(parties.solver) - before == both  # paid both shares by the reveal
    assert pool.task(task_id)["withdrawn"] == 2 | 8 | 4  # solver, profiler and verifier


def test_sweep_moves_the_accrued_money_to_the_jackpot(
    pool: Any, jackpot: Any, driver: Driver, parties: Parties
) -> None:
    with reverts("NothingToSweep"):
        pool.sweepJackpot({"from": parties.stranger})
    driver.to_status(Status.TRAINING)
    no_commit = driver.to_status(Status.TRAINING)
    driver.timeout(no_commit)
    accrued = int(pool.jackpotAccrued())
    assert accrued > 0
    tx = pool.sweepJackpot({"from": parties.stranger})
    assert tx.events["JackpotSwept"]["amount"] == accrued
    assert tx.events["Funded"]["from"] == pool.address
    assert jackpot.balance() == accrued
    assert jackpot.reserve() == accrued
    assert pool.jackpotAccrued() == 0
