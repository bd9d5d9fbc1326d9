"""Keys of decisions: one grammar for the intent of every transaction and every local job.

A key names a decision so that it is made once: the journal refuses a second
transaction for an intent key, and the work table runs one job per work key. Keys
are built and parsed here only:

    key     = action "/" part ("/" part)*
    action  = one of ACTIONS (transactions) or JOBS (local work)
    part    = 1*( ALPHA / DIGIT / "-" / "," )

with the parts each action takes (``PARTS``):

=========================  ==============================================
``claim/<task>``           a solver's claim
``commit/<task>``          a solver's commitment of its proof
``profile/<task>``         a profiler's threshold (and its profiling job)
``claim-verification/<task>/<round>``  a verifier's claim of one round
``reveal-seed/<task>/<try>``  the solver's seed (it fixes the task's randomness); a try whose
                           transaction reverted for a passing reason is followed by the next
``report/<task>/<round>``  a verifier's report
``reveal/<task>/<round>/<try>``  a verifier's secret, after the challenge window (tries as
                           for the seed)
``timeout/<task>/<status>/<round>``  moving a task on at a deadline
``withdraw/<task>[,<task>...]``  taking payouts (one task, or several at once)
``cancel/<task>``          a submitter's cancellation
``review/<task>/<profile>``  a submitter's acceptance or rejection of the task's n-th profile
``submit/<spec CID>/<nonce>``  a submission (the nonce tells two apart)
``train/<task>``, ``replay/<task>``  local jobs (``profile/<task>`` too)
``drift/<task>``           a solver's measurement of its own drift on the task
``challenge/<task>/<round>/<segment>``  a challenge of a report's (or proof's) segment
``answer/<task>/<challenge>``  the solver's answer to a challenge of its proof
``resolve/<task>/<challenge>``  applying the end of a challenge
``withdraw-credit/<count>``  taking the pool's credit (won slashes, deposits back)
``withdraw-award/<count>``  taking the jackpot's awards (forced errors caught)
``publish/<task>/<round>``  a published start state against the fault report of a round
``recheck/<task>/<round>``  a re-check of a report (a whistleblower's or a solver's replay)
``opening/<task>/<segment>``  this agent's trace of a segment and a game's opening over it
``publication/<task>/<segment>``  a checkpoint of this agent's proof, read to be published
=========================  ==============================================

Moves of the pinpoint game have keys of their own (``game/<game>/…``,
``agents.dispute.decisions``); ``action_of`` labels them ``game``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

ACTIONS = (
    "claim",
    "commit",
    "profile",
    "claim-verification",
    "reveal-seed",
    "report",
    "reveal",
    "timeout",
    "withdraw",
    "cancel",
    "review",
    "submit",
    "challenge",
    "answer",
    "resolve",
    "withdraw-credit",
    "withdraw-award",
    "publish",
)
JOBS = ("train", "replay", "profile", "drift", "recheck", "opening", "publication")
PARTS: dict[str, int] = {
    "claim": 1,
    "commit": 1,
    "profile": 1,
    "claim-verification": 2,
    "reveal-seed": 2,
    "report": 2,
    "reveal": 3,
    "timeout": 3,
    "withdraw": 1,
    "cancel": 1,
    "review": 2,
    "submit": 2,
    "train": 1,
    "replay": 1,
    "drift": 1,
    "challenge": 3,
    "recheck": 2,
    "opening": 2,
    "answer": 2,
    "resolve": 2,
    "withdraw-credit": 1,
    "withdraw-award": 1,
    "publish": 2,
    "publication": 2,
}
_PART = re.compile(r"^[A-Za-z0-9,-]+$")
_TASK = re.compile(r"^[0-9]+$")
_TASKS = re.compile(r"^[0-9]+(,[0-9]+)*$")


class IntentKeyError(ValueError):
    """A string that is not a key of this grammar."""


@dataclass(frozen=True)
class IntentKey:
    """A parsed key: its action and its parts (strings, as written)."""

    action: str
    parts: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.action not in PARTS:
            raise IntentKeyError(f"unknown action {self.action!r}")
        if len(self.parts) != PARTS[self.action]:
            raise IntentKeyError(
                f"{self.action} keys have {PARTS[self.action]} parts, got {len(self.parts)}"
            )
        for part in self.parts:
            if not _PART.match(part):
                raise IntentKeyError(f"{part!r} is not a key part")
        tasks = _TASKS if self.action == "withdraw" else _TASK
        untasked = ("submit", "withdraw-credit", "withdraw-award")
        if self.action not in untasked and not tasks.match(self.parts[0]):
            raise IntentKeyError(f"{self.parts[0]!r} is not a task id")
        rounds = ("claim-verification", "report", "reveal", "timeout", "recheck", "publish")
        if self.action in rounds and not self.parts[-1].isdigit():
            raise IntentKeyError(f"{self.parts[-1]!r} is not a round")
        numbers = (
            "reveal-seed",
            "reveal",
            "challenge",
            "answer",
            "resolve",
            "withdraw-credit",
            "withdraw-award",
            "opening",
            "publication",
        )
        if self.action in numbers and not all(_TASK.match(p) for p in self.parts):
            raise IntentKeyError(f"{self.action} keys are numbers, got {'/'.join(self.parts)!r}")

    def __str__(self) -> str:
        return "/".join((self.action, *self.parts))

    @classmethod
    def parse(cls, text: str) -> IntentKey:
        """The key ``text`` spells; ``IntentKeyError`` if it is not one."""
        action, *parts = text.split("/")
        return cls(action, tuple(parts))

    @property
    def task_ids(self) -> tuple[int, ...]:
        """The tasks the key is about (none for a submission)."""
        if self.action in ("submit", "withdraw-credit", "withdraw-award"):
            return ()
        return tuple(int(t) for t in self.parts[0].split(","))


def action_of(text: str) -> str:
    """The action of a key, ``game`` for a move of the pinpoint game, or ``other`` for a
    string that is neither (metrics labels)."""
    if text.startswith("game/"):
        return "game"
    try:
        return IntentKey.parse(text).action
    except IntentKeyError:
        return "other"


def _key(action: str, *parts: object) -> str:
    return str(IntentKey(action, tuple(str(p) for p in parts)))


# -- transactions --------------------------------------------------------------------------


def claim(task_id: int) -> str:
    return _key("claim", task_id)


def commit(task_id: int) -> str:
    return _key("commit", task_id)


def profile(task_id: int) -> str:
    """The profiler's ``profile`` transaction, and its profiling job."""
    return _key("profile", task_id)


def claim_verification(task_id: int, rnd: int) -> str:
    return _key("claim-verification", task_id, rnd)


def reveal_seed(task_id: int, attempt: int = 0) -> str:
    """The ``attempt``-th try of the solver's seed (a try is one transaction: a later one is
    sent only once the one before reverted, agents.roles.reverts)."""
    return _key("reveal-seed", task_id, attempt)


def report(task_id: int, rnd: int) -> str:
    return _key("report", task_id, rnd)


def reveal(task_id: int, rnd: int, attempt: int = 0) -> str:
    """The ``attempt``-th try of a verifier's reveal of round ``rnd`` (as ``reveal_seed``)."""
    return _key("reveal", task_id, rnd, attempt)


def timeout(task_id: int, status: str, rnd: int) -> str:
    return _key("timeout", task_id, status, rnd)


def withdraw(task_ids: Sequence[int]) -> str:
    if not task_ids:
        raise IntentKeyError("a withdrawal names at least one task")
    return _key("withdraw", ",".join(str(t) for t in task_ids))


def cancel(task_id: int) -> str:
    return _key("cancel", task_id)


def review(task_id: int, profile: int) -> str:
    """The submitter's decision on the task's ``profile``-th profile (accept or reject)."""
    return _key("review", task_id, profile)


def submit(spec_cid: str, nonce: int) -> str:
    return _key("submit", spec_cid, nonce)


def challenge(task_id: int, rnd: int, segment: int) -> str:
    """A challenge of segment ``segment`` of the report of verification round ``rnd``."""
    return _key("challenge", task_id, rnd, segment)


def answer(task_id: int, challenge_id: int) -> str:
    """The solver's answer to a challenge of its proof."""
    return _key("answer", task_id, challenge_id)


def resolve(task_id: int, challenge_id: int) -> str:
    """Applying the end of a challenge (its game's ruling, or an unanswered deadline)."""
    return _key("resolve", task_id, challenge_id)


def withdraw_award(count: int) -> str:
    """Taking the jackpot's awards, once ``count`` awards to this account were seen."""
    return _key("withdraw-award", count)


def withdraw_credit(count: int) -> str:
    """Taking the pool's credit, the ``count``-th time (withdrawals seen so far)."""
    return _key("withdraw-credit", count)


# -- local jobs ----------------------------------------------------------------------------


def train(task_id: int) -> str:
    return _key("train", task_id)


def replay(task_id: int) -> str:
    return _key("replay", task_id)


def drift(task_id: int) -> str:
    """A solver's measurement of its own drift on a tolerant task, before it claims."""
    return _key("drift", task_id)


def recheck(task_id: int, rnd: int) -> str:
    """A replay of the report of verification round ``rnd`` by someone other than its verifier."""
    return _key("recheck", task_id, rnd)


def opening(task_id: int, segment: int) -> str:
    """This agent's trace of ``segment`` and the opening of a game over it (a local job)."""
    return _key("opening", task_id, segment)


def publish(task_id: int, rnd: int) -> str:
    """The start state published against the fault report of verification round ``rnd``."""
    return _key("publish", task_id, rnd)


def publication(task_id: int, segment: int) -> str:
    """Checkpoint ``segment`` of this agent's proof, read to be published (a local job)."""
    return _key("publication", task_id, segment)
