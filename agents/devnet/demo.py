"""``make demo`` / ``veritrain devnet demo``: one whole round by real agents, checked to the wei.

A fresh devnet; the agents of a scenario as separate processes; the submitter
submits the digits MLP task and follows it to settlement (another process). Then
the timeline, every pinpoint game's moves and ruling, and every role's balance
change are printed and checked: the outcome is the expected one, every party
withdrew what the pool and the games owe it, each account's balance moved by
exactly what it was paid minus what it sent and paid for gas, the pool holds
nothing but the jackpot's share and the game nothing at all. Any deviation exits
non-zero. The scenarios (``SCENARIOS``):

- ``honest``: a solver and a verifier; the task passes;
- ``dispute``: a verifier reports Fail on an honest solver behind a lying trace; the
  solver challenges and wins the game; the liar is slashed to the solver and the task is
  verified again with the same randomness (by whichever verifier claims it first: the
  second verifier the demo starts then, or the liar, which lies in a task's first
  verification only) and passes;
- ``cheat``: a solver fakes half its segments and a colluding verifier reports Pass
  behind lying traces; a whistleblower re-checks, challenges and wins; the report is
  voided (the verifier slashed), the task verified again and failed (the solver slashed);
- ``forced``: every report that may be forced is; a whistleblower catches the forced
  error and is paid from the jackpot; the verifier reveals its true roots and is not
  slashed: its stake comes back whole with its fee less the forced-error tax (the tax of
  every report that may be forced funds the awards; docs/economics.md), and the task passes.
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
from agents.dispute.game import GAME
from agents.errors import VeritrainError
from agents.roles.challenges import JACKPOT
from agents.roles.games import fold_games
from agents.roles.situation import POOL
from agents.roles.tasks import TaskView, fold_all

DEMO_SPEC = REPO_ROOT / "examples" / "digits-mlp.yaml"
BOUNTY = "1eth"
ROUND_TIMEOUT_S = 900


@dataclass(frozen=True)
class Scenario:
    """Who plays how in one demo, and how the round must end."""

    name: str
    title: str
    expected: str  # the task's outcome
    parameters: dict[str, int]  # devnet deployment parameters
    solver: tuple[str, ...] = ()  # extra arguments of each agent's command
    verifier: tuple[str, ...] = ()
    whistleblower: tuple[str, ...] | None = None  # None: no whistleblower
    second_verifier: bool = False  # started once a report lost a challenge


# A challenge window long enough to re-check a report and trace the disputed segment (the
# devnet's default of a few seconds is a delay only).
CHALLENGE_TIME = {"challengeWindow": 150}

SCENARIOS = {
    "honest": Scenario("honest", "an honest round", "Passed", {}),
    "dispute": Scenario(
        "dispute",
        "a verifier reports Fail on an honest solver, who challenges",
        "Passed",
        {"forcedErrorPpm": 0, **CHALLENGE_TIME},
        verifier=("--set", "verifier.adversary=fail"),
        second_verifier=True,
    ),
    "cheat": Scenario(
        "cheat",
        "a cheating solver and a colluding verifier, caught by a whistleblower",
        "Failed",
        {"forcedErrorPpm": 0, **CHALLENGE_TIME},
        solver=("--set", "solver.adversary=fake-half"),
        verifier=("--set", "verifier.adversary=pass"),
        # The whistleblower re-checks every report and does not check the proof itself: a proof
        # challenge the cheating solver leaves unanswered would hold the round for the devnet's
        # whole verifyWindow (900 s), longer than the demo waits.
        whistleblower=(
            "--set",
            "whistleblower.recheck_share=1",
            "--set",
            "whistleblower.proof_share=0",
        ),
        second_verifier=True,
    ),
    "forced": Scenario(
        "forced",
        "a forced error, caught by a whistleblower",
        "Passed",
        {"forcedErrorPpm": 1_000_000, **CHALLENGE_TIME},
        whistleblower=("--set", "whistleblower.recheck_share=0"),
    ),
}


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
                if int(receipt["status"], 16) == 1:  # a reverted transaction moved no value
                    out.sent_value += int(tx["value"], 16)
                out.gas_paid += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
                out.transactions += 1
            if tx.get("to") and str(tx["to"]).lower() == wanted:
                out.received_value += int(tx["value"], 16)
    return out


def run_demo(
    directory: Path,
    *,
    cheat: bool = False,
    scenario: str | None = None,
    spec: Path | None = None,
    keep: bool = False,
) -> None:
    """Run the demo in ``directory`` (recreated); :class:`DeviationError` on any deviation.

    ``scenario`` names one of ``SCENARIOS`` (``cheat`` is ``scenario="cheat"``). With
    ``keep`` the devnet stays up afterwards, for ``veritrain audit task`` and friends."""
    plan = SCENARIOS[scenario or ("cheat" if cheat else "honest")]
    spec = (spec or DEMO_SPEC).resolve()
    expected = plan.expected
    say = click.echo
    say(f"== veritrain demo: {plan.title} ==")
    if directory.exists():
        lifecycle.down(directory, purge=True)
    started = time.monotonic()
    info = lifecycle.up(directory, parameters=plan.parameters, say=lambda line: say(f"   {line}"))

    def agent(role: str, config: str, args: tuple[str, ...]) -> AgentProcess:
        log = directory / f"{config}.log"
        return AgentProcess(role, Path(info.configs[config]), log, args=list(args))

    agents = [agent("solver", "solver", plan.solver), agent("verifier", "verifier", plan.verifier)]
    if plan.whistleblower is not None:
        agents.append(agent("whistleblower", "whistleblower", plan.whistleblower))
    second = agent("verifier", "verifier2", ()) if plan.second_verifier else None
    client = ChainClient(info.url)
    deployment = load_deployment(Path(info.manifest))
    first_block = client.block_number() + 1
    before = {role: client.balance(address) for role, address in info.accounts.items()}
    try:
        for process in agents:
            process.start()
            pid = process.process.pid if process.process else "?"
            say(f"-- {process.role} agent started (pid {pid}, log {process.log})")
        say(f"-- submitter: veritrain submit {spec.name} --bounty {BOUNTY} --follow")
        submitter = subprocess.Popen(
            cli_command(
                "submit", str(spec), "--bounty", BOUNTY, "--follow", "--expect", expected,
                "--timeout", f"{ROUND_TIMEOUT_S}s", "--config", info.configs["submitter"],
            ),
            cwd=REPO_ROOT,
            env=child_env(),
        )  # fmt: skip
        pool = deployment.contract(POOL)
        deadline = time.monotonic() + ROUND_TIMEOUT_S + 60
        while submitter.poll() is None:
            if second is not None and second.process is None and _report_lost(client, pool, info):
                second.start()
                agents.append(second)
                say("-- a report lost its challenge: a second verifier agent started")
            for process in agents:
                if not process.alive:
                    raise DeviationError(f"the {process.role} agent died:\n{process.log_tail()}")
            if time.monotonic() > deadline:
                submitter.kill()
                raise DeviationError("the round did not end in time")
            time.sleep(1.0)
        if submitter.returncode != 0:
            raise DeviationError(f"the submitter exited with status {submitter.returncode}")
        view = _wait_for_withdrawals(client, deployment, info.accounts, timeout=300)
    finally:
        for process in agents:
            process.stop()
    elapsed = time.monotonic() - started
    say(f"-- timeline of task {view.task_id}")
    subprocess.run(
        cli_command("task", "show", str(view.task_id), "--config", info.configs["submitter"]),
        cwd=REPO_ROOT,
        env=child_env(),
        check=False,
    )
    for game_id in sorted(_games(client, deployment)):
        say(f"-- pinpoint game {game_id}")
        subprocess.run(
            cli_command("dispute", "show", str(game_id), "--config", info.configs["submitter"]),
            cwd=REPO_ROOT,
            env=child_env(),
            check=False,
        )
    last_block = client.block_number()
    problems = _check(
        client, deployment, info.accounts, before, view, expected, first_block, last_block
    )
    problems += _check_scenario(plan, view, info.accounts)
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


def _report_lost(client: ChainClient, pool: Any, info: lifecycle.DevnetInfo) -> bool:
    """Whether a report lost a challenge (its task awaits another verifier)."""
    manifest = load_deployment(Path(info.manifest))
    return any(
        e.name in ("ReportDefeated", "VerificationReopened")
        for e in read_events(client, [pool], manifest.block)
    )


def _games(client: ChainClient, deployment: Any) -> set[int]:
    """The ids of every pinpoint game on the devnet."""
    if GAME not in deployment.contracts:
        return set()
    game = deployment.contract(GAME)
    return {
        int(e.args["gameId"])
        for e in read_events(client, [game], deployment.block)
        if e.name == "GameCreated"
    }


def _wait_for_withdrawals(
    client: ChainClient, deployment: Any, accounts: dict[str, str], timeout: float
) -> TaskView:
    """The task once every party that is owed something (by the task, the pool's credit or a
    game it won) has withdrawn it."""
    pool = deployment.contract(POOL)
    deadline = time.monotonic() + timeout
    while True:
        views = fold_all(read_events(client, [pool], deployment.block))
        if views:
            view = views[max(views)]
            owed = [
                a
                for a in accounts.values()
                if view.due_to(a) > 0
                or _credit(client, pool, a) > 0
                or _jackpot_owed(client, deployment, a) > 0
            ]
            owed += _unpaid_winners(client, deployment)
            if view.final and not owed:
                return view
            if time.monotonic() > deadline:
                raise DeviationError(
                    f"task {view.task_id} is {view.status}; "
                    f"still owed to {owed} after {timeout:.0f} s"
                )
        time.sleep(0.5)


def _call(client: ChainClient, contract: Any, function: str, *args: Any) -> Any:
    raw = client.call(contract.address, contract.encode_call(function, args))
    return contract.decode_output(function, raw)


def _credit(client: ChainClient, pool: Any, account: str) -> int:
    """What the pool credits ``account`` outside any task (0 for a pool without credits)."""
    if not pool.has_function("credit"):
        return 0
    return int(_call(client, pool, "credit", account))


def _jackpot_owed(client: ChainClient, deployment: Any, account: str) -> int:
    """What the jackpot owes ``account`` (awards not withdrawn yet)."""
    jackpot = deployment.contracts.get(JACKPOT)
    if jackpot is None or not jackpot.has_function("owed"):
        return 0
    return int(_call(client, jackpot, "owed", account))


def _unpaid_winners(client: ChainClient, deployment: Any) -> list[str]:
    """Winners of resolved games who have not taken their bonds yet."""
    if GAME not in deployment.contracts:
        return []
    game = deployment.contract(GAME)
    records = fold_games(read_events(client, [game], deployment.block))
    return [
        w
        for r in records.values()
        if (w := r.winner()) is not None and w.lower() not in r.withdrawn_by
    ]


def _received(client: ChainClient, deployment: Any, account: str) -> int:
    """What ``account`` took from the pool's credit, from games it won and from the jackpot's
    awards (contract payouts that are no transaction's value)."""
    wanted = account.lower()
    total = 0
    contracts = [deployment.contract(POOL)]
    contracts += [deployment.contract(n) for n in (GAME, JACKPOT) if n in deployment.contracts]
    takers = {"CreditWithdrawn": "account", "BondsWithdrawn": "winner", "Withdrawn": "recipient"}
    for e in read_events(client, contracts, deployment.block):
        taker = takers.get(e.name)
        if taker is not None and str(e.args[taker]).lower() == wanted:
            total += int(e.args["amount"])
    return total


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
    say("-- balances (ETH); payouts: the task's, the pool's credit, game bonds, jackpot awards")
    header = ("role", "before", "after", "change", "payouts", "sent", "gas")
    say("   {:13} {:>14} {:>14} {:>12} {:>10} {:>10} {:>10}".format(*header))
    for role, address in accounts.items():
        after = client.balance(address)
        flows = ledger(client, address, first, last)
        withdrawn = sum(v for a, v in view.withdrawn.items() if a.lower() == address.lower())
        withdrawn += _received(client, deployment, address)
        change = after - before[role]
        say(
            f"   {role:13} {before[role] / 1e18:14.6f} {after / 1e18:14.6f} "
            f"{change / 1e18:+12.6f} {withdrawn / 1e18:10.6f} "
            f"{flows.sent_value / 1e18:10.6f} {flows.gas_paid / 1e18:10.6f}"
        )
        if change != withdrawn + flows.received_value - flows.sent_value - flows.gas_paid:
            problems.append(f"{role}: balance change {change} wei does not add up")
    pool = deployment.contract(POOL)
    held = client.balance(pool.address)
    jackpot = int(_call(client, pool, "jackpotAccrued"))
    outside = 0
    if pool.has_function("challengeFunds"):
        credits, deposits = _call(client, pool, "challengeFunds")
        outside = int(credits) + int(deposits)
    say(
        f"   pool holds {held / 1e18:.6f} ETH = jackpot's accrued share {jackpot / 1e18:.6f} ETH"
        f" + credits and deposits {outside / 1e18:.6f} ETH"
    )
    if held != jackpot + outside:
        problems.append(f"the pool holds {held} wei but owes only {jackpot + outside} wei")
    if outside:
        problems.append(f"{outside} wei of credits or deposits were never withdrawn")
    if GAME in deployment.contracts:
        game_held = client.balance(deployment.contract(GAME).address)
        say(f"   the pinpoint game holds {game_held / 1e18:.6f} ETH")
        if game_held:
            problems.append(f"the game still holds {game_held} wei of bonds")
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


def _check_scenario(plan: Scenario, view: TaskView, accounts: dict[str, str]) -> list[str]:
    """What the scenario's challenges must have done."""
    problems: list[str] = []

    def same(a: str, b: str) -> bool:
        return a.lower() == b.lower()

    verifier, solver = accounts["verifier"], accounts["solver"]
    defeated = [(v, w) for v, w, _ in view.defeats if same(v, verifier)]
    if plan.name == "dispute":
        if not any(same(w, solver) for _, w in defeated):
            problems.append("the lying verifier was not slashed to the solver")
    elif plan.name == "cheat":
        whistleblower = accounts["whistleblower"]
        if not any(same(w, whistleblower) for _, w in defeated):
            problems.append("the colluding verifier was not slashed to the whistleblower")
    elif plan.name == "forced":
        whistleblower = accounts["whistleblower"]
        award = sum(n for a, n in view.jackpot_awards if same(a, whistleblower))
        back = view.payouts.get("verifier", 0)
        click.echo(
            f"-- the forced error: the whistleblower that caught it was awarded {award / 1e18:.6f}"
            " ETH by the jackpot (the verifier's stake at most, and at most a third of the"
            f" jackpot's reserve); the verifier was not slashed: {back / 1e18:.6f} ETH back for"
            f" its stake of {view.verifier_stake / 1e18:.6f} ETH (its fee less the forced-error"
            " tax on top)"
        )
        if defeated:
            problems.append("the forced verifier was slashed")
        if award <= 0:
            problems.append("the whistleblower was not paid for catching the forced error")
        if back < view.verifier_stake or not view.verifier_stake:
            problems.append("the forced verifier did not get its stake back")
    elif view.challenges:
        problems.append(f"an honest round saw challenges: {sorted(view.challenges)}")
    return problems
