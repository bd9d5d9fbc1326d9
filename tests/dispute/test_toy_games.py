"""Whole games on the toy task: each way of lying loses to the honest party, on chain."""

from __future__ import annotations

from typing import Any

import pytest

from agents.dispute.game import Party, Phase, Reason, Ruling
from tests.dispute.arena import Arena, Player
from tests.dispute.toy import Fault, ToyClaims, ToyTrace, open_game


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
) -> Any:
    accounts = deployed.accounts
    honest = trace(claims, segment)
    game_id, _ = open_game(
        deployed.game,
        honest.program,
        claims.roots(),
        segment,
        defender.trace_root,
        challenger.trace_root,
        accounts[1],
        accounts[2],
    )
    return arena.play(
        game_id,
        Player(Party.DEFENDER, accounts[1], defender),
        Player(Party.CHALLENGER, accounts[2], challenger),
        honest,
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
