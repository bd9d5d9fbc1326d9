"""An agent whose endpoint answers malformed values (a flaky gateway, a lying node): it waits
the endpoint out as an unreachable one and goes on deciding; nothing it stored is touched."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.chain.errors import MalformedAnswerError, RpcError
from agents.roles.agent import Agent
from agents.roles.situation import Action
from tests.agents.market import RequestOnce, solver_behind

pytestmark = pytest.mark.chain


class Lies:
    """The next ``count`` answers of ``method`` replaced by ``result`` (raised where it is an
    exception: an error object answered)."""

    def __init__(self) -> None:
        self.method = ""
        self.count = 0
        self.result: object = "0xzz"


@pytest.fixture
def lying_agent(tmp_path: Path) -> Iterator[tuple[Agent, Lies]]:
    """A solver agent on a fresh devnet whose endpoint tells the lies it is given."""
    lies = Lies()

    def wrap(send: RequestOnce) -> RequestOnce:
        def lying(method: str, params: list[Any]) -> Any:
            answer = send(method, params)
            if method == lies.method and lies.count > 0:
                lies.count -= 1
                if isinstance(lies.result, Exception):
                    raise lies.result
                return lies.result
            return answer

        return lying

    with solver_behind(tmp_path / "devnet", wrap) as agent:
        yield agent, lies


@pytest.mark.parametrize(
    ("method", "result"),
    [
        ("eth_call", "0xzz"),  # the pool's credit of the account: not hex
        ("eth_call", "0x"),  # no output where a uint256 is due
        ("eth_getLogs", [{"address": "0x00"}]),
        ("eth_getBlockByNumber", {"number": "0x1"}),
        ("eth_getBalance", ["0x1"]),
    ],
)
def test_a_malformed_answer_is_waited_out_and_the_agent_goes_on(
    lying_agent: tuple[Agent, Lies],
    method: str,
    result: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent, lies = lying_agent
    agent.tick()
    agent.conn.client.rpc.request("evm_mine")  # the next tick reads the chain in full
    cursor = agent.events.cursor
    stored = agent.events.all_events()
    tries = agent.conn.client.rpc.retry.attempts
    lies.method, lies.count, lies.result = method, tries, result
    with pytest.raises(MalformedAnswerError, match=f"answered {method} malformed"):
        agent.tick()
    assert lies.count == 0 and agent.events.all_events() == stored
    if method in ("eth_getLogs", "eth_getBlockByNumber"):
        assert agent.events.cursor == cursor  # nothing of that range was stored
    # The loop waits it out as an unreachable endpoint and decides again.
    caplog.set_level(logging.WARNING)
    lies.count = tries
    ticks: list[int] = []

    def once(_agent: Agent) -> bool:
        ticks.append(1)
        return True

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        agent.run(until=once)  # stops after its first whole tick
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert ticks == [1] and lies.count == 0
    assert "rpc unavailable; retrying" in caplog.text and "malformed" in caplog.text


def test_an_error_answer_to_every_read_of_the_logs_is_waited_out(
    lying_agent: tuple[Agent, Lies], caplog: pytest.LogCaptureFixture
) -> None:
    """A node that answers every eth_getLogs with an error object (it cannot serve the range,
    or lies): the event source narrows the range down to one block and then gives up with
    RpcError. The agent's loop waits that out as it does an unreachable endpoint (nothing
    stored, the cursor kept) and decides again once the node answers."""
    agent, lies = lying_agent
    agent.tick()
    agent.conn.client.rpc.request("evm_mine")
    cursor = agent.events.cursor
    lies.method, lies.count = "eth_getLogs", 10**6
    lies.result = RpcError("eth_getLogs", -32000, "query timeout")
    with pytest.raises(RpcError, match="query timeout"):
        agent.tick()
    assert agent.events.cursor == cursor
    tick = agent.tick

    def lied_to_once() -> list[Action]:
        try:
            return tick()
        except RpcError:
            lies.count = 0  # the node answers again after the loop's first failed tick
            raise

    agent.tick = lied_to_once  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        agent.run(until=lambda _agent: True)  # stops after its first whole tick
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert lies.count == 0 and agent.events.cursor > cursor
    assert "chain read failed; retrying" in caplog.text
