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
"""

from __future__ import annotations

from agents.node.config import VerifierPolicy, WhistleblowerPolicy
from agents.roles import intents, verifier
from agents.roles.challenges import (
    bonds_at_stake,
    challenge,
    challenge_duties,
    challenged,
    disagreements,
    first_challenge,
    recheck_job,
    selected,
)
from agents.roles.jobs import ReplayResult
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


def decide(situation: Situation, policy: WhistleblowerPolicy) -> list[Action]:
    """The whistleblower's next actions (see the module docstring)."""
    actions: list[Action] = []
    at_stake = bonds_at_stake(situation)
    for task_id, view in sorted(situation.tasks.items()):
        if skip_reason(situation, view, policy) is not None:
            continue
        why = selected(situation, view, policy.recheck_share)
        if why is None:
            continue
        key = intents.recheck(task_id, view.verification_round)
        work = situation.work.get(key)
        if work is None or work.status == "interrupted":
            job = recheck_job(view)
            if job is not None:
                actions.append(Start(key, task_id, job, why))
            continue
        if work.status != "done" or not isinstance(work.result, ReplayResult):
            continue
        if view.status != "ChallengeWindow" or not situation.in_time(view):
            continue
        if challenged(situation, view):
            continue
        pick = first_challenge(disagreements(view, work.result))
        if pick is None or bond_reason(situation, policy, at_stake) is not None:
            continue
        steps = challenge(situation, view, pick, why)
        if any(isinstance(a, Send) for a in steps):
            at_stake += situation.params.challenge_bond
        actions.extend(steps)
    actions.extend(challenge_duties(situation))
    return actions
