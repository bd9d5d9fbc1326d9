"""Challenges of a verifier's report or a solver's proof, as decisions: pure functions.

Anyone who replays a task's verification with the chain's randomness (a whistleblower
re-checking a report, a solver checking a Fail) gets the same sample, the same
screening extras and, for an honest replay, the same trace roots bit for bit. Comparing
that replay (a ``ReplayResult``) with the report (the task's view) gives the
**disagreements**, each about one segment:

- ``report``: the report's trace root at some position is not the replay's. Whoever
  stands behind the replay challenges the report there (``challengeReport``); the game
  between the two traces decides. A forced error is one such position, chosen by the
  verifier's secret;
- ``distance``: the report's root at some position is the replay's, but the distance it
  states there passes where the replay's fails (or fails where it passes): a one-shot
  claim with no game and no bond (``disproveReport``) proves what that trace ends with;
- ``proof``: a segment the replay fails (above τ) that the report does not cover
  (screening flagged it for the replay): the solver's proof is challenged there
  (``challengeProof``); the solver must answer with a trace of its own that passes.

A challenge sends this agent's own trace of the segment, replayed by an ``OpeningJob``
(``Start(opening)``): its trace root, the distance it ends with and the game's opening
(the program header and the segment's checkpoint proofs). A report is re-checked when
it may be a forced error (its verifier claimed before the randomness existed, and the
pool forces errors), and otherwise with the checker's ``share``, drawn from a secret only
the checker holds (``recheck_draw``), so a verifier cannot tell which of its reports are
looked at.

Every role also answers and ends challenges (``challenge_duties``): a solver answers a
challenge of its proof with its trace when that trace passes; the winner of a challenge's
game (the challenger when nobody won, or when the solver did not answer in time) applies
its end with ``resolve``; and an account the pool credited takes the credit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from agents.chain.executor import Intent
from agents.chain.journal import IN_FLIGHT
from agents.commitment import Root
from agents.dispute.game import Ruling
from agents.learning.selection import sample_segments
from agents.roles import intents
from agents.roles.jobs import (
    OpeningJob,
    OpeningResult,
    PublicationJob,
    PublicationResult,
    ReplayJob,
    ReplayResult,
)
from agents.roles.record import history
from agents.roles.situation import POOL, Action, Send, Situation, Start, send
from agents.roles.tasks import ChallengeView, TaskView

KINDS = ("report", "distance", "proof")
JACKPOT = "Jackpot"  # the manifest's name of the jackpot contract
# Which disagreement a checker challenges first: one game per report is enough to void it.
PRIORITY = {kind: rank for rank, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class Disagreement:
    """The replay and the report (or the proof) differ on segment ``segment``."""

    kind: str  # one of KINDS
    segment: int
    mine: Root  # the replay's trace root of the segment
    my_distance: int  # binary32 bits
    position: int | None = None  # the segment's position in the report (None: not covered)
    reported: Root | None = None
    reported_distance: int | None = None


def passes(distance_bits: int, threshold_bits: int) -> bool:
    """The pool's rule: a distance passes iff its bit pattern is at most τ's."""
    return distance_bits <= threshold_bits


def report_segments(view: TaskView) -> list[int]:
    """The segments a report covers, in the order of its trace roots: the sample the chain's
    randomness draws, then the report's extra segments."""
    if view.randomness is None:
        return []
    sample = sample_segments(bytes(view.randomness), view.segments, view.sampled_segments)
    return [*sample, *view.extra_segments]


def replay_segments(view: TaskView, result: ReplayResult) -> list[int]:
    """The segments a replay covers, in the order of its trace roots."""
    if view.randomness is None:
        return []
    sample = sample_segments(bytes(view.randomness), view.segments, view.sampled_segments)
    return [*sample, *result.extra_segments]


def disagreements(view: TaskView, result: ReplayResult) -> list[Disagreement]:
    """Where ``result`` (a replay with the task's randomness) and the task's report differ,
    by segment (see the module docstring), challenge order first. Empty without a report or
    when they agree."""
    if view.randomness is None or not view.trace_roots:
        return []
    reported_segments = report_segments(view)
    reported_distances = [*view.distances, *view.extra_distances]
    if len(reported_segments) != len(view.trace_roots) or len(reported_distances) != len(
        reported_segments
    ):
        return []  # not a report the pool takes; nothing to compare
    reported = {
        segment: (position, root, distance)
        for position, (segment, root, distance) in enumerate(
            zip(reported_segments, view.trace_roots, reported_distances, strict=True)
        )
    }
    mine_segments = replay_segments(view, result)
    my_distances = [*result.distances, *result.extra_distances]
    if len(mine_segments) != len(result.trace_roots) or len(my_distances) != len(mine_segments):
        return []  # a replay that did not cover its segments (a rejection before replay)
    out: list[Disagreement] = []
    tau = view.threshold
    # A fault report names no trace: no game or one-shot claim is played on its positions
    # (the pool refuses them); it is disputed by a published start state (``publication``).
    fault = view.fault_report
    for segment, root, distance in zip(
        mine_segments, result.trace_roots, my_distances, strict=True
    ):
        theirs = reported.get(segment)
        if theirs is None:
            if not passes(distance, tau):
                out.append(Disagreement("proof", segment, root, distance))
            continue
        position, their_root, their_distance = theirs
        if fault:
            continue
        if their_root != root:
            out.append(
                Disagreement(
                    "report", segment, root, distance, position, their_root, their_distance
                )
            )
        elif passes(distance, tau) != passes(their_distance, tau):
            out.append(
                Disagreement(
                    "distance", segment, root, distance, position, their_root, their_distance
                )
            )
    return sorted(out, key=lambda d: (PRIORITY[d.kind], d.segment))


def first_challenge(found: Sequence[Disagreement]) -> Disagreement | None:
    """The disagreement to challenge: a report's root first, then a distance, then the proof;
    the lowest segment of its kind."""
    return min(found, key=lambda d: (PRIORITY[d.kind], d.segment), default=None)


def solver_disproves(view: TaskView, result: ReplayResult, found: Sequence[Disagreement]) -> bool:
    """Whether a solver's replay of its own proof disproves a Fail: the replay passes every
    segment it covers and the report's roots disagree with it somewhere."""
    if view.verdict != "Fail" or result.verdict != "pass":
        return False
    if not any(d.kind in ("report", "distance") for d in found):
        return False
    every = [*result.distances, *result.extra_distances]
    return all(passes(d, view.threshold) for d in every)


def recheck_draw(secret: bytes, task_id: int, rnd: int) -> float:
    """A number in [0, 1) that only the holder of ``secret`` can compute for (task, round)."""
    message = b"veritrain/recheck" + secret + task_id.to_bytes(32, "big") + rnd.to_bytes(32, "big")
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big") / 2**64


def selected(situation: Situation, view: TaskView, share: float) -> str | None:
    """Why the report of ``view``'s current round is re-checked (``None``: it is not)."""
    if situation.must_reveal(view):
        return "the report may be a forced error"
    draw = recheck_draw(
        situation.secret(view.task_id, view.verification_round),
        view.task_id,
        view.verification_round,
    )
    if draw < share:
        return f"drawn for a re-check ({draw:.3f} < {share})"
    return None


def recheck_job(view: TaskView) -> ReplayJob | None:
    """The replay a checker runs: the verifier's, with the chain's randomness and τ."""
    if (
        view.spec_cid is None
        or view.proof_cid is None
        or view.checkpoint_root is None
        or view.randomness is None
    ):
        return None
    return ReplayJob(
        spec_cid=view.spec_cid,
        proof_cid=view.proof_cid,
        checkpoint_root=view.checkpoint_root,
        randomness=view.randomness,
        segments=view.segments,
        sampled=view.sampled_segments,
        threshold=view.threshold,
    )


def _opening(
    situation: Situation, view: TaskView, segment: int, why: str
) -> OpeningResult | Start | None:
    """This agent's trace and opening of ``segment``: the result, the job to start, or
    ``None`` while it runs (or after it failed for good)."""
    key = intents.opening(view.task_id, segment)
    work = situation.work.get(key)
    if work is None or work.status == "interrupted":
        if view.spec_cid is None or view.proof_cid is None:
            return None
        return Start(key, view.task_id, OpeningJob(view.spec_cid, view.proof_cid, segment), why)
    if work.status == "done" and isinstance(work.result, OpeningResult):
        return work.result
    return None


def challenge(
    situation: Situation, view: TaskView, pick: Disagreement, reason: str
) -> list[Action]:
    """Challenge ``pick``: first this agent's trace of the segment (a job), then the pool's
    call, keyed by task, round and segment, paid with the challenge bond. A proof challenge
    whose own trace passes after all is dropped (it would lose)."""
    got = _opening(situation, view, pick.segment, f"{reason}: tracing segment {pick.segment}")
    if not isinstance(got, OpeningResult):
        return [] if got is None else [got]
    key = intents.challenge(view.task_id, view.verification_round, pick.segment)
    bond = situation.params.challenge_bond
    why = f"{reason}; the {pick.kind} disagrees with this replay on segment {pick.segment}"
    if pick.kind == "distance" and pick.position is not None:
        if situation.pool is None or got.distance_proof is None:
            return []
        stated = passes(pick.reported_distance or 0, view.threshold)
        if passes(got.distance, view.threshold) == stated:
            return []  # the trace's own end agrees with the report after all
        claim = (view.task_id, pick.position, history(view, situation.pool), got.distance_proof)
        return [send(view, key, "disproveReport", claim, why)]
    if pick.kind == "report" and pick.position is not None:
        if situation.pool is None:
            return []
        args: tuple[object, ...] = (
            view.task_id,
            pick.position,
            got.trace_root.chain,
            history(view, situation.pool),
            got.opening(),
        )
        return [send(view, key, "challengeReport", args, why, bond)]
    if passes(got.distance, view.threshold):
        return []
    return [
        send(
            view,
            key,
            "challengeProof",
            (view.task_id, pick.segment, got.trace_root.chain),
            why,
            bond,
        )
    ]


def challenged(situation: Situation, view: TaskView) -> bool:
    """Whether this agent challenged the current round of ``view`` already."""
    prefix = f"challenge/{view.task_id}/{view.verification_round}/"
    return any(key.startswith(prefix) for key in situation.journal)


def bonds_at_stake(situation: Situation) -> int:
    """The bonds of this agent's challenges of tasks not yet settled."""
    count = 0
    for key, status in situation.journal.items():
        if not key.startswith("challenge/") or status not in (*IN_FLIGHT, "mined"):
            continue
        view = situation.tasks.get(int(key.split("/")[1]))
        if view is None or not view.final:
            count += 1
    return count * situation.params.challenge_bond


def traced_segments(situation: Situation) -> dict[str, int]:
    """This agent's traces of single segments (opening jobs: a whistleblower's checks of a
    proof, the traces behind challenges and answers), by result: ``pass``, ``fail`` (above τ),
    ``running`` and ``error`` (a replay that failed)."""
    counts = dict.fromkeys(("pass", "fail", "running", "error"), 0)
    for key, work in situation.work.items():
        if not key.startswith("opening/"):
            continue
        if work.status == "done" and isinstance(work.result, OpeningResult):
            view = situation.tasks.get(int(key.split("/")[1]))
            threshold = view.threshold if view is not None else 0
            counts["pass" if passes(work.result.distance, threshold) else "fail"] += 1
        elif work.status == "failed":
            counts["error"] += 1
        elif work.status == "running":
            counts["running"] += 1
    return counts


# -- what every role does about challenges --------------------------------------------------


def challenge_duties(situation: Situation) -> list[Action]:
    """Answers to challenges of this solver's proofs, the ends of challenges this agent won
    (or challenged without an answer), and taking the pool's credit and the jackpot's awards."""
    actions: list[Action] = []
    for view in situation.tasks.values():
        for c in view.challenges.values():
            if c.state == "Answering" and situation.is_me(view.solver):
                actions.extend(_answer(situation, view, c))
            resolve = _resolve(situation, view, c)
            if resolve is not None:
                actions.append(resolve)
    if situation.jackpot_owed > 0:
        count = sum(
            1
            for view in situation.tasks.values()
            for account, _ in view.jackpot_awards
            if situation.is_me(account)
        )
        key = intents.withdraw_award(count)
        if key not in situation.journal:
            intent = Intent(key=key, contract=JACKPOT, function="withdraw", args=())
            why = f"{situation.jackpot_owed} wei awarded by the jackpot"
            actions.append(Send(intent, why))
    if situation.credit > 0:
        key = intents.withdraw_credit(situation.credit_withdrawals)
        if key not in situation.journal:
            actions.append(
                Send(
                    Intent(key=key, contract=POOL, function="withdrawCredit", args=()),
                    f"{situation.credit} wei credited by the pool",
                )
            )
    return actions


def _answer(situation: Situation, view: TaskView, c: ChallengeView) -> list[Action]:
    """The solver answers a challenge of its proof with its own trace of the segment, when
    that trace passes (an honest proof's does) and the answer window is open."""
    if situation.now + situation.margin > c.deadline or situation.pool is None:
        return []
    key = intents.answer(view.task_id, c.challenge_id)
    if key in situation.journal:
        return []
    got = _opening(situation, view, c.segment, f"challenge {c.challenge_id} of this proof")
    if not isinstance(got, OpeningResult):
        return [] if got is None else [got]
    if not passes(got.distance, view.threshold):
        return []  # its own trace fails: an answer would only lose the game's bond too
    args = (
        c.challenge_id,
        got.trace_root.chain,
        got.distance,
        history(view, situation.pool),
        got.opening(),
    )
    why = f"challenge {c.challenge_id} of segment {c.segment}: this proof's trace passes"
    return [send(view, key, "answerChallenge", args, why)]


def _resolve(situation: Situation, view: TaskView, c: ChallengeView) -> Send | None:
    """``resolve`` of a challenge whose game is over, sent by the party it favours: the
    defender when the defender won, else the challenger (who also ends a proof challenge the
    solver did not answer in time)."""
    key = intents.resolve(view.task_id, c.challenge_id)
    if key in situation.journal:
        return None
    me_challenger = situation.is_me(c.challenger)
    if c.state == "Answering":
        if me_challenger and situation.now > c.deadline + situation.margin:
            return send(view, key, "resolve", (c.challenge_id,), "the solver did not answer")
        return None
    if c.state != "Playing":
        return None
    game = situation.games.get(c.game)
    if game is None or not game.resolved:
        return None
    defender_won = game.ruling == Ruling.DEFENDER_WINS.name
    favoured = game.defender if defender_won else c.challenger
    if not situation.is_me(favoured):
        return None
    return send(view, key, "resolve", (c.challenge_id,), f"game {c.game} ended: {game.ruling}")


# -- fault reports ---------------------------------------------------------------------------


def publication(situation: Situation, view: TaskView, why: str) -> list[Action]:
    """Against the fault report of ``view``'s round: read the start state of the last sampled
    segment from this agent's own proof (a job), then publish it (``publishState``), which
    voids the report and has the task verified again; in the task's last verification round
    it settles the task Unverified (its stake back) where the report left standing would fail
    it, so it is worth sending in every round."""
    if not view.fault_report or situation.pool is None or not situation.in_time(view):
        return []
    segments = report_segments(view)
    if not segments or view.spec_cid is None or view.proof_cid is None:
        return []
    position = len(view.distances) - 1  # the last sampled segment (its state is the solver's)
    segment = segments[position]
    key = intents.publish(view.task_id, view.verification_round)
    if situation.pending(key) or key in situation.journal:
        return []
    work_key = intents.publication(view.task_id, segment)
    work = situation.work.get(work_key)
    if work is None or work.status == "interrupted":
        job = PublicationJob(view.spec_cid, view.proof_cid, segment)
        return [Start(work_key, view.task_id, job, f"{why}: reading checkpoint {segment}")]
    if work.status != "done" or not isinstance(work.result, PublicationResult):
        return []  # running, or this agent cannot read its own checkpoint either
    got = work.result
    args = (
        view.task_id,
        position,
        history(view, situation.pool),
        got.state(),
        [r.chain for r in got.proof],
    )
    return [send(view, key, "publishState", args, f"{why}: start state of segment {segment}")]
