"""The solver's seed reveal on a devnet when it reverts: a lasting revert ends the tries (said
once, loudly), a passing one is followed by one more try, and a restarted agent resumes on its
journal without sending anything twice."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils.crypto import keccak

from agents.chain.executor import FeePolicy
from agents.roles import intents, reverts
from tests.agents.market import Market, open_market, reveals, solver_agent

pytestmark = pytest.mark.chain


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path / "devnet") as opened:
        yield opened


def test_a_seed_the_pool_refuses_for_good_is_not_sent_again(
    market: Market, caplog: pytest.LogCaptureFixture
) -> None:
    """The committed seed hash is not the hash of the seed the agent derives (WrongSeed): the
    first estimation reverts, the agent logs it once as an error and sends nothing more, in
    later ticks as in a restarted process."""
    task_id = market.verifying_task(seed_hash=keccak(b"a seed this key does not derive"))
    agent = solver_agent(market.conns["solver"])
    key = intents.reveal_seed(task_id, 0)
    rpc = agent.conn.client.rpc
    with caplog.at_level(logging.INFO):
        agent.tick()
        assert reveals(agent.conn) == {key: ("rejected", 1)}
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        (said,) = [(r.getMessage(), getattr(r, "fields", {})) for r in errors]
        assert said[0] == "tx rejected for good" and said[1]["intent"] == key
        assert "WrongSeed" in said[1]["error"] and "slashed" in said[1]["consequence"]
        for _ in range(4):
            rpc.request("evm_mine")  # a new head: each tick reads the chain and decides again
            agent.tick()
    assert reveals(agent.conn) == {key: ("rejected", 1)}
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1

    restarted = solver_agent(market.reconnect_solver())
    restarted.tick()
    rpc.request("evm_mine")
    restarted.tick()
    assert reveals(restarted.conn) == {key: ("rejected", 1)}
    task = restarted.tasks[task_id]
    assert (task.status, task.randomness) == ("Verifying", None)


def test_a_reveal_that_reverted_for_a_passing_reason_is_sent_once_more(market: Market) -> None:
    """The first try runs out of gas on chain (a gas limit below what it needs): the next try is
    sent once, by the agent or by one restarted between the two, and fixes the randomness."""
    task_id = market.verifying_task()
    agent = solver_agent(market.conns["solver"])
    agent.executor.fees = FeePolicy(gas_margin=0.7)
    first, second = intents.reveal_seed(task_id, 0), intents.reveal_seed(task_id, 1)
    agent.tick()  # sends the first try, mined at once (automine)
    agent.executor.fees = FeePolicy()
    agent.executor.reconcile()  # what the next tick does first: follows it to its receipt
    assert reveals(agent.conn) == {first: ("reverted", 1)}
    entry = agent.executor.journal.get(first)
    assert entry is not None and entry.error is not None
    # Out of gas leaves no revert data; the executor's replay before the block names what the
    # call met there (the claim's own block): a passing reason either way.
    assert not reverts.lasting(first, entry.error)
    nonce = agent.conn.client.nonce(agent.conn.me)

    # Killed here, before deciding: the restarted agent sends the second try, once.
    restarted = solver_agent(market.reconnect_solver())
    for _ in range(4):
        restarted.tick()
    assert reveals(restarted.conn) == {first: ("reverted", 1), second: ("mined", 1)}
    assert restarted.conn.client.nonce(restarted.conn.me) == nonce + 1
    assert restarted.tasks[task_id].randomness is not None


def test_a_reveal_a_lagging_node_rejects_is_sent_once_it_caught_up(
    market: Market, caplog: pytest.LogCaptureFixture
) -> None:
    """The node that estimates is behind the agent's view (it estimates at the block before the
    claim, as a node of a load-balanced endpoint that has not seen it yet): WrongStatus, under
    the trigger block the view has, at every try. A rejection costs nothing, so the agent tries
    again for as long as the node lags (more often than the 6 rejections after which the
    reveal used to be given up, the solver slashed), says so once at error level, and
    reveals once the node caught up."""
    task_id = market.verifying_task()
    agent = solver_agent(market.conns["solver"])
    client = agent.conn.client
    rpc = client.rpc
    behind = hex(client.block("latest").number - 1)  # the claim is the latest block
    lagging = [True]
    send = rpc._request_once

    def estimating_behind(method: str, params: list[Any]) -> Any:
        if method == "eth_estimateGas" and lagging[0]:
            params = [params[0], behind]
        return send(method, params)

    rpc._request_once = estimating_behind  # type: ignore[method-assign]
    key = intents.reveal_seed(task_id, 0)
    with caplog.at_level(logging.INFO):
        for _ in range(10):
            agent.tick()
            rpc.request("evm_mine")  # a new head: the next tick decides again
        assert reveals(agent.conn) == {key: ("rejected", 10)}
        entry = agent.executor.journal.get(key)
        assert entry is not None and "WrongStatus" in str(entry.error)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        (said,) = [(r.getMessage(), getattr(r, "fields", {})) for r in errors]
        assert said[0] == "tx rejected" and said[1]["intent"] == key
        lagging[0] = False
        for _ in range(2):
            agent.tick()  # sends the reveal, then follows it to its receipt
    assert reveals(agent.conn) == {key: ("mined", 11)}
    assert agent.tasks[task_id].randomness is not None
