"""The whistleblower's decisions: re-check reports, challenge the ones that are wrong.

Pure: ``decide(situation, policy)`` looks only at its arguments. A whistleblower holds
no role in the tasks it watches. Once a verification's randomness is drawn it decides
whether to re-check the report of that round (``agents.roles.challenges.selected``:
every report that may be a forced error, others by a draw from its own key) and
replays what the verifier replays: the sample and every segment the screening of all
checkpoints flags (``Start(recheck)``). When the report is in and its challenge window
is open it compares the two and challenges the first disagreement (one challenge per
report and round) with its own trace of that segment, within its policy: the tasks it
watches, the bond of one challenge and the bonds it may have at stake at once. The games
its challenges open are played by the runtime (``agents.roles.gameplay``), as for every
role; it applies the end of the challenges it won and takes the pool's credit
(``challenge_duties``).

Besides, it checks the solver's proof itself where the sample did not look: on a share
``proof_share`` of the tasks it watches (drawn from its own key per task and round) it
replays up to ``proof_segments`` segments that its re-check does not cover (every segment
when it does not re-check the report), drawn from its key too, one after another, each
exactly (an opening job: the trace the game would need). A segment whose replay fails
(exact mode: any distance from the claimed end; tolerant: above τ) is challenged with
``challengeProof`` and the solver must answer with a trace that passes. Neither the solver
nor the verifier can tell which segments these are, so a fake that the randomness kept out
of the sample (or that a lazy or colluding verifier passed) is caught at the rate of these
checks. A disagreement with the report comes first: the proof is replayed only once the
re-check of the report (if any) is done and agrees with it.
"""

from __future__ import annotations

import hashlib

from agents.learning.selection import sample_segments
from agents.node.config import VerifierPolicy, WhistleblowerPolicy
from agents.roles import intents, verifier
from agents.roles.challenges import (
    Disagreement,
    bonds_at_stake,
    challenge,
    challenge_duties,
    challenged,
    disagreements,
    first_challenge,
    passes,
    recheck_job,
    selected,
)
from agents.roles.jobs import OpeningJob, OpeningResult, ReplayResult
from agents.roles.situation import Action, Send, Situation, Start
from agents.roles.tasks import TaskView

WATCHED = ("Verifying", "ChallengeWindow")


def skip_reason(situation: Situation, view: TaskView, policy: WhistleblowerPolicy) -> str | None:
    """Why the policy leaves ``view``'s task alone (``None``: watch it)."""
    if view.status not in WATCHED or view.randomness is None or view.verifier is None:
        return "no verification to re-check"
    if not policy.own_tasks and view.roles_of(situation.me):
        return "a task this account holds a role in"
    watched = policy.watched_submitters
    if watched and (view.submitter or "").lower() not in watched:
        return "a submitter the policy does not watch"
    facts = situation.specs.get(view.task_id)
    # The spec checks a verifier makes before replaying (no stake: a re-check locks none).
    return verifier.skip_reason(facts, VerifierPolicy(max_ops=policy.max_ops), 0)


def bond_reason(situation: Situation, policy: WhistleblowerPolicy, at_stake: int) -> str | None:
    """Why the policy does not pay another challenge's bond now (``None``: it does)."""
    bond = situation.params.challenge_bond
    if policy.max_bond_wei is not None and bond > policy.max_bond_wei:
        return f"bond {bond} wei above max_bond_wei {policy.max_bond_wei}"
    if policy.budget_wei is not None and at_stake + bond > policy.budget_wei:
        return f"{at_stake} wei at stake already; budget {policy.budget_wei} wei"
    return None


def proof_draw(secret: bytes, task_id: int, rnd: int, segment: int | None = None) -> float:
    """A number in [0, 1) that only the holder of ``secret`` can compute: for the task and
    round (``segment`` None), or for one segment of it."""
    message = (
        b"veritrain/proof-check"
        + secret
        + task_id.to_bytes(32, "big")
        + rnd.to_bytes(32, "big")
        + (b"" if segment is None else b"/" + segment.to_bytes(32, "big"))
    )
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big") / 2**64


def proof_segments(
    situation: Situation, view: TaskView, policy: WhistleblowerPolicy, rechecked: bool
) -> list[int]:
    """The segments of ``view``'s proof this whistleblower replays itself in the current
    round, in the order it replays them: none unless the task is drawn (``proof_share``);
    else the ``proof_segments`` segments with the lowest draws among those its re-check does
    not replay (the sample, when it re-checks the report)."""
    if view.randomness is None or policy.proof_segments == 0 or view.segments <= 0:
        return []
    rnd = view.verification_round
    secret = situation.secret(view.task_id, rnd)
    if proof_draw(secret, view.task_id, rnd) >= policy.proof_share:
        return []
    covered: set[int] = set()
    if rechecked:
        covered = set(sample_segments(bytes(view.randomness), view.segments, view.sampled_segments))
    candidates = [i for i in range(view.segments) if i not in covered]
    candidates.sort(key=lambda i: proof_draw(secret, view.task_id, rnd, i))
    return candidates[: policy.proof_segments]


def proof_checks(
    situation: Situation, view: TaskView, segments: list[int]
) -> tuple[list[Action], Disagreement | None]:
    """Replay ``segments`` one after another (an opening job each, shared with a challenge's):
    the job to start next, and the first replayed segment that fails, if any (no more are
    replayed then)."""
    if view.spec_cid is None or view.proof_cid is None:
        return [], None
    for segment in segments:
        key = intents.opening(view.task_id, segment)
        work = situation.work.get(key)
        if work is None or work.status == "interrupted":
            job = OpeningJob(view.spec_cid, view.proof_cid, segment)
            why = f"checking the proof itself: segment {segment}, drawn outside the sample"
            return [Start(key, view.task_id, job, why)], None
        if work.status == "running":
            return [], None
        if work.status == "done" and isinstance(work.result, OpeningResult):
            got = work.result
            if not passes(got.distance, view.threshold):
                return [], Disagreement("proof", segment, got.trace_root, got.distance)
        # a replay that failed for good (a segment the proof lacks) proves nothing: next one
    return [], None


def decide(situation: Situation, policy: WhistleblowerPolicy) -> list[Action]:
    """The whistleblower's next actions (see the module docstring)."""
    actions: list[Action] = []
    at_stake = bonds_at_stake(situation)
    for task_id, view in sorted(situation.tasks.items()):
        if skip_reason(situation, view, policy) is not None:
            continue
        why = selected(situation, view, policy.recheck_share)
        pick: Disagreement | None = None
        waiting = False  # a re-check whose result is not in yet
        if why is not None:
            key = intents.recheck(task_id, view.verification_round)
            work = situation.work.get(key)
            if work is None or work.status == "interrupted":
                job = recheck_job(view)
                if job is not None:
                    actions.append(Start(key, task_id, job, why))
                waiting = True
            elif work.status != "done" or not isinstance(work.result, ReplayResult):
                waiting = work.status == "running"
            else:
                pick = first_challenge(disagreements(view, work.result))
        if pick is None and not waiting and not challenged(situation, view):
            # The report agrees with the re-check (or is not re-checked): the proof itself.
            spots = proof_segments(situation, view, policy, rechecked=why is not None)
            starts, pick = proof_checks(situation, view, spots)
            actions.extend(starts)
            if pick is not None:
                why = f"proof checked outside the sample (segments {spots})"
        if pick is None or why is None:
            continue
        if view.status != "ChallengeWindow" or not situation.in_time(view):
            continue
        if challenged(situation, view):
            continue
        if bond_reason(situation, policy, at_stake) is not None:
            continue
        steps = challenge(situation, view, pick, why)
        if any(isinstance(a, Send) for a in steps):
            at_stake += situation.params.challenge_bond
        actions.extend(steps)
    actions.extend(challenge_duties(situation))
    return actions
