"""Challenges end to end: the three challenge demos as the user runs them, and a cheating
round in which the whistleblower and the colluding verifier are killed (SIGKILL) at random
points of their game and restarted, with the chain as judge."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.chain.abi import RevertDecoder
from agents.chain.events import read_events
from agents.devnet.anvil import REPO_ROOT
from agents.devnet.processes import AgentProcess, child_env, cli_command
from agents.dispute.game import GAME
from agents.roles.games import fold_games
from tests.e2e.conftest import Market, open_market

pytestmark = [
    pytest.mark.chain,
    pytest.mark.slow,
    pytest.mark.skipif(
        "function challengeReport"
        not in (REPO_ROOT / "contracts/interfaces/ITaskPool.sol").read_text(),
        reason="the pool takes no challenges yet",
    ),
]


@pytest.mark.parametrize(
    ("flag", "outcome"), [("--dispute", "Passed"), ("--cheat", "Failed"), ("--forced", "Passed")]
)
def test_the_challenge_demos_end_with_every_balance_adding_up(
    tmp_path: Path, flag: str, outcome: str
) -> None:
    done = subprocess.run(
        cli_command("devnet", "demo", flag, "--dir", str(tmp_path / "demo")),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert f"OK: task 1 {outcome}; every balance adds up" in done.stdout
    assert "pinpoint game 1" in done.stdout  # the game's moves and ruling were printed


@pytest.fixture
def cheat_market(tmp_path: Path) -> Iterator[Market]:
    m = open_market(tmp_path / "devnet", forcedErrorPpm=0, challengeWindow=150)
    try:
        yield m
    finally:
        m.stop()


def game_transactions(market: Market, role: str) -> list[tuple[str, str | None]]:
    """(input data, revert reason or ``None`` when it succeeded) of every transaction ``role``
    sent to the game."""
    deployment = market.deployment
    game = deployment.contract(GAME).address.lower()
    decoder = RevertDecoder(deployment.contracts.values())
    sender = market.account(role).lower()
    client = market.client
    out: list[tuple[str, str | None]] = []
    for number in range(deployment.block, client.block_number() + 1):
        block = client.rpc.request("eth_getBlockByNumber", [hex(number), True])
        for tx in block["transactions"]:
            if str(tx["from"]).lower() == sender and str(tx.get("to") or "").lower() == game:
                receipt = client.rpc.request("eth_getTransactionReceipt", [tx["hash"]])
                reason = None
                if int(receipt["status"], 16) != 1:
                    trace = client.rpc.request(
                        "debug_traceTransaction", [tx["hash"], {"tracer": "callTracer"}]
                    )
                    reason = decoder.decode(trace.get("output"))
                out.append((str(tx["input"]), reason))
    return out


def restart(market: Market, process: AgentProcess) -> None:
    """Start ``process`` again and wait until it runs (an agent takes seconds to import its
    libraries; a kill before that would not land in the game)."""

    def starts() -> int:
        return process.log.read_text(errors="replace").count('msg="agent started"')

    before = starts()
    process.start()
    market.wait(f"the {process.role} to run again", lambda: starts() > before, timeout=300)


def test_a_whistleblower_and_a_verifier_killed_mid_game_resume_and_the_game_ends_right(
    cheat_market: Market,
) -> None:
    market = cheat_market
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    points = ["tx-signed:game/", "tx-sent:game/"]
    market.agent("solver", "--set", "solver.adversary=fake-half")
    verifier = market.agent("verifier", "--set", "verifier.adversary=pass")
    verifier.stop()
    verifier.start(failpoints=rng.choice(points))
    market.agents["verifier"] = verifier
    whistleblower = market.agent("whistleblower", "--set", "whistleblower.recheck_share=1")
    whistleblower.stop()
    whistleblower.start(failpoints=rng.choice(points))
    task_id = market.submit()
    deployment = market.deployment
    game = deployment.contract(GAME)

    def games() -> dict[int, object]:
        return dict(fold_games(read_events(market.client, [game], deployment.block)))

    market.wait("a game to open", lambda: bool(games()), timeout=900)
    # Each dies at its failpoint (a move of the game) and is restarted; once both run again,
    # each is killed once more at a random moment of the game and restarted again.
    for process in (whistleblower, verifier):

        def dead(p: AgentProcess = process) -> bool:
            return not p.alive

        market.wait(f"the {process.role} to die at its failpoint", dead)
        assert process.returncode() == -9, f"seed {seed}"
        restart(market, process)
    for process in (whistleblower, verifier):
        time.sleep(rng.uniform(0.5, 6.0))
        process.kill()
        restart(market, process)
    market.wait(
        "the colluding report to lose its challenge",
        lambda: bool(market.task(task_id).defeats),
        timeout=900,
    )
    # Another verifier verifies the task again, with the same randomness.
    second = AgentProcess("verifier", market.config("verifier2"), market.directory / "v2.log")
    second.start()
    market.agents["verifier2"] = second
    market.wait("the task to settle", lambda: market.task(task_id).final, timeout=1500)
    # A task settled by a deadline (not by the verifier's reveal) owes the submitter, who runs
    # no agent here, its refund: it takes it as `submit --follow` would.
    done = market.cli("withdraw", str(task_id))
    assert done.returncode == 0 or "owes anything" in done.stderr, done.stdout + done.stderr
    view = market.wait_settled(task_id, timeout=300)
    assert view.outcome == "Failed", f"seed {seed}"
    records = fold_games(read_events(market.client, [game], deployment.block))
    (first, *_) = sorted(records.values(), key=lambda r: r.game_id)
    assert first.ruling == "CHALLENGER_WINS", f"seed {seed}"
    assert first.challenger.lower() == market.account("whistleblower").lower()
    refused = 0
    for role, party in (("verifier", 0), ("whistleblower", 1)):
        sent = game_transactions(market, role)
        inputs = [data for data, _ in sent]
        assert len(inputs) == len(set(inputs)), f"{role} sent a move twice (seed {seed})"
        # One party opens each round and the other answers; the other opens it itself only
        # once half its turn has passed without the opening. Two openings of one round race
        # only when the opener was that late: here, killed or restarting (an opening it had
        # signed before dying is broadcast again on restart). The contract then refuses the
        # later opening (OpponentMove, or NotCommitted naming the opponent: an opening
        # carries none of the opponent's data), whose sender hands the first one back with
        # the same function. Any other refusal is a move the player should not have sent.
        raced = ("OpponentMove(", f"NotCommitted(party={1 - party})")
        for i, (data, reason) in enumerate(sent):
            if reason is None:
                continue
            refused += 1
            assert reason.startswith(raced), (role, reason, seed)
            retried = [d for d, r in sent[i + 1 :] if r is None and d[:10] == data[:10]]
            assert retried, f"{role}: a refused move was never made again (seed {seed})"
    # A kill delays one round at most (the round waits for the dead party): at most one
    # refused opening per kill, of which there were four.
    assert refused <= 4, f"{refused} refused openings (seed {seed})"
