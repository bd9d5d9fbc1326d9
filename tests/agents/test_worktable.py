"""The work table: what a restarted agent knows about its jobs, retries with their back-off, and
giving up; spec facts kept across restarts."""

from __future__ import annotations

import sqlite3

import pytest

from agents.commitment import Root
from agents.roles.jobs import ReplayResult, TrainResult
from agents.roles.situation import SpecFacts, WorkState
from agents.roles.worktable import WORK_ATTEMPTS, WORK_RETRY_S, WorkTable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table() -> tuple[WorkTable, Clock]:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.row_factory = sqlite3.Row
    clock = Clock()
    return WorkTable(db, clock), clock


RESULT = TrainResult("QmProof", Root(bytes(range(32))), 4)


def test_a_done_job_keeps_its_typed_result(table: tuple[WorkTable, Clock]) -> None:
    work, _ = table
    work.started("train/1", 1, "train")
    work.finished(WorkState("train/1", "done", RESULT))
    assert work.states({}) == {"train/1": WorkState("train/1", "done", RESULT)}
    replay = ReplayResult((0, 1), (Root(bytes(32)), Root(bytes(31) + b"\x01")), "fail", ("why",))
    work.started("replay/2", 2, "replay")
    work.finished(WorkState("replay/2", "done", replay))
    assert work.states({})["replay/2"].result == replay


def test_a_job_running_when_the_agent_died_is_interrupted(table: tuple[WorkTable, Clock]) -> None:
    work, _ = table
    work.started("train/1", 1, "train")
    assert work.states({})["train/1"].status == "interrupted"
    live = {"train/1": WorkState("train/1", "running")}
    assert work.states(live)["train/1"].status == "running"


def test_failed_jobs_retry_after_a_growing_wait_then_give_up(
    table: tuple[WorkTable, Clock],
) -> None:
    work, clock = table
    seen = []
    for attempt in range(1, WORK_ATTEMPTS + 1):
        work.started("train/1", 1, "train")
        work.finished(WorkState("train/1", "failed", error=f"boom {attempt}"))
        state = work.states({})["train/1"]
        assert state.status == "failed" and state.error == f"boom {attempt}"
        # Just before the attempt's back-off is over: still failed; after it: run again.
        clock.now += WORK_RETRY_S * attempt - 0.5
        seen.append(work.states({})["train/1"].status)
        clock.now += 1.0
        seen.append(work.states({})["train/1"].status)
    # After the last attempt the task is given up for good.
    assert seen == ["failed", "interrupted"] * (WORK_ATTEMPTS - 1) + ["failed", "failed"]
    clock.now += 10**6
    assert work.states({})["train/1"].status == "failed"


def test_spec_facts_survive_a_restart(table: tuple[WorkTable, Clock]) -> None:
    work, _ = table
    facts = SpecFacts(ops=10, steps=4, segments=2, exact=False)
    work.save_facts(3, facts)
    again = WorkTable(work.db)
    assert again.load_facts() == {3: facts}
