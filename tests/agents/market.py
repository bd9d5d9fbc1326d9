"""A devnet market for agent tests: the solver's, the submitter's and a verifier's connections,
and tasks driven on chain up to the step a test needs (no training, no store)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from agents.chain.executor import Intent, RejectionPolicy
from agents.devnet import lifecycle
from agents.node.config import load_config
from agents.roles import intents
from agents.roles import solver as solver_role
from agents.roles.agent import Agent
from agents.roles.connection import Connection, connect
from agents.roles.hardware import Hardware
from agents.roles.shares import commitment, seed
from agents.roles.situation import POOL

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

    def committed_task(self, seed_hash: bytes | None = None) -> int:
        """A task of the solver's account, claimed and committed by it (its agent's journal
        keys), waiting for a verifier; the commit names ``seed_hash`` (default: the hash of the
        seed the solver's agent derives)."""
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
        stake = solver.params.solver_stake(BOUNTY)
        self.send("solver", intents.claim(task_id), "claim", (task_id,), stake)
        if seed_hash is None:
            seed_hash = bytes(commitment(seed(solver.signer, pool.address, task_id)))
        commit = (task_id, "QmProof", "0x" + "33" * 32, "0x" + seed_hash.hex())
        self.send("solver", intents.commit(task_id), "commit", commit)
        return task_id

    def claim_verification(self, task_id: int) -> Any:
        """The verifier's claim of the task's proof (its journal entry, mined)."""
        claim = (task_id, "0x" + keccak(b"a verifier's secret").hex())
        stake = self.conns["verifier"].params.verifier_stake(BOUNTY)
        key = intents.claim_verification(task_id, 1)
        return self.send("verifier", key, "claimVerification", claim, stake)

    def verifying_task(self, seed_hash: bytes | None = None) -> int:
        """A committed task (``committed_task``) whose proof a verifier has just claimed."""
        task_id = self.committed_task(seed_hash)
        self.claim_verification(task_id)
        return task_id


@contextlib.contextmanager
def open_market(directory: Path) -> Iterator[Market]:
    """A fresh devnet in ``directory`` and the three connections, closed and stopped after."""
    info = lifecycle.up(directory, say=lambda _line: None)
    conns: dict[str, Connection] = {}
    try:
        roles = ("submitter", "solver", "verifier")
        configs = {role: load_config(Path(info.configs[role])) for role in roles}
        conns.update({role: connect(config, role) for role, config in configs.items()})
        yield Market(directory, configs, conns)
    finally:
        for conn in conns.values():
            if conn.data is not None:
                conn.data.close()
        lifecycle.down(directory)


# The JSON-RPC client's one-request sender (``JsonRpc._request_once``): method, params → result.
RequestOnce = Callable[[str, list[Any]], Any]


@contextlib.contextmanager
def solver_behind(directory: Path, wrap: Callable[[RequestOnce], RequestOnce]) -> Iterator[Agent]:
    """A solver agent on a fresh devnet in ``directory`` whose every JSON-RPC request goes
    through what ``wrap`` makes of its client's own sender (to count or alter answers);
    stopped after."""
    info = lifecycle.up(directory, say=lambda _line: None)
    try:
        config = load_config(Path(info.configs["solver"]))
        conn = connect(config, "solver")
        agent = Agent(
            conn,
            "solver",
            lambda situation: solver_role.decide(situation, config.solver),
            hardware=Hardware("cpu", 1),
        )
        rpc = conn.client.rpc
        rpc._request_once = wrap(rpc._request_once)  # type: ignore[method-assign,assignment]
        yield agent
        if conn.data is not None:
            conn.data.close()
    finally:
        lifecycle.down(directory)


def solver_agent(conn: Connection) -> Agent:
    """A solver agent on ``conn`` whose rejected transactions wait no backoff."""
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
