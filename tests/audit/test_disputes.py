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
    Loss,
    check_consequences,
    expected_state,
    first_winner,
    losses_of,
    roots_before,
)
from agents.chain.abi import DecodedLog
from agents.commitment import Root
from agents.dispute.game import Ruling
from agents.roles.tasks import ChallengeView, fold

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
    # A disproved answer's challenge is upheld at once, whatever its game says later.
    assert expected_state(_challenge(1, game, ruling), disproved=True) == UPHELD


def test_the_first_winner_is_the_first_account_that_won() -> None:
    both = Loss("Report", 0, ZERO_ADDRESS, "challenge 1 upheld")
    won = Loss("Report", 0, BOB, "challenge 3 upheld")
    later = Loss("Report", 0, ALICE, "distance at position 0 disproved")
    assert first_winner([both, won, later]) == BOB
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


def _story(
    *, defeated: bool, upheld: bool, winner: str = BOB, slashed: int = 7
) -> list[DecodedLog]:
    """A task whose report (roots ROOT, OTHER) is challenged at position 1 by BOB."""
    events = [
        _event(
            "VerificationClaimed",
            0,
            verifier=VERIFIER,
            secretHash="0x" + "00" * 32,
            stake=7,
            deadline=0,
            claimBlock=10,
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
    return events


def _findings(events: list[DecodedLog]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    view = fold(1, events)
    check_consequences(
        view, events, lambda area, claim, chain, audit, holds: out.append((claim, holds))
    )
    return out


@pytest.mark.parametrize(
    ("defeated", "upheld", "winner", "slashed", "holds"),
    [
        (True, True, BOB, 7, True),  # lost, defeated, the stake to its challenger
        (False, False, BOB, 7, True),  # defended: nothing follows
        (False, True, BOB, 7, False),  # lost, yet never defeated
        (True, False, BOB, 7, False),  # defeated without losing
        (True, True, ALICE, 7, False),  # the stake to somebody else
        (True, True, BOB, 6, True),  # the amount is the credits' check (test_payouts.py)
    ],
)
def test_consequences_of_report_challenges(
    defeated: bool, upheld: bool, winner: str, slashed: int, holds: bool
) -> None:
    findings = _findings(_story(defeated=defeated, upheld=upheld, winner=winner, slashed=slashed))
    assert findings  # the proof rule is always checked
    assert all(ok for _, ok in findings) == holds, findings


def test_a_report_challenge_disputes_the_latest_roots_before_it() -> None:
    events = _story(defeated=False, upheld=False)
    opened = next(i for i, e in enumerate(events) if e.name == "ChallengeOpened")
    assert roots_before(events, opened) == [ROOT, OTHER]
    assert roots_before(events, 0) == []


def test_a_disproved_distance_defeats_the_report() -> None:
    events = _story(defeated=True, upheld=False, winner=ALICE)
    disproved = _event(
        "DistanceDisproved", 3, prover=ALICE, challengeId=0, position=0, stated=0, traced=1
    )
    # The one-shot proof came before the report was defeated; the challenge was rejected.
    with_proof = [*events[:-1], disproved, events[-1]]
    assert all(ok for _, ok in _findings(with_proof)), _findings(with_proof)
    assert not all(ok for _, ok in _findings(events))  # without it the defeat is unfounded


@pytest.mark.parametrize("defeated", [True, False])
def test_a_defeated_report_is_not_held_against_the_chain(defeated: bool) -> None:
    from agents.audit.history import ChainHistory
    from agents.audit.task import TaskAudit, _set_aside_defeated_report

    events = _story(defeated=defeated, upheld=defeated)
    history = ChainHistory(
        task_id=1,
        pool="0x" + "22" * 20,
        chain_id=31337,
        view=fold(1, events),
        events=events,
        raw_logs=[],
        folded_topics=set(),
        stored_record=bytes(32),
        params={},
    )
    audit = TaskAudit(history)
    audit.add("report", "the trace roots are the auditor's", "[a]", "[b]", False)
    audit.add("events", "the record is the pool's", "0x00", "0x00", True)
    _set_aside_defeated_report(audit)
    assert audit.holds == defeated
    assert bool(audit.notes) == defeated
    assert [f.area for f in audit.findings] == (["events"] if defeated else ["report", "events"])


def _published_story(*, last: bool, outcome: str | None, proof_failed: bool) -> list[DecodedLog]:
    """A fault report voided by a published start state (``last``: in the task's last round),
    then what the chain did (``ProofFailed`` from a challenge of the proof, a settlement)."""
    from agents.roles.tasks import OUTCOMES

    events = [
        _event(
            "StatePublished",
            0,
            publisher=BOB,
            verifier=VERIFIER,
            segment=3,
            stateRoot=ROOT,
            refunded=7,
            lastRound=last,
        ),
        _event("ReportDefeated", 1, verifier=VERIFIER, winner=ZERO_ADDRESS, slashed=0),
    ]
    if proof_failed:
        opened = {"challengeId": 2, "challenger": ALICE, "claim": 2}
        events += [
            _event(
                "ChallengeOpened",
                2,
                **opened,
                segment=5,
                position=0,
                defenderTrace=OTHER,
                challengerTrace=ROOT,
                game=0,
                deadline=0,
            ),
            _event("ChallengeResolved", 2, **opened, state=3, ruling=int(Ruling.NONE)),
            _event("ProofFailed", 2, solver=BOB, winner=ALICE, award=5),
        ]
    if outcome is not None:
        paid = dict.fromkeys(("toSubmitter", "toSolver", "toVerifier", "toProfiler"), 0)
        events.append(
            _event("TaskSettled", 3, outcome=OUTCOMES.index(outcome), toJackpot=0, **paid)
        )
    return events


@pytest.mark.parametrize(
    ("last", "outcome", "proof_failed", "holds"),
    [
        (True, "Unverified", False, True),  # the last round's publication: nobody can tell
        (True, "Failed", False, False),  # failing the solver on a publication: the old theft
        (True, "Failed", True, True),  # a challenge of the proof failed it all the same
        (True, None, False, True),  # not settled yet (a challenge is open)
        (False, None, False, True),  # an earlier round: verified again
    ],
)
def test_a_publication_never_fails_the_proof(
    last: bool, outcome: str | None, proof_failed: bool, holds: bool
) -> None:
    events = _published_story(last=last, outcome=outcome, proof_failed=proof_failed)
    proof = ["Proof"] if proof_failed else []
    assert [x.claim for x in losses_of(events)] == ["Report", *proof]
    findings = _findings(events)
    assert all(ok for _, ok in findings) == holds, findings
    unverified = "a fault report voided in the task's last round settles it Unverified"
    checked = last and outcome is not None and not proof_failed
    assert any(claim == unverified for claim, _ in findings) == checked, findings
