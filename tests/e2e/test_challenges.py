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


def game_transactions(market: Market, role: str) -> list[tuple[str, int]]:
    """(input data, receipt status) of every transaction ``role`` sent to the game."""
    deployment = market.deployment
    game = deployment.contract(GAME).address.lower()
    sender = market.account(role).lower()
    client = market.client
    out = []
    for number in range(deployment.block, client.block_number() + 1):
        block = client.rpc.request("eth_getBlockByNumber", [hex(number), True])
        for tx in block["transactions"]:
            if str(tx["from"]).lower() == sender and str(tx.get("to") or "").lower() == game:
                receipt = client.rpc.request("eth_getTransactionReceipt", [tx["hash"]])
                out.append((str(tx["input"]), int(receipt["status"], 16)))
    return out


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
    # Each dies at its failpoint (its first move of the game) and is restarted; then each is
    # killed once more at a random moment of the game and restarted again.
    for process in (whistleblower, verifier):

        def dead(p: AgentProcess = process) -> bool:
            return not p.alive

        market.wait(f"the {process.role} to die at its failpoint", dead)
        assert process.returncode() == -9, f"seed {seed}"
        process.start()
    for process in (whistleblower, verifier):
        time.sleep(rng.uniform(0.5, 6.0))
        process.kill()
        process.start()
    market.wait(
        "the colluding report to lose its challenge",
        lambda: bool(market.task(task_id).defeats),
        timeout=900,
    )
    # Another verifier verifies the task again, with the same randomness.
    second = AgentProcess("verifier", market.config("verifier2"), market.directory / "v2.log")
    second.start()
    market.agents["verifier2"] = second
    view = market.wait_settled(task_id, timeout=1500)
    assert view.outcome == "Failed", f"seed {seed}"
    records = fold_games(read_events(market.client, [game], deployment.block))
    (first, *_) = sorted(records.values(), key=lambda r: r.game_id)
    assert first.ruling == "CHALLENGER_WINS", f"seed {seed}"
    assert first.challenger.lower() == market.account("whistleblower").lower()
    for role in ("whistleblower", "verifier"):
        sent = game_transactions(market, role)
        inputs = [data for data, _ in sent]
        assert len(inputs) == len(set(inputs)), f"{role} sent a move twice (seed {seed})"
        assert all(status == 1 for _, status in sent), f"{role}: a move reverted (seed {seed})"
