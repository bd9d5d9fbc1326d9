"""Events are complete: a task's record, status and deadline follow from its logs alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_utils.crypto import keccak

from scripts.protocol import FOLDED_EVENTS, Mode, Status, record_from_logs
from tests.contracts.driver import Driver, Parties

# The status each event leaves a task in (TaskTimedOut is followed by the event that decides).
STATUS_AFTER = {
    "TaskSubmitted": None,  # Open or Submitted, by mode
    "TaskProfiled": Status.OPEN,
    "ProfileAccepted": Status.OPEN,
    "ProfileRejected": Status.SUBMITTED,
    "TaskClaimed": Status.TRAINING,
    "ProofCommitted": Status.COMMITTED,
    "VerificationClaimed": Status.VERIFYING,
    "RandomnessDrawn": Status.VERIFYING,
    "VerificationReported": Status.CHALLENGE_WINDOW,
    "VerificationRevealed": None,  # a forced report stays open; otherwise TaskSettled follows
    "VerificationReopened": Status.COMMITTED,
    "TaskSettled": Status.SETTLED,
}
DEADLINE_FIELD = {
    "TaskSubmitted": "deadline",
    "TaskProfiled": "deadline",
    "ProfileAccepted": "deadline",
    "ProfileRejected": "deadline",
    "TaskClaimed": "deadline",
    "ProofCommitted": "deadline",
    "VerificationClaimed": "deadline",
    "RandomnessDrawn": "deadline",
    "VerificationReported": "challengeDeadline",
    "VerificationReopened": "deadline",
}


def signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"


def task_logs(pool: Any, task_id: int) -> list[dict[str, Any]]:
    """The pool's raw logs about ``task_id`` (its id is the first indexed topic), in chain order."""
    from brownie import web3

    return [
        dict(log)
        for log in web3.eth.get_logs(
            {
                "address": pool.address,
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": [None, "0x" + task_id.to_bytes(32, "big").hex()],
            }
        )
    ]


def replay(pool: Any, task_id: int) -> tuple[bytes, Status, int]:
    """The record, status and deadline of a task rebuilt from its logs."""
    events = {e["name"]: e for e in pool.abi if e["type"] == "event"}
    topic0 = {name: keccak(signature(entry).encode()) for name, entry in events.items()}
    names = {value: name for name, value in topic0.items()}
    logs = task_logs(pool, task_id)
    status, deadline = Status.NONE, 0
    contract = pool_web3(pool)
    for log in logs:
        name = names[bytes(log["topics"][0])]
        args = getattr(contract.events, name)().process_log(log)["args"]
        after = STATUS_AFTER.get(name)
        if name == "TaskSubmitted":
            status = Status.OPEN if args["mode"] == Mode.EXACT else Status.SUBMITTED
        elif after is not None:
            status = after
        if name in DEADLINE_FIELD:
            deadline = int(args[DEADLINE_FIELD[name]])
        if name == "VerificationRevealed" and args["forced"] and args["challengeDeadline"]:
            deadline = int(args["challengeDeadline"])
    return record_from_logs(logs, topic0, task_id), status, deadline


def pool_web3(pool: Any) -> Any:
    from brownie import web3

    return web3.eth.contract(address=pool.address, abi=pool.abi)


def test_record_status_and_deadline_follow_from_the_logs(driver: Driver, parties: Parties) -> None:
    pool = driver.pool
    task_id = driver.submit(Mode.TOLERANT)
    steps: list[Callable[[], Any]] = [
        lambda: driver.profile(task_id),
        lambda: driver.reject_profile(task_id),  # a profile the submitter does not want
        lambda: driver.profile(task_id, by=parties.stranger),
        lambda: driver.accept_profile(task_id),
        lambda: driver.claim(task_id),
        lambda: driver.commit(task_id),
        lambda: driver.claim_verification(task_id),
        lambda: driver.reveal_seed(task_id),
        lambda: driver.timeout(task_id),  # the verifier stalls: slashed, verification reopens
        lambda: driver.claim_verification(task_id, by=parties.stranger),
        lambda: driver.report(task_id, passed=False, by=parties.stranger),
        lambda: driver.settle(task_id),
        lambda: pool.withdraw([task_id], {"from": parties.submitter}),
    ]
    records = set()
    for step in [lambda: None, *steps]:
        step()
        task = pool.task(task_id)
        record, status, deadline = replay(pool, task_id)
        assert record == bytes(task["record"])
        assert status == task["status"]
        if status != Status.SETTLED:
            assert deadline == task["deadline"]
        records.add(record)
    # Submit, two profiles, commit, the first claim, the seed, the second claim and the report.
    assert len(records) == 8


def test_only_commitment_events_change_the_record(driver: Driver) -> None:
    task_id = driver.submit()
    before = bytes(driver.task(task_id)["record"])
    driver.claim(task_id)  # TaskClaimed is not folded: the stake and deadline are stored
    assert bytes(driver.task(task_id)["record"]) == before
    assert "TaskClaimed" not in FOLDED_EVENTS
    driver.commit(task_id)
    assert bytes(driver.task(task_id)["record"]) != before


def test_records_of_identical_submissions_differ_by_task_id(driver: Driver) -> None:
    first, second = driver.submit(), driver.submit()
    assert driver.task(first)["record"] != driver.task(second)["record"]
