"""The submitter's decisions while it follows its tasks: review their profiles, move them on at
their deadlines and take back what settlement returns. (Submitting and cancelling are
commands, not decisions.)

A tolerant task's profile waits for its submitter's review: the runtime checks the profile
(``agents.roles.admission.examine_profile``) and the submitter accepts it at once when the
checks pass, so that solvers need not wait for the review window, or rejects it (paying the
rejection fee, which goes to the jackpot; the profiler gets its stake back) when they do not.
"""

from __future__ import annotations

import dataclasses

from agents.roles import intents
from agents.roles.deadlines import deadline_actions
from agents.roles.payouts import withdrawals
from agents.roles.situation import Action, Situation, send


def decide(situation: Situation) -> list[Action]:
    """Reviews, timeouts, settlements and withdrawals of the submitter's own tasks."""
    own = {i: v for i, v in situation.tasks.items() if situation.is_me(v.submitter)}
    mine = dataclasses.replace(situation, tasks=own)
    return [*reviews(mine), *deadline_actions(mine), *withdrawals(mine)]


def reviews(situation: Situation) -> list[Action]:
    """Accept each profile under review whose checks passed; reject the others. Once per
    profile, and only while the review deadline is ahead (by the margin)."""
    actions: list[Action] = []
    for task_id, view in sorted(situation.tasks.items()):
        if not situation.under_review(view):
            continue
        if situation.now + situation.margin > view.review_deadline:
            continue  # too late to be sure it lands in time: the profile stands
        review = situation.profiles.get(task_id)
        if review is None or review.profile_cid != view.profile_cid:
            continue  # not checked yet
        key = intents.review(task_id, view.profiles)
        if key in situation.journal:
            continue
        if review.problem is None:
            actions.append(send(view, key, "acceptProfile", (task_id,), "profile checked"))
        else:
            fee = situation.params.profile_rejection_fee(view.bounty)
            why = f"profile rejected: {review.problem}"
            actions.append(send(view, key, "rejectProfile", (task_id,), why, fee))
    return actions
