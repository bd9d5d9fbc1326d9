"""Withdrawal decisions: take what a settled task owes this agent (payouts are pulled)."""

from __future__ import annotations

from agents.roles import intents
from agents.roles.situation import Action, Situation, send


def withdrawals(situation: Situation) -> list[Action]:
    """One ``withdraw([id])`` per settled task that still owes this agent something."""
    actions: list[Action] = []
    for view in situation.tasks.values():
        if not view.final or view.has_withdrawn(situation.me):
            continue
        due = view.due_to(situation.me)
        key = intents.withdraw([view.task_id])
        if due > 0 and not situation.pending(key):
            actions.append(send(view, key, "withdraw", ([view.task_id],), f"{due} wei owed"))
    return actions
