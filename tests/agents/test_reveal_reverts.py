"""The solver's seed reveal on a devnet when it reverts: a lasting revert mined on chain ends
the tries (said once, loudly), a passing one is followed by one more try, a rejection at gas
estimation (a node's word only, maybe a lie) is tried again until the seed window ends, and a
restarted agent resumes on its journal without sending anything twice."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils.abi import abi_to_signature
from eth_utils.crypto import keccak

from agents.chain.errors import RpcError
from agents.chain.executor import FeePolicy
from agents.roles import intents, reverts
from agents.roles.agent import Agent
from agents.roles.situation import POOL
from tests.agents.market import Market, open_market, reveals, solver_agent

pytestmark = pytest.mark.chain


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    with open_market(tmp_path / "devnet") as opened:
        yield opened


def test_a_seed_the_pool_refuses_at_estimation_is_tried_until_the_window_ends(
    market: Market, caplog: pytest.LogCaptureFixture
) -> None:
    """The committed seed hash is not the hash of the seed the agent derives (WrongSeed): every
    estimation reverts. A revert seen only at estimation is a node's word, which may be a lie
    (the next test), so the agent says it once at error level and tries again at every tick,
    in a restarted process too, spending nothing (no transaction sent), until the seed window
    is over."""
    task_id = market.verifying_task(seed_hash=keccak(b"a seed this key does not derive"))
    agent = solver_agent(market.conns["solver"])
    key = intents.reveal_seed(task_id, 0)
    rpc = agent.conn.client.rpc
    nonce = agent.conn.client.nonce(agent.conn.me)
    with caplog.at_level(logging.INFO):
        agent.tick()
        assert reveals(agent.conn) == {key: ("rejected", 1)}
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        (said,) = [(r.getMessage(), getattr(r, "fields", {})) for r in errors]
        assert said[0] == "tx rejected" and said[1]["intent"] == key
        assert "WrongSeed" in said[1]["error"] and "tried again" in said[1]["consequence"]
        for _ in range(3):
            rpc.request("evm_mine")  # a new head: each tick reads the chain and decides again
            agent.tick()
    assert reveals(agent.conn) == {key: ("rejected", 4)}
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1

    restarted = solver_agent(market.reconnect_solver())
    restarted.tick()
    assert reveals(restarted.conn) == {key: ("rejected", 5)}
    deadline = restarted.tasks[task_id].deadline
    rpc.request("evm_setNextBlockTimestamp", [deadline + 10])
    rpc.request("evm_mine")
    for _ in range(2):
        restarted.tick()
    assert reveals(restarted.conn) == {key: ("rejected", 5)}  # the window is over
    task = restarted.tasks[task_id]
    assert (task.status, task.randomness) == ("Verifying", None)
    assert restarted.conn.client.nonce(restarted.conn.me) == nonce


def _reveal_estimations_answered(agent: Agent, task_id: int, *errors: str) -> list[bytes]:
    """Make ``agent``'s node answer the estimations of its seed reveals of ``task_id`` with the
    pool's ``errors`` (made-up revert data, one per estimation, in order); the answers not
    given yet are returned (the list empties as the node gives them)."""
    rpc = agent.conn.client.rpc
    pool = agent.conn.deployment.contract(POOL)
    signatures = {e.get("name"): abi_to_signature(dict(e)) for e in pool.abi}  # type: ignore[arg-type]
    reveal = "0x" + keccak(text=signatures["revealSeed"])[:4].hex()
    task = task_id.to_bytes(32, "big")
    arguments = {"ClaimBlockOutOfReach": task + (1).to_bytes(32, "big"), "WrongSeed": task}
    answers = [keccak(text=signatures[e])[:4] + arguments[e] for e in errors]
    send = rpc._request_once

    def making_up(method: str, params: list[Any]) -> Any:
        if method == "eth_estimateGas" and answers and params[0]["data"].startswith(reveal):
            raise RpcError(method, 3, "execution reverted", "0x" + answers.pop(0).hex())
        return send(method, params)

    rpc._request_once = making_up  # type: ignore[method-assign]
    return answers


@pytest.mark.parametrize(
    "answers",
    [
        ("WrongSeed", "WrongSeed", "WrongSeed"),
        ("ClaimBlockOutOfReach", "WrongSeed", "WrongSeed"),
    ],
)
def test_a_wrong_seed_a_lying_node_makes_up_at_estimation_does_not_stop_the_reveal(
    market: Market, caplog: pytest.LogCaptureFixture, answers: tuple[str, ...]
) -> None:
    """The node answers the reveal's first estimations with the pool's WrongSeed (its revert
    data, made up: the seed is the committed one), alone or after a passing reason (the
    claim's own block, ClaimBlockOutOfReach). Taken for a verdict, the solver would never
    reveal and lose its whole stake (SeedWithheld); the agent says the first WrongSeed once
    at error level (also when its try is not the first), tries again, and reveals once the
    node stops lying."""
    task_id = market.verifying_task()
    agent = solver_agent(market.conns["solver"])
    rpc = agent.conn.client.rpc
    left = _reveal_estimations_answered(agent, task_id, *answers)
    key = intents.reveal_seed(task_id, 0)
    with caplog.at_level(logging.INFO):
        for _ in range(len(answers)):
            agent.tick()
            rpc.request("evm_mine")  # a new head: the next tick decides again
        assert not left and reveals(agent.conn) == {key: ("rejected", len(answers))}
        entry = agent.executor.journal.get(key)
        assert entry is not None and "WrongSeed" in str(entry.error)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert [r.getMessage() for r in errors] == ["tx rejected"]
        assert "WrongSeed" in getattr(errors[0], "fields", {})["error"]
        for _ in range(2):
            agent.tick()  # sends the reveal, then follows it to its receipt
    assert reveals(agent.conn) == {key: ("mined", len(answers) + 1)}
    assert agent.tasks[task_id].randomness is not None


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
