"""``make demo`` / ``veritrain devnet demo``: one whole round by real agents, checked to the wei.

A fresh devnet; a solver and a verifier agent as separate processes; the
submitter submits the digits MLP task and follows it to settlement (a third
process). Then the timeline and every role's balance change are printed and
checked: the outcome is the expected one (``Passed``, or ``Failed`` with
``--cheat``: the solver fakes half its segments), every party withdrew what
settlement owes it, each account's balance moved by exactly its payouts
minus what it sent and paid for gas, and the pool holds nothing but the
jackpot's share. Any deviation exits non-zero.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from agents.chain.client import ChainClient
from agents.chain.deployment import load_deployment
from agents.chain.events import read_events
from agents.devnet import lifecycle
from agents.devnet.anvil import REPO_ROOT
from agents.devnet.processes import AgentProcess, child_env, cli_command
from agents.errors import VeritrainError
from agents.roles.situation import POOL
from agents.roles.tasks import TaskView, fold_all

DEMO_SPEC = REPO_ROOT / "examples" / "digits-mlp.yaml"
BOUNTY = "1eth"
ROUND_TIMEOUT_S = 900


class DeviationError(VeritrainError):
    """The round did not end as it must."""

    exit_code = 1


@dataclass
class Ledger:
    """What one account sent and received on chain over a block range."""

    sent_value: int = 0
    gas_paid: int = 0
    received_value: int = 0
    transactions: int = 0


def ledger(client: ChainClient, account: str, first: int, last: int) -> Ledger:
    """Every wei ``account`` sent (value, gas) and received by transaction in blocks first..last."""
    out = Ledger()
    wanted = account.lower()
    for number in range(first, last + 1):
        block = client.rpc.request("eth_getBlockByNumber", [hex(number), True])
        for tx in block["transactions"]:
            if str(tx["from"]).lower() == wanted:
                receipt = client.rpc.request("eth_getTransactionReceipt", [tx["hash"]])
                out.sent_value += int(tx["value"], 16)
                out.gas_paid += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
                out.transactions += 1
            if tx.get("to") and str(tx["to"]).lower() == wanted:
                out.received_value += int(tx["value"], 16)
    return out


def run_demo(
    directory: Path, *, cheat: bool = False, spec: Path | None = None, keep: bool = False
) -> None:
    """Run the demo in ``directory`` (recreated); :class:`DeviationError` on any deviation.

    With ``keep`` the devnet stays up afterwards, for ``veritrain audit task`` and friends."""
    spec = (spec or DEMO_SPEC).resolve()
    expected = "Failed" if cheat else "Passed"
    say = click.echo
    say(f"== veritrain demo: {'a cheating solver' if cheat else 'an honest round'} ==")
    if directory.exists():
        lifecycle.down(directory, purge=True)
    started = time.monotonic()
    info = lifecycle.up(directory, say=lambda line: say(f"   {line}"))
    agents = [
        AgentProcess(
            "solver",
            Path(info.configs["solver"]),
            directory / "solver.log",
            args=["--set", "solver.adversary=fake-half"] if cheat else [],
        ),
        AgentProcess("verifier", Path(info.configs["verifier"]), directory / "verifier.log"),
    ]
    client = ChainClient(info.url)
    deployment = load_deployment(Path(info.manifest))
    first_block = client.block_number() + 1
    before = {role: client.balance(address) for role, address in info.accounts.items()}
    try:
        for agent in agents:
            agent.start()
            pid = agent.process.pid if agent.process else "?"
            say(f"-- {agent.role} agent started (pid {pid}, log {agent.log})")
        say(f"-- submitter: veritrain submit {spec.name} --bounty {BOUNTY} --follow")
        submitted = subprocess.run(
            cli_command(
                "submit", str(spec), "--bounty", BOUNTY, "--follow", "--expect", expected,
                "--timeout", f"{ROUND_TIMEOUT_S}s", "--config", info.configs["submitter"],
            ),
            cwd=REPO_ROOT,
            env=child_env(),
            timeout=ROUND_TIMEOUT_S + 60,
        )  # fmt: skip
        for agent in agents:
            if not agent.alive:
                raise DeviationError(f"the {agent.role} agent died:\n{agent.log_tail()}")
        if submitted.returncode != 0:
            raise DeviationError(f"the submitter exited with status {submitted.returncode}")
        view = _wait_for_withdrawals(client, deployment, info.accounts, timeout=120)
    finally:
        for agent in agents:
            agent.stop()
    elapsed = time.monotonic() - started
    say(f"-- timeline of task {view.task_id}")
    subprocess.run(
        cli_command("task", "show", str(view.task_id), "--config", info.configs["submitter"]),
        cwd=REPO_ROOT,
        env=child_env(),
        check=False,
    )
    last_block = client.block_number()
    problems = _check(
        client, deployment, info.accounts, before, view, expected, first_block, last_block
    )
    if keep:
        say(
            f"-- round finished in {elapsed:.0f} s; the devnet keeps running at {info.url}: "
            f"veritrain audit task {view.task_id} --config {info.configs['submitter']}; "
            f"veritrain devnet down --dir {directory} stops it"
        )
    else:
        lifecycle.down(directory)
        say(f"-- round finished in {elapsed:.0f} s; devnet stopped (its files stay in {directory})")
    if problems:
        for problem in problems:
            say(f"DEVIATION: {problem}", err=True)
        raise DeviationError(f"{len(problems)} deviation(s) from the expected round")
    say(f"OK: task {view.task_id} {view.outcome}; every balance adds up")


def _wait_for_withdrawals(
    client: ChainClient, deployment: Any, accounts: dict[str, str], timeout: float
) -> TaskView:
    """The task once every party that is owed something has withdrawn it."""
    pool = deployment.contract(POOL)
    deadline = time.monotonic() + timeout
    while True:
        views = fold_all(read_events(client, [pool], deployment.block))
        if views:
            view = views[max(views)]
            owed = [a for a in accounts.values() if view.due_to(a) > 0]
            if view.final and not owed:
                return view
            if time.monotonic() > deadline:
                raise DeviationError(
                    f"task {view.task_id} is {view.status}; "
                    f"still owed to {owed} after {timeout:.0f} s"
                )
        time.sleep(0.5)


def _check(
    client: ChainClient,
    deployment: Any,
    accounts: dict[str, str],
    before: dict[str, int],
    view: TaskView,
    expected: str,
    first: int,
    last: int,
) -> list[str]:
    problems = []
    say = click.echo
    if view.outcome != expected:
        problems.append(f"outcome {view.outcome}, expected {expected}")
    say("-- balances (ETH)")
    header = ("role", "before", "after", "change", "payouts", "sent", "gas")
    say("   {:9} {:>14} {:>14} {:>12} {:>10} {:>10} {:>10}".format(*header))
    for role, address in accounts.items():
        after = client.balance(address)
        flows = ledger(client, address, first, last)
        withdrawn = sum(v for a, v in view.withdrawn.items() if a.lower() == address.lower())
        change = after - before[role]
        say(
            f"   {role:9} {before[role] / 1e18:14.6f} {after / 1e18:14.6f} "
            f"{change / 1e18:+12.6f} {withdrawn / 1e18:10.6f} "
            f"{flows.sent_value / 1e18:10.6f} {flows.gas_paid / 1e18:10.6f}"
        )
        if change != withdrawn + flows.received_value - flows.sent_value - flows.gas_paid:
            problems.append(f"{role}: balance change {change} wei does not add up")
    pool = deployment.contract(POOL)
    held = client.balance(pool.address)
    jackpot = int(
        pool.decode_output(
            "jackpotAccrued", client.call(pool.address, pool.encode_call("jackpotAccrued", ()))
        )
    )
    say(f"   pool holds {held / 1e18:.6f} ETH = jackpot's accrued share {jackpot / 1e18:.6f} ETH")
    if held != jackpot:
        problems.append(f"the pool holds {held} wei but owes only the jackpot's {jackpot} wei")
    solver, submitter = accounts["solver"], accounts["submitter"]
    if expected == "Passed":
        if view.due_to(solver) or not view.withdrawn:
            problems.append("the solver was not paid")
        if view.penalised:
            problems.append(f"somebody was penalised in an honest round: {view.penalised}")
    else:
        if view.payouts.get("solver", 0) != 0:
            problems.append("a cheating solver was paid")
        paid_back = view.payouts.get("submitter", 0)
        if paid_back < view.bounty - view.payouts.get("profiler", 0):
            problems.append(f"the submitter got {paid_back} wei back, less than the bounty")
        if view.solver is None or view.solver.lower() != solver.lower():
            problems.append("the task was not solved by the demo's solver")
    if view.submitter is None or view.submitter.lower() != submitter.lower():
        problems.append("the task was not submitted by the demo's submitter")
    return problems
