"""Which reverts hold for good: what a failed transaction says about sending it again.

The journal keeps the reason of every transaction that reverted, on chain or at gas
estimation (``TransactionJournal.failures``): the pool's custom error as the executor decoded
it, ``WrongSeed(taskId=1)`` or ``TaskPool.revealSeed reverted: WrongSeed(taskId=1)``. A
decision that would send the same call again asks ``lasting`` first: a lasting revert means
the call cannot succeed on the chain as the agent reads it, whatever it waits for (its seed is
not the committed one, the task is not its own, the window closed, the state moved on), so
the agent stops, until a reorg changes the task's events, and the runtime logs it as an error
once. A revert mined on chain is judged at once. A rejection at gas estimation (nothing spent)
never holds, even one that reads as lasting: it is only the word of the node that estimated,
which may be behind the view the decision read (an endpoint that spreads calls over several
nodes, a reorg back to a block of the same number) or lying (a ``WrongSeed`` made up, so that
the solver never reveals and is slashed). It is tried again, after the executor's capped
backoff, for as long as the decision asks for it: until the agent's own view says the reveal is
done, pointless or too late. Any other revert passes (the reveal mined in the claim's own
block, a record read before a reorg, out of gas, a node that refused the fee) and the call is
tried again.

Pure: strings only, so that a restarted agent, reading the same journal, decides the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from agents.chain.journal import IN_FLIGHT, Failure
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
    # revealVerification: the secret or the seal is not the committed one, the caller is not
    # the verifier, the report cannot be forced, the task moved on or the reveal window
    # closed. ChallengesOpen (a challenge opened meanwhile: the reveal waits for it),
    # DeadlineNotReached and RecordMismatch pass.
    "reveal": frozenset(
        {
            "WrongSecret",
            "WrongSeal",
            "NotAuthorized",
            "NothingToReveal",
            "UnknownTask",
            "WrongStatus",
            "DeadlinePassed",
        }
    ),
}
# Transactions of one reveal that may revert on chain for a passing reason before the agent
# stops paying for more (a call reverts on chain only when the chain changed after its
# estimation, or it ran out of gas).
MAX_TRIES = 8
# The revert reason as the executor writes it, with or without the call before it.
_ERROR = re.compile(r"(?:^|reverted: )([A-Z][A-Za-z0-9_]*)\(")
# What the runtime logs, once, when an action's revert is lasting.
CONSEQUENCE: dict[str, str] = {
    "reveal-seed": (
        "the seed is not sent again unless the task's events change (a reorg): at the seed "
        "window's end the task settles SeedWithheld and the solver's stake is slashed"
    ),
    "reveal": (
        "the secret is not sent again unless the task's events change (a reorg): at the reveal "
        "window's end the report that may be forced settles as forfeited"
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


def holds(key: str, status: str | None, failure: Failure) -> bool:
    """Whether the failure of intent ``key`` (journal status ``status``) is a verdict: a
    lasting revert mined on chain. A rejection at estimation never holds: it costs nothing,
    and a node behind the agent's view, or one that lies, gives it too."""
    return status != "rejected" and lasting(key, failure.error)


def looks_lasting(key: str, status: str | None, failure: Failure) -> bool:
    """A rejection at estimation with an error that would hold had it been mined: tried again
    all the same (``holds``), but worth saying loudly, since it may well be the chain's truth."""
    return status == "rejected" and lasting(key, failure.error)


def next_try(
    journal: Mapping[str, str],
    failures: Mapping[str, Failure],
    key_of: Callable[[int], str],
    answering: int | None,
) -> str | None:
    """The key of the try of a call to send now (``key_of(n)``: the n-th try's intent key), or
    ``None``: a try is in flight or mined, the last one failed for good (``holds``) on the
    task's present events (``answering``: the block of the event the decision answers), or
    ``MAX_TRIES`` tries reverted. A try rejected at estimation is sent again under its own key
    (the executor waits its backoff), however many times, unless it holds; one that reverted
    on chain, or failed for good on events a reorg has since moved, is followed by the next."""
    for attempt in range(MAX_TRIES):
        key = key_of(attempt)
        status = journal.get(key)
        if status in (*IN_FLIGHT, "mined"):
            return None
        failure = failures.get(key)
        if (
            failure is not None
            and failure.trigger_block == answering
            and holds(key, status, failure)
        ):
            return None  # refused for good, as the task stands
        if status is None or status == "rejected":
            return key
    return None
