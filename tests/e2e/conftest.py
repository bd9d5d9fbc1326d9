"""End-to-end fixtures: a fresh devnet per test, agents as real subprocesses, the chain as judge."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_utils.abi import function_abi_to_4byte_selector

from agents.chain.client import ChainClient
from agents.chain.deployment import Deployment, load_deployment
from agents.chain.events import read_events
from agents.devnet import lifecycle
from agents.devnet.anvil import REPO_ROOT, start_anvil
from agents.devnet.processes import AgentProcess, child_env, cli_command
from agents.roles.situation import POOL
from agents.roles.tasks import TaskView, fold_all

HERE = Path(__file__).resolve().parent
TINY_SPEC = HERE / "tiny.yaml"


@dataclass
class Market:
    """A devnet with its role accounts, configs, and the agent processes a test started."""

    directory: Path
    info: lifecycle.DevnetInfo
    agents: dict[str, AgentProcess] = field(default_factory=dict)

    @property
    def client(self) -> ChainClient:
        return ChainClient(self.info.url)

    @property
    def deployment(self) -> Deployment:
        return load_deployment(Path(self.info.manifest))

    def config(self, role: str) -> Path:
        return Path(self.info.configs[role])

    def account(self, role: str) -> str:
        return self.info.accounts[role]

    def agent(self, role: str, *args: str) -> AgentProcess:
        """Start the ``role`` agent (a subprocess) with extra command-line ``args``."""
        process = AgentProcess(role, self.config(role), self.directory / f"{role}.log", list(args))
        process.start()
        self.agents[role] = process
        return process

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``veritrain ARGS`` as the submitter; returns the completed process (never raises)."""
        return subprocess.run(
            cli_command(*args, "--config", str(self.config("submitter"))),
            cwd=REPO_ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def submit(self, spec: Path = TINY_SPEC, *extra: str, follow: bool = False) -> int:
        """Submit ``spec`` with a 1 ETH bounty; returns the task id: a new task at each call
        (``--again``: without it, a submission of the same spec and terms whose task is not
        settled would be followed instead, tests/e2e/test_submit_rerun.py)."""
        args = ["submit", str(spec), "--bounty", "1eth", "--again", *extra]
        if follow:
            args.append("--follow")
        done = self.cli(*args, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr + self.logs()
        first = done.stdout.splitlines()[0]
        assert first.startswith("task "), done.stdout
        return int(first.split()[1])

    def tasks(self) -> dict[int, TaskView]:
        deployment = self.deployment
        return fold_all(read_events(self.client, [deployment.contract(POOL)], deployment.block))

    def task(self, task_id: int) -> TaskView:
        return self.tasks()[task_id]

    def wait(
        self, what: str, condition: Callable[[], bool], timeout: float = 300, poll: float = 0.5
    ) -> None:
        """Wait until ``condition()``; fail with the agents' logs after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            dead = [p.role for p in self.agents.values() if p.starts and not p.alive]
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}\n{self.logs()}")
            if dead and all(
                p.returncode() not in (None, -9) for p in self.agents.values() if p.role in dead
            ):
                pytest.fail(f"agent(s) {dead} exited while waiting for {what}\n{self.logs()}")
            time.sleep(poll)

    def wait_settled(self, task_id: int, timeout: float = 300) -> TaskView:
        """Wait until the task is settled and every party it owes has withdrawn."""

        def paid() -> bool:
            view = self.tasks().get(task_id)
            return bool(
                view is not None
                and view.final
                and all(view.due_to(a) == 0 for a in self.info.accounts.values())
            )

        self.wait(f"task {task_id} settled and paid out", paid, timeout)
        return self.task(task_id)

    def calls_by(self, role: str) -> list[str]:
        """The pool functions ``role``'s account called, one entry per mined transaction."""
        pool = self.deployment.contract(POOL)
        selectors = {
            "0x" + function_abi_to_4byte_selector(dict(f)).hex(): str(f["name"])  # type: ignore[arg-type]
            for f in pool.abi
            if f.get("type") == "function"
        }
        client, sender = self.client, self.account(role).lower()
        calls = []
        for number in range(self.deployment.block, client.block_number() + 1):
            block = client.rpc.request("eth_getBlockByNumber", [hex(number), True])
            for tx in block["transactions"]:
                if (
                    str(tx["from"]).lower() == sender
                    and str(tx.get("to") or "").lower() == pool.address.lower()
                ):
                    calls.append(selectors.get(str(tx["input"])[:10], "?"))
        return calls

    def restart_node(self, down_for: float = 2.0) -> None:
        """Stop anvil (its state saved), wait, and start it again on the same port and state."""
        lifecycle.down(self.directory)
        time.sleep(down_for)
        node = start_anvil(
            port=self.info.port,
            state_path=self.directory / "anvil-state.json",
            log_path=self.directory / "anvil.log",
            detach=True,
            zero_base_fee=True,
            balance_eth=1_000_000,
        )
        self.info.pid = node.pid
        self.info.save()

    def logs(self) -> str:
        parts = []
        for role, process in self.agents.items():
            header = f"--- {role} (starts {process.starts}, rc {process.returncode()})"
            parts.append(f"{header}\n{process.log_tail(25)}")
        return "\n".join(parts)

    def stop(self) -> None:
        for process in self.agents.values():
            process.stop(timeout=10)
        lifecycle.down(self.directory)


def open_market(directory: Path, **parameters: int) -> Market:
    info = lifecycle.up(directory, parameters=parameters, poll_interval=0.2, say=lambda _line: None)
    return Market(directory, info)


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    """A fresh devnet with the devnet deployment parameters."""
    m = open_market(tmp_path / "devnet")
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def short_market(tmp_path: Path) -> Iterator[Market]:
    """A fresh devnet whose windows are a few seconds long, for timeout paths."""
    m = open_market(
        tmp_path / "devnet",
        claimWindow=8,
        verifierClaimWindow=8,
        verifyWindow=8,
        challengeWindow=2,
        profileWindow=60,
    )
    try:
        yield m
    finally:
        m.stop()


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def assert_once(calls: list[str], required: set[str]) -> None:
    """Every required call exactly once and nothing else (settling rides on ``withdraw``)."""
    counts = Counter(calls)
    assert all(n == 1 for n in counts.values()), counts
    assert set(counts) == required, counts


def passed_payouts(market: Market, bounty: int) -> dict[str, int]:
    """What a profiled task with ``bounty`` pays each party when it passes (pool views), its
    verifier the first to claim it (it pays the forced-error tax)."""
    pool = market.deployment.contract(POOL)
    raw = market.client.call(pool.address, pool.encode_call("amounts", (bounty,)))
    a = dict(
        zip(
            ("bounty", "protocolFee", "verificationFee", "profileFee", "solverStake",
             "verifierStake", "profilerStake", "profileRejectionFee", "forcedErrorTax"),
            pool.decode_output("amounts", raw),
            strict=True,
        )
    )  # fmt: skip
    return {
        "submitter": 0,
        "solver": bounty - a["verificationFee"] - a["profileFee"] + a["solverStake"],
        "verifier": a["verificationFee"] - a["forcedErrorTax"] + a["verifierStake"],
        "profiler": a["profileFee"] + a["profilerStake"],
        "jackpot": a["forcedErrorTax"],
    }
