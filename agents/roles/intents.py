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
``reveal-seed/<task>``     the solver's seed (it fixes the task's randomness)
``report/<task>/<round>``  a verifier's report
``reveal/<task>/<round>``  a verifier's secret, after the challenge window
``timeout/<task>/<status>/<round>``  moving a task on at a deadline
``withdraw/<task>[,<task>...]``  taking payouts (one task, or several at once)
``cancel/<task>``          a submitter's cancellation
``submit/<spec CID>/<nonce>``  a submission (the nonce tells two apart)
``train/<task>``, ``replay/<task>``  local jobs (``profile/<task>`` too)
``drift/<task>``           a solver's measurement of its own drift on the task
=========================  ==============================================
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
    "submit",
)
JOBS = ("train", "replay", "profile", "drift")
PARTS: dict[str, int] = {
    "claim": 1,
    "commit": 1,
    "profile": 1,
    "claim-verification": 2,
    "reveal-seed": 1,
    "report": 2,
    "reveal": 2,
    "timeout": 3,
    "withdraw": 1,
    "cancel": 1,
    "submit": 2,
    "train": 1,
    "replay": 1,
    "drift": 1,
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
        if self.action != "submit" and not tasks.match(self.parts[0]):
            raise IntentKeyError(f"{self.parts[0]!r} is not a task id")
        rounds = ("claim-verification", "report", "reveal", "timeout")
        if self.action in rounds and not self.parts[-1].isdigit():
            raise IntentKeyError(f"{self.parts[-1]!r} is not a round")

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
        if self.action == "submit":
            return ()
        return tuple(int(t) for t in self.parts[0].split(","))


def action_of(text: str) -> str:
    """The action of a key, or ``other`` for a string that is not one (metrics labels)."""
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


def reveal_seed(task_id: int) -> str:
    return _key("reveal-seed", task_id)


def report(task_id: int, rnd: int) -> str:
    return _key("report", task_id, rnd)


def reveal(task_id: int, rnd: int) -> str:
    return _key("reveal", task_id, rnd)


def timeout(task_id: int, status: str, rnd: int) -> str:
    return _key("timeout", task_id, status, rnd)


def withdraw(task_ids: Sequence[int]) -> str:
    if not task_ids:
        raise IntentKeyError("a withdrawal names at least one task")
    return _key("withdraw", ",".join(str(t) for t in task_ids))


def cancel(task_id: int) -> str:
    return _key("cancel", task_id)


def submit(spec_cid: str, nonce: int) -> str:
    return _key("submit", spec_cid, nonce)


# -- local jobs ----------------------------------------------------------------------------


def train(task_id: int) -> str:
    return _key("train", task_id)


def replay(task_id: int) -> str:
    return _key("replay", task_id)


def drift(task_id: int) -> str:
    """A solver's measurement of its own drift on a tolerant task, before it claims."""
    return _key("drift", task_id)
