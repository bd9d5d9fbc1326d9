"""An agent's tick on a devnet: it reads the chain again only when the chain moved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.roles import intents
from agents.roles.agent import Agent
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
