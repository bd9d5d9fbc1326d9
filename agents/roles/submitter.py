"""The submitter's decisions while it follows its tasks: move them on at their deadlines and
take back what settlement returns. (Submitting and cancelling are commands, not decisions.)
"""

from __future__ import annotations

import dataclasses

from agents.roles.deadlines import deadline_actions
from agents.roles.payouts import withdrawals
from agents.roles.situation import Action, Situation


def decide(situation: Situation) -> list[Action]:
    """Timeouts, settlements and withdrawals of the submitter's own tasks."""
    own = {i: v for i, v in situation.tasks.items() if situation.is_me(v.submitter)}
    mine = dataclasses.replace(situation, tasks=own)
    return [*deadline_actions(mine), *withdrawals(mine)]
