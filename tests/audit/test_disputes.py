"""The pure rules of a task's challenges (agents/audit/disputes.py) as tables: what ``resolve``
must make of a game's ruling, who is the first winner, which roots a report challenge may
dispute, and which consequences the rulings call for."""

from __future__ import annotations

from typing import Any

import pytest

from agents.audit.disputes import (
    REJECTED,
    UPHELD,
    ZERO_ADDRESS,
    check_consequences,
    expected_state,
    first_winner,
    roots_before,
)
from agents.chain.abi import DecodedLog
from agents.commitment import Root
from agents.dispute.game import Ruling
from agents.roles.tasks import ChallengeView, TaskView, fold

VERIFIER = "0x" + "aa" * 20
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
ROOT = "0x" + "11" * 32
OTHER = "0x" + "22" * 32


def _challenge(cid: int, game: int, ruling: Ruling, challenger: str = ALICE) -> ChallengeView:
    return ChallengeView(
        challenge_id=cid,
        challenger=challenger,
        claim="Report",
        segment=0,
        position=0,
        defender_trace=Root.parse(ROOT),
        challenger_trace=Root.parse(OTHER),
        game=game,
        deadline=0,
        round=0,
        ruling=int(ruling),
    )


@pytest.mark.parametrize(
    ("game", "ruling", "state"),
    [
        (3, Ruling.CHALLENGER_WINS, UPHELD),
        (3, Ruling.BOTH_LOSE, UPHELD),
        (3, Ruling.DEFENDER_WINS, REJECTED),
        (3, Ruling.NONE, None),
        (0, Ruling.NONE, UPHELD),  # a proof challenge the solver never answered
    ],
)
def test_what_resolve_makes_of_a_ruling(game: int, ruling: Ruling, state: str | None) -> None:
    assert expected_state(_challenge(1, game, ruling)) == state


def test_the_first_winner_is_the_first_challenger_that_won() -> None:
    both = _challenge(1, 5, Ruling.BOTH_LOSE, ALICE)
    won = _challenge(2, 6, Ruling.CHALLENGER_WINS, BOB)
    later = _challenge(3, 7, Ruling.CHALLENGER_WINS, ALICE)
    assert first_winner([later, won, both]) == BOB
    assert first_winner([both]) == ZERO_ADDRESS
    assert first_winner([]) == ZERO_ADDRESS


def _event(name: str, index: int, **args: Any) -> DecodedLog:
    return DecodedLog(
        contract="TaskPool",
        name=name,
        args={"taskId": 1, **args},
        address="0x" + "22" * 20,
        block_number=10 + index,
        block_hash="0x" + "33" * 32,
        log_index=0,
        tx_hash="0x" + "44" * 32,
    )


def _story(*, defeated: bool, upheld: bool, winner: str = BOB, slashed: int = 7) -> TaskView:
    """A task whose report (roots ROOT, OTHER) is challenged at position 1 by BOB."""
    events = [
        _event(
            "VerificationClaimed",
            0,
            verifier=VERIFIER,
            secretHash="0x" + "00" * 32,
            stake=7,
            deadline=0,
        ),
        _event(
            "VerificationReported",
            1,
            verifier=VERIFIER,
            distances=[0],
            extraSegments=[4],
            extraDistances=[0],
            traceRoots=[ROOT, OTHER],
            sealedTraceRoots="0x" + "00" * 32,
            verdict=1,
            challengeDeadline=0,
        ),
        _event(
            "ChallengeOpened",
            2,
            challengeId=1,
            challenger=BOB,
            claim=1,
            segment=4,
            position=1,
            defenderTrace=OTHER,
            challengerTrace=ROOT,
            game=9,
            deadline=0,
        ),
        _event(
            "ChallengeResolved",
            3,
            challengeId=1,
            challenger=BOB,
            claim=1,
            state=3 if upheld else 4,
            ruling=int(Ruling.CHALLENGER_WINS if upheld else Ruling.DEFENDER_WINS),
        ),
    ]
    if defeated:
        events.append(
            _event("ReportDefeated", 4, verifier=VERIFIER, winner=winner, slashed=slashed)
        )
    return fold(1, events)


def _findings(view: TaskView) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    check_consequences(view, lambda area, claim, chain, audit, holds: out.append((claim, holds)))
    return out


@pytest.mark.parametrize(
    ("defeated", "upheld", "winner", "slashed", "holds"),
    [
        (True, True, BOB, 7, True),  # lost, defeated, the stake to its challenger
        (False, False, BOB, 7, True),  # defended: nothing follows
        (False, True, BOB, 7, False),  # lost, yet never defeated
        (True, False, BOB, 7, False),  # defeated without losing
        (True, True, ALICE, 7, False),  # the stake to somebody else
        (True, True, BOB, 6, False),  # not the whole stake
    ],
)
def test_consequences_of_report_challenges(
    defeated: bool, upheld: bool, winner: str, slashed: int, holds: bool
) -> None:
    findings = _findings(_story(defeated=defeated, upheld=upheld, winner=winner, slashed=slashed))
    assert findings  # the proof rule is always checked
    assert all(ok for _, ok in findings) == holds, findings


def test_a_report_challenge_disputes_the_latest_roots_before_it() -> None:
    view = _story(defeated=False, upheld=False)
    opened = next(i for i, e in enumerate(view.timeline) if e.name == "ChallengeOpened")
    assert roots_before(view, opened) == [ROOT, OTHER]
    assert roots_before(view, 0) == []
