"""The pool's other halves at their own addresses: everyone calls them through the pool (its
fallback, OpenZeppelin's ``Proxy``, runs them by delegatecall on the pool's storage). Called
directly, each reads its own, empty storage: no task, no credit, no money; nothing a direct call
does can touch the pool's tasks or funds."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.deploy import pool_contract
from scripts.protocol import Mode, Status
from tests.contracts.driver import Driver, Parties, balance, held, hexed, reverts


def halves(project: Any, pool: Any) -> tuple[Any, Any, Any]:
    """Each half at its own address, with every function of the pool (a selector a half lacks
    goes to its fallback: the settlement and challenges halves pass it on, the fault reports'
    half has none)."""
    settlement = project.TaskPoolSettlement.at(pool.settlement())
    challenges = project.TaskPoolChallenges.at(settlement.challenges())
    return (
        pool_contract(project, settlement.address),
        pool_contract(project, challenges.address),
        pool_contract(project, challenges.faults()),
    )


def snapshot(pool: Any, task_ids: list[int], accounts: list[Any]) -> Any:
    return (
        int(pool.balance()),
        int(pool.jackpotAccrued()),
        tuple(pool.challengeFunds()),
        [tuple(pool.task(t)) for t in task_ids],
        [held(pool, t) for t in task_ids],
        [int(pool.credit(a)) for a in accounts],
    )


def test_the_halves_called_directly_do_nothing(
    project: Any, pool: Any, driver: Driver, parties: Parties
) -> None:
    from brownie.exceptions import VirtualMachineError

    settlement, challenges, faults = halves(project, pool)
    # Tasks in every state that moves money: a profile under review, a verdict past its
    # window, a report open to challenge, an open task a stranger could try to cancel.
    reviewed = driver.submit(Mode.TOLERANT)
    driver.profile(reviewed)
    settleable = driver.to_status(Status.CHALLENGE_WINDOW)
    driver.clock.next_at(int(driver.task(settleable)["deadline"]) + 10_000)
    challengeable = driver.to_status(Status.CHALLENGE_WINDOW)
    unclaimed = driver.submit()
    tasks = [reviewed, settleable, challengeable, unclaimed]
    everyone = [parties.submitter, parties.solver, parties.verifier, parties.profiler]
    before = snapshot(pool, tasks, everyone)
    assert before[0] > 0
    fee = driver.amounts().profile_rejection_fee
    bond = int(pool.challengeBond())
    assert balance(faults) == 0
    for half in (settlement, challenges):
        assert balance(half) == 0
        assert int(half.challengeFunds()[0]) == int(half.challengeFunds()[1]) == 0
        assert all(int(half.credit(a)) == 0 for a in everyone)
    assert int(settlement.jackpotAccrued()) == 0
    assert all(held(settlement, t) == (0, 0, 0) for t in tasks)
    for task_id in tasks:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("cancel", {"from": parties.submitter}),
            ("settle", {"from": parties.stranger}),
            ("timeout", {"from": parties.stranger}),
            ("acceptProfile", {"from": parties.submitter}),
            ("rejectProfile", {"from": parties.submitter, "value": fee}),
        ]
        for name, tx in calls:
            with reverts("UnknownTask", task_id):
                getattr(settlement, name)(task_id, tx)
        for half in (settlement, challenges):  # the settlement half passes these on
            with reverts("UnknownTask", task_id):
                half.challengeProof(
                    task_id, 0, hexed(b"\x01" * 32), {"from": parties.stranger, "value": bond}
                )
        for half in (settlement, challenges, faults):  # the first two pass these on
            with reverts("UnknownTask", task_id):
                half.reportFault(
                    task_id, hexed(b"\x01" * 32), hexed(b"\x02" * 32), {"from": parties.verifier}
                )
            with reverts("UnknownTask", task_id):
                half.publishState(task_id, 0, [], [], [], {"from": parties.solver})
            assert not half.faultReport(task_id)
    with reverts("NothingToSweep"):
        settlement.sweepJackpot({"from": parties.stranger})
    for half in (settlement, challenges, faults):
        with pytest.raises(VirtualMachineError):
            parties.stranger.transfer(half.address, 1)
    for half in (settlement, challenges):
        with reverts("UnknownChallenge", 1):
            half.resolve(1, {"from": parties.stranger})
        with reverts("NothingToWithdraw", parties.stranger.address):
            half.withdrawCredit({"from": parties.stranger})
        # Plain transfers are refused; the pool's own lifecycle calls are not there at all.
        with pytest.raises(VirtualMachineError):
            parties.stranger.transfer(half.address, 1)
    # The pool's own calls are not in the halves: the settlement half passes them on to the
    # challenges half, which passes them on to the fault reports' half, which has no fallback.
    for half in (settlement, challenges, faults):
        with pytest.raises(VirtualMachineError):
            half.withdraw([settleable], {"from": parties.solver})
        with pytest.raises(VirtualMachineError):
            half.claim(unclaimed, {"from": parties.solver, "value": driver.amounts().solver_stake})
    assert snapshot(pool, tasks, everyone) == before
    assert balance(settlement) == balance(challenges) == balance(faults) == 0
    # Through the pool the same calls still work (the windows are over).
    pool.timeout(reviewed, {"from": parties.stranger})
    pool.settle(settleable, {"from": parties.stranger})
    assert driver.status(reviewed) == driver.status(settleable) == Status.SETTLED
