"""The solver's seed reveal on a devnet when it reverts: a lasting revert ends the tries (said
once, loudly), a passing one is followed by one more try, and a restarted agent resumes on its
journal without sending anything twice."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_utils.crypto import keccak

from agents.chain.executor import FeePolicy, Intent, RejectionPolicy
from agents.devnet import lifecycle
from agents.node.config import load_config
from agents.roles import intents, reverts
from agents.roles import solver as solver_role
from agents.roles.agent import Agent
from agents.roles.connection import Connection, connect
from agents.roles.hardware import Hardware
from agents.roles.shares import commitment, seed
from agents.roles.situation import POOL

pytestmark = pytest.mark.chain

BOUNTY = 10**15


@dataclass
class Market:
    """A devnet with the solver's, the submitter's and a verifier's connections."""

    directory: Path
    configs: dict[str, Any]
    conns: dict[str, Connection]

    def reconnect_solver(self) -> Connection:
        """The solver's connection again, as a restarted process opens it."""
        old = self.conns["solver"]
        if old.data is not None:
            old.data.close()
        self.conns["solver"] = connect(self.configs["solver"], "solver")
        return self.conns["solver"]

    def send(
        self, role: str, key: str, function: str, args: tuple[Any, ...], value: int = 0
    ) -> Any:
        executor = self.conns[role].executor
        assert executor is not None
        return executor.send_and_wait(Intent(key, POOL, function, args, value=value))

    def verifying_task(self, seed_hash: bytes | None = None) -> int:
        """A task of the solver's account whose proof a verifier has just claimed; its commit
        names ``seed_hash`` (default: the hash of the seed the solver's agent derives)."""
        submitter = self.conns["submitter"]
        assert submitter.executor is not None
        amounts = submitter.executor.call(POOL, "amounts", (BOUNTY,))
        terms = ("0x" + "11" * 32, "0x" + "22" * 32, BOUNTY, 0, 3_600, 10, 5, 0)
        entry = self.send(
            "submitter", intents.submit("QmSpec", 1), "submit", ("QmSpec", terms), sum(amounts[:2])
        )
        receipt = submitter.client.receipt(entry.tx_hash or "")
        assert receipt is not None
        pool = submitter.deployment.contract(POOL)
        (task_id,) = [
            int(d.args["taskId"])
            for d in map(pool.decode_log, receipt.logs)
            if d is not None and d.name == "TaskSubmitted"
        ]
        solver = self.conns["solver"]
        params = solver.params
        self.send(
            "solver", intents.claim(task_id), "claim", (task_id,), params.solver_stake(BOUNTY)
        )
        if seed_hash is None:
            seed_hash = bytes(commitment(seed(solver.signer, pool.address, task_id)))
        commit = (task_id, "QmProof", "0x" + "33" * 32, "0x" + seed_hash.hex())
        self.send("solver", intents.commit(task_id), "commit", commit)
        claim = (task_id, "0x" + keccak(b"a verifier's secret").hex())
        key = intents.claim_verification(task_id, 1)
        self.send("verifier", key, "claimVerification", claim, params.verifier_stake(BOUNTY))
        return task_id


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    directory = tmp_path / "devnet"
    info = lifecycle.up(directory, say=lambda _line: None)
    conns: dict[str, Connection] = {}
    try:
        configs = {
            r: load_config(Path(info.configs[r])) for r in ("submitter", "solver", "verifier")
        }
        conns.update({role: connect(config, role) for role, config in configs.items()})
        yield Market(directory, configs, conns)
    finally:
        for conn in conns.values():
            if conn.data is not None:
                conn.data.close()
        lifecycle.down(directory)


def solver_agent(conn: Connection) -> Agent:
    agent = Agent(
        conn,
        "solver",
        lambda situation: solver_role.decide(situation, conn.config.solver),
        hardware=Hardware("cpu", 1),
    )
    agent.executor.rejections = RejectionPolicy(delay=0.0)  # no backoff hides a retry here
    return agent


def reveals(conn: Connection) -> dict[str, tuple[str, int]]:
    """The solver's reveal tries in its journal: key -> (status, attempts)."""
    assert conn.executor is not None
    return {
        e.intent: (e.status, e.attempts)
        for e in conn.executor.journal.all()
        if e.intent.startswith("reveal-seed/")
    }


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
