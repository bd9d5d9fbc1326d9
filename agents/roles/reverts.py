"""Which reverts hold for good: what a failed transaction says about sending it again.

The journal keeps the reason of every transaction that reverted, on chain or at gas
estimation (``TransactionJournal.failures``): the pool's custom error as the executor decoded
it, ``WrongSeed(taskId=1)`` or ``TaskPool.revealSeed reverted: WrongSeed(taskId=1)``. A
decision that would send the same call again asks ``lasting`` first: a lasting revert means
the call cannot succeed on the chain as the agent reads it, whatever it waits for (its seed is
not the committed one, the task is not its own, the window closed, the state moved on), so
the agent stops, until a reorg changes the task's events, and the runtime logs it as an error
once. Any other revert passes (the reveal mined in the claim's own
block, a record read before a reorg, out of gas, a node that refused the fee) and the call
is tried again.

Pure: strings only, so that a restarted agent, reading the same journal, decides the same.
"""

from __future__ import annotations

import re

from agents.roles.intents import IntentKey, IntentKeyError

# Custom errors of the pool (contracts/lib/Errors.sol) after which an action cannot succeed.
LASTING: dict[str, frozenset[str]] = {
    # revealSeed: the seed is not the committed one, the caller is not the task's solver, the
    # task is unknown, or its status moved on (the randomness drawn, the task settled) or the
    # seed window closed: neither comes back. RecordMismatch (a view read before a reorg) and
    # ClaimBlockOutOfReach (a reveal mined in the claim's own block) pass.
    "reveal-seed": frozenset(
        {"WrongSeed", "NotAuthorized", "UnknownTask", "WrongStatus", "DeadlinePassed"}
    ),
}
# The revert reason as the executor writes it, with or without the call before it.
_ERROR = re.compile(r"(?:^|reverted: )([A-Z][A-Za-z0-9_]*)\(")
# What the runtime logs, once, when an action's revert is lasting.
CONSEQUENCE: dict[str, str] = {
    "reveal-seed": (
        "the seed is not sent again unless the task's events change (a reorg): at the seed "
        "window's end the task settles SeedWithheld and the solver's stake is slashed"
    ),
}


def error_name(error: str | None) -> str | None:
    """The custom error a journaled revert reason names (``None``: none, or not a revert)."""
    if not error:
        return None
    found = _ERROR.search(error)
    return found.group(1) if found else None


def lasting(key: str, error: str | None) -> bool:
    """Whether the transaction of intent ``key`` failed with ``error`` for good: sending the
    call again cannot succeed. Only actions listed in ``LASTING`` are judged; for the others
    the executor's own retry rules apply."""
    try:
        action = IntentKey.parse(key).action
    except IntentKeyError:
        return False
    return error_name(error) in LASTING.get(action, frozenset())
