"""An agent's tick on a devnet: it reads the chain again only when the chain moved; the wait
between ticks while a job runs."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.commitment import Root
from agents.dispute.game import Ruling
from agents.errors import VeritrainError
from agents.roles import intents
from agents.roles.agent import FOLLOW_UP_S, Agent, between_ticks
from agents.roles.games import GameRecord
from agents.roles.jobs import JobResult
from agents.roles.situation import Send
from tests.agents import market as devnet_market

pytestmark = pytest.mark.chain


@pytest.fixture
def solver_agent(tmp_path: Path) -> Iterator[tuple[Agent, list[str]]]:
    """A solver agent on a fresh devnet, and the JSON-RPC methods its ticks request."""
    methods: list[str] = []

    def wrap(send: devnet_market.RequestOnce) -> devnet_market.RequestOnce:
        def counted(method: str, params: list[Any]) -> Any:
            methods.append(method)
            return send(method, params)

        return counted

    with devnet_market.solver_behind(tmp_path / "devnet", wrap) as agent:
        yield agent, methods


def test_an_idle_tick_asks_for_the_head_block_only(solver_agent: tuple[Agent, list[str]]) -> None:
    agent, methods = solver_agent
    agent.tick()
    assert "eth_getLogs" in methods  # the first tick reads everything
    for _ in range(3):
        methods.clear()
        agent.tick()
        assert methods == ["eth_getBlockByNumber"]


def test_a_new_block_is_read_in_full(solver_agent: tuple[Agent, list[str]]) -> None:
    agent, methods = solver_agent
    agent.tick()
    idle = agent.situation(fresh=False)
    agent.conn.client.rpc.request("evm_mine")
    methods.clear()
    agent.tick()
    assert methods[0] == "eth_getBlockByNumber"
    assert {"eth_getLogs", "eth_call", "eth_getBalance"} <= set(methods)
    # The balances an idle tick decides on are the ones the last full read found.
    fresh = agent.situation()
    assert (idle.credit, idle.jackpot_owed) == (fresh.credit, fresh.jackpot_owed)
    assert fresh.head == idle.head + 1


def test_a_block_replaced_at_the_same_height_is_read_again(tmp_path: Path) -> None:
    """A reorg that replaces the head block by another of the same number (the chain returns to
    a snapshot and mines a verifier's claim where an empty block was) moves the head's hash
    only: the agent reads the chain again, sees the claim and reveals its seed."""
    with devnet_market.open_market(tmp_path / "devnet") as market:
        task_id = market.committed_task()
        agent = devnet_market.solver_agent(market.conns["solver"])
        client = agent.conn.client
        agent.tick()
        assert agent.tasks[task_id].status == "Committed"
        before = client.rpc.request("evm_snapshot")
        client.rpc.request("evm_mine")
        agent.tick()
        empty = client.block("latest")
        assert agent.tasks[task_id].status == "Committed" and not devnet_market.reveals(agent.conn)

        assert client.rpc.request("evm_revert", [before]) is True
        market.claim_verification(task_id)
        claimed = client.block("latest")
        assert (claimed.number, claimed.hash != empty.hash) == (empty.number, True)
        actions = agent.tick()
        assert agent.tasks[task_id].status == "Verifying"
        assert [a.intent.function for a in actions if isinstance(a, Send)] == ["revealSeed"]
        agent.tick()  # follows the reveal to its receipt
        assert devnet_market.reveals(agent.conn) == {intents.reveal_seed(task_id): ("mined", 1)}
        assert agent.tasks[task_id].randomness is not None


def test_a_decision_reads_the_journal_once(solver_agent: tuple[Agent, list[str]]) -> None:
    """The statuses and failures a decision sees come from one read of the journal's table."""
    agent, _ = solver_agent
    journal = agent.executor.journal
    error = "TaskPool.claim reverted: WrongStatus(taskId=1, status=0)"
    journal.record_rejection(
        intent="claim/1",
        task_id=1,
        sender=agent.conn.me,
        target=agent.conn.me,
        description="claim",
        data=b"",
        value=0,
        error=error,
        retry_delay=0.0,
        at=0.0,
        trigger_block=3,
    )
    agent.tick()
    statements: list[str] = []
    journal.conn.set_trace_callback(statements.append)
    try:
        situation = agent.situation(fresh=False)
    finally:
        journal.conn.set_trace_callback(None)
    assert len([s for s in statements if "tx_journal" in s]) == 1
    assert situation.journal == journal.statuses() == {"claim/1": "rejected"}
    assert situation.failures == journal.failures()
    assert situation.failures["claim/1"] == (error, 3, 1)


@pytest.mark.parametrize(
    ("interval", "working_interval", "sent", "working", "following", "wait"),
    [
        (0.2, 1.0, False, False, False, 0.2),  # idle: the poll interval
        (0.2, 1.0, False, True, False, 1.0),  # a job runs: the working interval
        (2.0, 1.0, False, True, False, 2.0),  # never shorter than the poll interval
        (0.2, 1.0, False, True, True, 0.2),  # a transaction or a game followed: as idle
        (0.2, 1.0, True, True, False, FOLLOW_UP_S),  # just sent: look again soon
        (0.01, 1.0, True, False, False, 0.01),  # never longer than the poll interval
    ],
)
def test_the_wait_between_ticks(
    interval: float,
    working_interval: float,
    sent: bool,
    working: bool,
    following: bool,
    wait: float,
) -> None:
    got = between_ticks(interval, working_interval, sent=sent, working=working, following=following)
    assert got == wait


def test_a_working_agent_ticks_seldom_and_at_once_when_its_job_ends(tmp_path: Path) -> None:
    with devnet_market.solver_behind(tmp_path / "devnet", lambda send: send) as agent:
        config = agent.conn.config
        agent.conn.config = config.model_copy(
            update={
                "chain": config.chain.model_copy(
                    update={"poll_interval": 0.02, "working_poll_interval": 60.0}
                ),
                "agent": config.agent.model_copy(update={"warm_up": False}),
            }
        )
        ticks: list[float] = []
        tick = agent.tick

        def counted() -> list[Any]:
            ticks.append(time.monotonic())
            return tick()

        agent.tick = counted  # type: ignore[method-assign]
        release = threading.Event()

        def job() -> JobResult:
            release.wait(30)
            raise VeritrainError("the job ends")

        agent.runner.start("train/1", job)
        seen: dict[str, Any] = {}

        def control() -> None:
            # The loop runs on this test's thread (the agent's database is bound to it).
            deadline = time.monotonic() + 30
            while not ticks and time.monotonic() < deadline:
                time.sleep(0.01)  # the loop's first tick (a loaded machine starts it late)
            time.sleep(0.5)
            seen["working"] = len(ticks)
            seen["released"] = time.monotonic()
            release.set()
            time.sleep(1.5)
            seen["idle"] = len(ticks)
            agent.stop()

        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        controller = threading.Thread(target=control, daemon=True)
        controller.start()
        try:
            agent.run()
        finally:
            release.set()
            controller.join(timeout=30)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        # The first tick, then the working interval's wait (a tick that sent nothing).
        assert 1 <= seen["working"] <= 2
        woken = [t for t in ticks if t > seen["released"]]
        assert woken and woken[0] - seen["released"] < 1.0  # the job's end, not the 60 s wait
        assert seen["idle"] - seen["working"] >= 5  # no job: the poll interval again


def test_a_game_the_agent_plays_counts_as_followed(solver_agent: tuple[Agent, list[str]]) -> None:
    """``_playing`` (which keeps the poll interval while a job runs): an unresolved game this
    agent is a party to, not a resolved one nor one between others."""
    agent, _ = solver_agent
    assert agent.games is not None
    me, other, third = agent.conn.me, "0x" + "11" * 20, "0x" + "22" * 20

    def game(defender: str, challenger: str, ruling: str = "None") -> GameRecord:
        root = Root(bytes(32))
        return GameRecord(1, defender, challenger, challenger, root, root, 0, 1, ruling=ruling)

    cases = [
        (game(me, other), True),
        (game(other, me.lower()), True),
        (game(me, other, Ruling.DEFENDER_WINS.name), False),
        (game(other, third), False),
    ]
    for record, playing in cases:
        agent.games.games = {1: record}
        assert agent._playing() is playing
    agent.games.games = {}
    assert agent._playing() is False
