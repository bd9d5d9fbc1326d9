"""Whole games on the toy task: each way of lying loses to the honest party, on chain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agents.devnet.processes import child_env, cli_command
from agents.dispute.game import Party, Phase, Reason, Ruling
from scripts.arena import Arena, Player
from tests.dispute.toy import Fault, ToyClaims, ToyTrace, open_toy_game


@pytest.fixture(scope="module")
def claims() -> ToyClaims:
    return ToyClaims()


def trace(claims: ToyClaims, segment: int, fault: Fault | None = None) -> ToyTrace:
    return ToyTrace(segment, claims.states[segment], claims.states[segment + 1], fault)


def play(
    arena: Arena,
    deployed: Any,
    claims: ToyClaims,
    segment: int,
    defender: ToyTrace,
    challenger: ToyTrace,
    *,
    simultaneous: bool = False,
    silent: dict[Party, int] | None = None,
) -> Any:
    accounts = deployed.accounts
    honest = trace(claims, segment)
    game_id = open_toy_game(deployed, claims, defender, challenger, segment)
    quiet = silent or {}
    return arena.play(
        game_id,
        Player(Party.DEFENDER, accounts[1], defender, quiet.get(Party.DEFENDER)),
        Player(Party.CHALLENGER, accounts[2], challenger, quiet.get(Party.CHALLENGER)),
        honest,
        simultaneous=simultaneous,
    )


CASES = [
    (Fault("value", 1, op=5, element=1), Reason.ONE_STEP),
    (Fault("value", 0, op=11, element=280), Reason.ONE_STEP),
    (Fault("value", 2, op=7, element=1), Reason.ONE_STEP),
    (Fault("term", 1, op=7, element=0, term=123), Reason.ONE_STEP),
    (Fault("attribute", 1, op=4), Reason.PROGRAM),
    (Fault("input", 0, op=1, slot=1), Reason.SOURCE),
    (Fault("input", 2, op=12, slot=0), Reason.SOURCE),
    (Fault("input", 1, op=7, slot=1), Reason.SOURCE),
    (Fault("batch", 1), Reason.SOURCE),
    (Fault("state", 0, element=0), Reason.SOURCE),
    (Fault("value", 3, op=2, element=0), Reason.ONE_STEP),
    (Fault("term", 3, op=10, element=0, term=299), Reason.ONE_STEP),
    (Fault("input", 3, op=0, slot=1), Reason.SOURCE),
    (Fault("input", 3, op=8, slot=1), Reason.SOURCE),
    (Fault("garbage", 0), Reason.CLOCK),
]


@pytest.mark.parametrize("liar", [Party.DEFENDER, Party.CHALLENGER])
@pytest.mark.parametrize(
    ("fault", "reason"), CASES, ids=[f"{f.kind}-{f.step}-{f.op}" for f, _ in CASES]
)
def test_the_honest_party_wins(
    arena: Arena, deployed: Any, claims: ToyClaims, fault: Fault, reason: Reason, liar: Party
) -> None:
    honest = trace(claims, 1)
    lying = trace(claims, 1, fault)
    assert lying.trace_root != honest.trace_root
    defender, challenger = (lying, honest) if liar == Party.DEFENDER else (honest, lying)
    outcome = play(arena, deployed, claims, 1, defender, challenger)
    expected = Ruling.CHALLENGER_WINS if liar == Party.DEFENDER else Ruling.DEFENDER_WINS
    assert outcome.state.phase == Phase.RESOLVED
    assert (outcome.state.ruling, outcome.state.reason) == (expected, reason), outcome.phases


@pytest.mark.parametrize("liar", [Party.DEFENDER, Party.CHALLENGER])
@pytest.mark.parametrize(
    ("fault", "reason"),
    [CASES[0], CASES[3], CASES[4], CASES[9]],
    ids=["value", "term", "attribute", "state"],
)
def test_players_that_read_the_game_at_the_same_moment_never_open_a_round_both(
    arena: Arena, deployed: Any, claims: ToyClaims, fault: Fault, reason: Reason, liar: Party
) -> None:
    """Both players decide on the same view of the game every turn and send what they decide:
    one opens each round, the other answers, and the chain refuses no move."""
    honest = trace(claims, 1)
    lying = trace(claims, 1, fault)
    defender, challenger = (lying, honest) if liar == Party.DEFENDER else (honest, lying)
    outcome = play(arena, deployed, claims, 1, defender, challenger, simultaneous=True)
    expected = Ruling.CHALLENGER_WINS if liar == Party.DEFENDER else Ruling.DEFENDER_WINS
    assert (outcome.state.ruling, outcome.state.reason) == (expected, reason), outcome.phases
    assert outcome.reverted == {Party.DEFENDER: 0, Party.CHALLENGER: 0}
    assert min(outcome.moves.values()) > 3  # rounds of each level were played


@pytest.mark.parametrize("silent_after", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("liar", [Party.DEFENDER, Party.CHALLENGER])
def test_an_honest_party_waiting_for_a_silent_opener_opens_the_round_itself_and_wins(
    arena: Arena, deployed: Any, claims: ToyClaims, liar: Party, silent_after: int
) -> None:
    """The liar falls silent after some moves, whichever rounds it was to open: the honest
    party, waiting for its opening, opens the round itself in time and the liar loses by its
    clock (never both)."""
    honest = trace(claims, 1)
    lying = trace(claims, 1, Fault("value", 1, op=5, element=1))
    defender, challenger = (lying, honest) if liar == Party.DEFENDER else (honest, lying)
    outcome = play(
        arena, deployed, claims, 1, defender, challenger, simultaneous=True,
        silent={liar: silent_after},
    )  # fmt: skip
    expected = Ruling.CHALLENGER_WINS if liar == Party.DEFENDER else Ruling.DEFENDER_WINS
    assert (outcome.state.ruling, outcome.state.reason) == (expected, Reason.CLOCK)
    assert outcome.moves[liar] == silent_after
    assert outcome.reverted == {Party.DEFENDER: 0, Party.CHALLENGER: 0}


def test_dispute_show_prints_a_game_from_the_chain(
    arena: Arena, deployed: Any, claims: ToyClaims, devnet: Any, tmp_path: Path
) -> None:
    honest, lying = trace(claims, 1), trace(claims, 1, Fault("term", 1, op=7, element=0, term=123))
    outcome = play(arena, deployed, claims, 1, honest, lying)
    game = deployed.game
    manifest = tmp_path / "deployment.json"
    manifest.write_text(
        json.dumps(
            {
                "format": "veritrain-deployment/1",
                "chain_id": int(__import__("brownie").chain.id),
                "deployment_block": 0,
                "contracts": {"PinpointGame": {"address": game.address, "abi": game.abi}},
            }
        )
    )
    args = ["dispute", "show", str(outcome.state.game_id), "--deployment", str(manifest)]
    args += ["--rpc-url", devnet.url]
    shown = subprocess.run(
        cli_command(*args, "--json"), env=child_env(), capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert (report["ruling"], report["reason"]) == ("DEFENDER_WINS", "ONE_STEP")
    assert [lv["level"] for lv in report["levels"]][:3] == ["steps", "steps", "ops"]
    assert "terms" in {lv["level"] for lv in report["levels"]}
    events = [m["event"] for m in report["moves"]]
    assert events[0] == "GameCreated" and events[-1] == "GameResolved"
    assert events.count("OneStepEvaluated") == 1
    bonded = {"Dissected", "RecordRevealed", "LeafRevealed", "TermsPosted"}
    for party in ("defender", "challenger"):
        moves = [m for m in report["moves"] if m["party"] == party and m["event"] in bonded]
        created = 1 if party == "challenger" else 0  # the creation's bond counts for the challenger
        assert report["parties"][party]["bonds"] == (len(moves) + created) * report["bond"]
    text = subprocess.run(cli_command(*args), env=child_env(), capture_output=True, text=True)
    assert text.returncode == 0 and "DEFENDER_WINS by ONE_STEP" in text.stdout
    missing = subprocess.run(
        cli_command("dispute", "show", "99", *args[3:]),
        env=child_env(),
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no game 99" in missing.stderr
