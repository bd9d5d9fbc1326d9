"""A task's challenges and their pinpoint games, audited (docs/contracts.md, "Challenges").

For every challenge of the task (``ChallengeOpened`` and what followed, folded into
``TaskView.challenges``) the audit checks:

- **opening**: a report challenge disputes the root the verifier reported at its position
  (the sample in increasing segment order, then the extra segments; after a forced reveal,
  the revealed roots) and that position's segment; a proof challenge names a segment of the
  task; the game was opened by the pool over that segment, with the challenge's two trace
  roots, the round's verifier (or the solver) defending and the challenger challenging;
- **the game**: its transcript is exported from the chain and replayed offline
  (``agents.audit.game``): every claim re-executed, the ruling derived from the rules;
- **resolution**: ``Upheld`` exactly when the challenger won or both lost (or the solver never
  answered), ``Rejected`` when the defender won, with the game's ruling;
- **consequences**: a round whose report lost (a challenge upheld, or a distance disproved in
  one shot) ends in ``ReportDefeated`` (the verifier's stake to the first account that won,
  in the order the pool learned it; to the jackpot if every loss was both parties') or
  ``ForcedErrorCaught``, and only such a round; a proof that lost ends in ``ProofFailed`` and
  a Failed task, and only then. A fault report voided by a published start state
  (``StatePublished``) counts as a report that lost with no winner (its verifier's stake is
  credited back, ``agents.audit.money``), never as a proof that lost: in the task's last round
  it settles the task Unverified (unless a challenge of the proof failed it).

Findings go into the task's audit (``TaskAudit.add``); each replayed game is kept for the
report page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agents.audit.errors import AuditInputError
from agents.audit.game import GameAudit, replay_game
from agents.audit.transcript import Artifacts, artifacts_of_proof
from agents.dispute.game import Ruling
from agents.roles.tasks import ChallengeView, TaskView
from agents.store import ArtifactStore


class Event(Protocol):
    """A pool event of the task: a ``DecodedLog`` or a ``TimelineEntry``."""

    @property
    def name(self) -> str: ...

    @property
    def args(self) -> dict[str, Any]: ...


# A transcript of game ``id`` with the given artifacts (``agents.audit.transcript.export_game``
# on the chain the task lives on).
GameSource = Callable[[int, Artifacts], dict[str, Any]]
ZERO_ADDRESS = "0x" + "00" * 20
UPHELD = "Upheld"
REJECTED = "Rejected"


@dataclass
class Round:
    """One verification round of a task, as its events tell it."""

    number: int
    verifier: str | None = None
    stake: int = 0
    roots: list[str] = field(default_factory=list)  # the challengeable roots, latest first
    extra_segments: list[int] = field(default_factory=list)
    defeats: list[dict[str, Any]] = field(default_factory=list)
    caught: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ChallengeAudit:
    """One challenge and, once played, its game's replay."""

    challenge: ChallengeView
    game: GameAudit | None = None
    transcript: dict[str, Any] | None = None


def rounds_of(events: Sequence[Event]) -> tuple[list[Round], dict[int, int]]:
    """The task's verification rounds, and each challenge's position in ``events`` (the task's
    pool events in chain order)."""
    rounds = [Round(0)]
    opened: dict[int, int] = {}
    for i, e in enumerate(events):
        current = rounds[-1]
        if e.name == "VerificationClaimed":
            current.verifier = str(e.args["verifier"])
            current.stake = int(e.args["stake"])
        elif e.name in ("VerificationReported", "VerificationRevealed"):
            current.roots = [str(r).lower() for r in e.args["traceRoots"]]
            if e.name == "VerificationReported":
                current.extra_segments = [int(s) for s in e.args["extraSegments"]]
        elif e.name == "ReportDefeated":
            current.defeats.append(e.args)
        elif e.name == "ForcedErrorCaught":
            # The reveal that caught it may have defeated the report on another position and
            # opened the next round first: it belongs to the round of the verifier it names.
            caught = str(e.args["verifier"]).lower()
            mine = [x for x in rounds if x.verifier and x.verifier.lower() == caught]
            (mine[-1] if mine else current).caught.append(e.args)
        elif e.name == "ChallengeOpened":
            opened[int(e.args["challengeId"])] = i
        elif e.name == "VerificationReopened":
            rounds.append(Round(len(rounds)))
    return rounds, opened


def roots_before(events: Sequence[Event], index: int) -> list[str]:
    """The roots a report challenge could dispute at event ``index``: the latest reported (or
    revealed) roots before it."""
    roots: list[str] = []
    for e in events[:index]:
        if e.name in ("VerificationReported", "VerificationRevealed"):
            roots = [str(r).lower() for r in e.args["traceRoots"]]
        elif e.name == "VerificationReopened":
            roots = []
    return roots


def expected_state(challenge: ChallengeView, disproved: bool = False) -> str | None:
    """What ``resolve`` must make of a challenge: ``Upheld`` when the claim lost (the challenger
    won, both lost, the solver never answered, or its answer's distance was disproved),
    ``Rejected`` when the defender won; ``None`` while its game has no ruling."""
    if challenge.game == 0 or disproved:
        return UPHELD
    ruling = Ruling(challenge.ruling)
    if ruling in (Ruling.CHALLENGER_WINS, Ruling.BOTH_LOSE):
        return UPHELD
    if ruling == Ruling.DEFENDER_WINS:
        return REJECTED
    return None


@dataclass(frozen=True)
class Loss:
    """A claim that lost, in the order the pool learned it: a challenge resolved as upheld, or
    a distance disproved in one shot. ``winner`` is the zero address when both lost."""

    claim: str  # "Report" | "Proof"
    round: int
    winner: str
    what: str


def losses_of(events: Sequence[Event]) -> list[Loss]:
    """Every claim the task lost, in chain order (the pool's order of winners)."""
    out = []
    number = 0
    for e in events:
        a = e.args
        if e.name == "VerificationReopened":
            number += 1
        elif e.name == "ChallengeResolved" and int(a["state"]) == 3:
            claim = "Report" if int(a["claim"]) == 1 else "Proof"
            both = int(a["ruling"]) == int(Ruling.BOTH_LOSE)
            winner = ZERO_ADDRESS if both else str(a["challenger"])
            out.append(Loss(claim, number, winner, f"challenge {a['challengeId']} upheld"))
        elif e.name == "DistanceDisproved":
            claim = "Report" if int(a["challengeId"]) == 0 else "Proof"
            what = f"distance at position {a['position']} disproved"
            out.append(Loss(claim, number, str(a["prover"]), what))
        elif e.name == "StatePublished":
            # A fault report is voided by the start state published against it; nobody wins
            # its verifier's stake (it is credited back), and the proof loses nothing.
            what = f"fault report voided: the start state of segment {a['segment']} published"
            out.append(Loss("Report", number, ZERO_ADDRESS, what))
    return out


def first_winner(losses: list[Loss]) -> str:
    """The first account that won against the claim (the zero address if every loss was both
    parties')."""
    return next((x.winner for x in losses if int(x.winner, 16)), ZERO_ADDRESS)


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


Add = Callable[[str, str, object, object, bool], None]


def check_consequences(view: TaskView, events: Sequence[Event], add: Add) -> None:
    """The events that follow challenges are the ones their rulings call for."""
    rounds, _ = rounds_of(events)
    losses = losses_of(events)
    for r in rounds:
        lost = [x for x in losses if x.claim == "Report" and x.round == r.number]
        if r.defeats:
            d = r.defeats[-1]
            add(
                "challenges",
                f"round {r.number}: the defeated report had lost",
                f"ReportDefeated of {d['verifier']}",
                "; ".join(x.what for x in lost) or "it lost nothing",
                bool(lost),
            )
            winner = first_winner(lost)
            # The amount (the stake, or nothing once a caught forced error took it) is checked
            # with the task's other credits (agents.audit.money).
            add(
                "challenges",
                f"round {r.number}: the verifier's stake goes to the first account that won",
                f"{d['winner']}",
                f"{winner}",
                _same(str(d["winner"]), winner),
            )
        elif lost and not r.caught and not _still_open(view, r.number):
            add(
                "challenges",
                f"round {r.number}: a report that lost is defeated",
                "no ReportDefeated",
                "; ".join(x.what for x in lost),
                False,
            )
        for caught in r.caught:
            winners = {x.winner.lower() for x in lost}
            add(
                "challenges",
                f"round {r.number}: the catchers of a forced error won against its report",
                f"ForcedErrorCaught ({len(caught['catchers'])} catcher(s))",
                "; ".join(x.what for x in lost) or "it lost nothing",
                bool(lost) and {str(a).lower() for a in caught["catchers"]} <= winners,
            )
    lost_proof = [x for x in losses if x.claim == "Proof"]
    failed = [e for e in events if e.name == "ProofFailed"]
    add(
        "challenges",
        "the proof failed exactly when it lost",
        "ProofFailed" if failed else "no ProofFailed",
        "; ".join(x.what for x in lost_proof) or "it lost nothing",
        bool(failed) == bool(lost_proof) or (not failed and _still_open(view, None)),
    )
    if failed:
        winner = first_winner(lost_proof)
        got = str(failed[-1].args["winner"])
        add(
            "challenges",
            "the jackpot's part of the solver's stake goes to the first account that won",
            got,
            winner,
            _same(got, winner),
        )
        if view.final:
            add(
                "challenges",
                "a failed proof fails the task",
                view.outcome,
                "Failed",
                view.outcome == "Failed",
            )
    last = [e for e in events if e.name == "StatePublished" and bool(e.args["lastRound"])]
    if last and not failed and view.final:
        add(
            "challenges",
            "a fault report voided in the task's last round settles it Unverified",
            view.outcome,
            "Unverified",
            view.outcome == "Unverified",
        )


def _still_open(view: TaskView, round_number: int | None) -> bool:
    return any(
        c.open and (round_number is None or c.round == round_number)
        for c in view.challenges.values()
    )


def check_challenges(
    view: TaskView,
    events: Sequence[Event],
    add: Add,
    store: ArtifactStore,
    sample: list[int] | None,
    games: GameSource | None,
    *,
    pool: str,
    cache: Path | None = None,
) -> list[ChallengeAudit]:
    """Every challenge of ``view`` checked (see the module docstring); ``sample``: the
    auditor's own sample (segment indices), when it drew one."""
    rounds, opened = rounds_of(events)
    out = []
    for c in sorted(view.challenges.values(), key=lambda c: c.challenge_id):
        ca = ChallengeAudit(c)
        out.append(ca)
        what = f"challenge {c.challenge_id} ({c.claim.lower()}, segment {c.segment})"
        r = rounds[c.round] if c.round < len(rounds) else Round(c.round)
        index = opened.get(c.challenge_id)
        if c.claim == "Report":
            roots = roots_before(events, index) if index is not None else r.roots
            disputed = roots[c.position] if c.position < len(roots) else None
            add(
                "challenges",
                f"{what}: it disputes the root reported at position {c.position}",
                c.defender_trace.chain,
                disputed or "no such position",
                disputed is not None and disputed == c.defender_trace.chain.lower(),
            )
            if sample is not None:
                order = sorted(sample) + list(r.extra_segments)
                segment = order[c.position] if c.position < len(order) else None
                add(
                    "challenges",
                    f"{what}: the pool's segment for position {c.position} is the sample's",
                    c.segment,
                    segment if segment is not None else "no such position",
                    segment == c.segment,
                )
        else:
            add(
                "challenges",
                f"{what}: the segment is one of the task's",
                c.segment,
                f"0 … {view.segments - 1}",
                0 <= c.segment < view.segments,
            )
        disproved = any(
            e.name == "DistanceDisproved" and int(e.args["challengeId"]) == c.challenge_id
            for e in events
        )
        expected = expected_state(c, disproved)
        if not c.open:
            add(
                "challenges",
                f"{what}: resolved as its game's ruling says",
                f"{c.state} ({Ruling(c.ruling).name})",
                expected or "no ruling yet",
                expected == c.state,
            )
        if c.game == 0 or games is None:
            continue
        if view.proof_cid is None:
            raise AuditInputError(f"{what}: the task has no proof to take the game's states from")
        document = games(c.game, artifacts_of_proof(store, view.proof_cid, c.segment))
        ca.transcript = document
        _check_opening(add, what, c, document, r, view, pool)
        game = replay_game(document, store, cache=cache, curve=False)
        ca.game = game
        for f in game.findings:
            add(f"game {c.game}", f.claim, f.chain, f.audit, f.holds)
        if not c.open and not disproved:
            add(
                "challenges",
                f"{what}: the ruling applied is game {c.game}'s",
                Ruling(c.ruling).name,
                document["ruling"],
                Ruling(c.ruling).name == document["ruling"],
            )
    check_consequences(view, events, add)
    return out


def _check_opening(
    add: Add,
    what: str,
    c: ChallengeView,
    document: dict[str, Any],
    r: Round,
    view: TaskView,
    pool: str,
) -> None:
    created = next(
        (e for m in document["moves"] for e in m["events"] if e["event"] == "GameCreated"), None
    )
    if created is None:
        raise AuditInputError(f"game {c.game} of {what} has no GameCreated event")
    a = created["args"]
    spec = a["spec"]
    defender = r.verifier if c.claim == "Report" else view.solver
    facts = {
        "created by the pool": _same(str(a["creator"]), pool),
        "over the challenge's segment": int(spec[2]) == c.segment,
        "with the challenge's trace roots": str(spec[5]).lower() == c.defender_trace.chain.lower()
        and str(spec[6]).lower() == c.challenger_trace.chain.lower(),
        "the challenger challenging": _same(str(a["challenger"]), c.challenger),
        "the claim's party defending": defender is not None and _same(str(a["defender"]), defender),
    }
    wrong = [k for k, ok in facts.items() if not ok]
    add(
        "challenges",
        f"{what}: game {c.game} is the challenge's: " + ", ".join(facts),
        f"creator {a['creator']}, segment {spec[2]}, defender {a['defender']}",
        "not " + ", ".join(wrong) if wrong else "as opened",
        not wrong,
    )
