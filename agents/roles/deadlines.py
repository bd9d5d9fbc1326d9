"""Deadline decisions every agent makes: trigger the timeouts (and settlements) that pay it
or free its stake, and never one that would penalise itself.

Who may gain from moving a task on, by the state whose deadline passed:

================  ==============================  =========================================
state             call                            parties that gain (and so trigger it)
================  ==============================  =========================================
Submitted, Open   ``timeout`` (Expired)           submitter (refund), profiler (stake back)
Training          ``timeout`` (SolverTimedOut)    submitter, profiler; never the solver
Committed         ``timeout`` (Unverified)        submitter, solver (stake back), profiler
Verifying, no     ``timeout`` (SeedWithheld)      submitter, verifier (stake back), profiler;
randomness yet                                    never the solver
Verifying         ``timeout`` (verifier slashed,  solver, submitter, profiler; never the
                  verification reopened)          verifier
ChallengeWindow   ``withdraw([id])`` (Pass)       solver, verifier, profiler (the submitter
                                                  gets nothing back from a pass)
ChallengeWindow   ``withdraw([id])`` (Fail)       submitter, verifier, profiler; never the
                                                  solver (settling slashes it)
================  ==============================  =========================================

A verdict whose windows are over is settled by the first ``withdraw`` that names it,
so the parties it pays withdraw at once instead of calling ``settle`` first: one
transaction each, and no race in which two of them settle the same task (the second
``settle`` would revert). The withdrawal's intent key is the one
``agents.roles.payouts`` uses, so it is never sent again once settled. A report that
may be a forced error settles when its verifier reveals (which pays every party), or
after the reveal window as well: then the verifier, which forfeits, gains nothing.
"""

from __future__ import annotations

from agents.roles import intents
from agents.roles.situation import Action, Situation, send
from agents.roles.tasks import TaskView

TIMEOUT_GAINERS: dict[str, tuple[str, ...]] = {
    "Submitted": ("submitter", "profiler"),
    "Open": ("submitter", "profiler"),
    "Training": ("submitter", "profiler"),
    "Committed": ("submitter", "solver", "profiler"),
    "Verifying": ("submitter", "solver", "profiler"),
}
SETTLE_GAINERS: dict[str, tuple[str, ...]] = {
    "Pass": ("solver", "verifier", "profiler"),
    "Fail": ("submitter", "verifier", "profiler"),
}


def deadline_actions(situation: Situation) -> list[Action]:
    """Timeouts and settlements of tasks in which this agent holds a role that gains from them."""
    actions: list[Action] = []
    for view in situation.tasks.values():
        if view.final or not situation.expired(view):
            continue
        if view.status == "ChallengeWindow" and situation.now <= (
            situation.verdict_end(view) + situation.margin
        ):
            continue  # the verifier may still reveal
        if any(c.open for c in view.challenges.values()):
            continue  # nothing a challenge can change is settled while it is open
        roles = view.roles_of(situation.me)
        if not roles:
            continue
        action = _move_on(situation, view, roles)
        if action is not None:
            actions.append(action)
    return actions


def _move_on(situation: Situation, view: TaskView, roles: list[str]) -> Action | None:
    if view.status == "ChallengeWindow":
        settlers = set(SETTLE_GAINERS.get(view.verdict, ()))
        if situation.must_reveal(view):
            settlers.discard("verifier")  # it did not reveal: it forfeits
        if not set(roles) & settlers:
            return None
        key = intents.withdraw([view.task_id])
        if situation.pending(key):
            return None
        reason = f"challenge window over ({view.verdict}): settle and withdraw"
        return send(view, key, "withdraw", ([view.task_id],), reason)
    gainers = TIMEOUT_GAINERS.get(view.status)
    if view.status == "Verifying" and view.randomness is None:
        gainers = ("submitter", "verifier", "profiler")  # the solver withheld its seed
    if gainers is None or not set(roles) & set(gainers):
        return None
    key = intents.timeout(view.task_id, view.status, view.verification_round)
    if situation.pending(key):
        return None
    return send(view, key, "timeout", (view.task_id,), f"{view.status} deadline passed")
