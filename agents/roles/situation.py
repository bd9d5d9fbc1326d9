"""What a decision function sees and what it may ask for.

A role's decision function is ``decide(situation, policy) -> list[Action]``:
plain data in, intended actions out, no I/O. The agent runtime builds the
situation (task views folded from events, the journal, local work, facts
about specs) and carries out the actions (transactions through the
executor, local work in a worker thread).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.chain.abi import ContractInterface
from agents.chain.executor import Intent
from agents.chain.journal import IN_FLIGHT, Failure
from agents.roles.games import GameRecord
from agents.roles.jobs import JobInputs, JobResult
from agents.roles.tasks import TaskView

BPS = 10_000
POOL = "TaskPool"
# The fields of the pool's ``Params`` struct, in order (contracts/lib/Types.sol).
PARAMS_FIELDS = (
    "protocolFeeBps",
    "verificationFeeBps",
    "profileFeeBps",
    "profileRejectionFeeBps",
    "solverStakeBps",
    "verifierStakeBps",
    "profilerStakeBps",
    "slashToSubmitterBps",
    "profileWindow",
    "profileReviewWindow",
    "claimWindow",
    "maxTrainingWindow",
    "verifierClaimWindow",
    "seedRevealWindow",
    "verifyWindow",
    "challengeWindow",
    "revealWindow",
    "minSampledSegments",
    "maxVerificationRounds",
    "forcedErrorPpm",
    "forcedErrorTaxBps",
    "maxThreshold",
    "minBounty",
)


@dataclass(frozen=True)
class PoolParameters:
    """The pool's deployment parameters that decisions need (``TaskPool.parameters()``)."""

    solver_stake_bps: int
    verifier_stake_bps: int
    profiler_stake_bps: int
    min_sampled_segments: int = 1
    forced_error_ppm: int = 0
    reveal_window: int = 0
    max_threshold: int = 0x3F800000  # binary32 bits (1.0)
    min_bounty: int = 0
    # The bond a challenge of a report or a proof pays (the game's first bond).
    challenge_bond: int = 0
    # What a submitter pays the profiler whose profile it rejects.
    profile_rejection_fee_bps: int = 0
    # Verification claims a task accepts (a report voided in the last one settles the task
    # Unverified).
    max_verification_rounds: int = 1

    def solver_stake(self, bounty: int) -> int:
        return bounty * self.solver_stake_bps // BPS

    def verifier_stake(self, bounty: int) -> int:
        return bounty * self.verifier_stake_bps // BPS

    def profiler_stake(self, bounty: int) -> int:
        return bounty * self.profiler_stake_bps // BPS

    def profile_rejection_fee(self, bounty: int) -> int:
        return bounty * self.profile_rejection_fee_bps // BPS

    @staticmethod
    def sample_count(segments: int, sampled: int) -> int:
        """Distances a report carries before its extra segments: ``min(S, s + 2)``."""
        return min(segments, sampled + 2)

    @classmethod
    def from_chain(cls, params: list[Any] | dict[str, Any]) -> PoolParameters:
        """From the decoded ``parameters()`` struct (field order of ``Params`` in Types.sol)."""
        if isinstance(params, dict):
            p = params
        else:
            names = PARAMS_FIELDS
            p = dict(zip(names, params, strict=True))
        return cls(
            solver_stake_bps=int(p["solverStakeBps"]),
            verifier_stake_bps=int(p["verifierStakeBps"]),
            profiler_stake_bps=int(p["profilerStakeBps"]),
            min_sampled_segments=int(p["minSampledSegments"]),
            forced_error_ppm=int(p["forcedErrorPpm"]),
            reveal_window=int(p["revealWindow"]),
            max_threshold=int(p["maxThreshold"]),
            min_bounty=int(p["minBounty"]),
            challenge_bond=int(p.get("challengeBond", 0)),
            profile_rejection_fee_bps=int(p.get("profileRejectionFeeBps", 0)),
            max_verification_rounds=int(p.get("maxVerificationRounds", 1)),
        )


@dataclass(frozen=True)
class SpecFacts:
    """What an agent learned about a task's spec before deciding to work on it."""

    ops: int = 0  # static operations of the whole training (per step × steps)
    steps: int = 0
    segments: int = 0
    exact: bool = True
    problem: str | None = None  # why the spec is unusable (unreadable, invalid, hash mismatch)


@dataclass(frozen=True)
class ProfileReview:
    """What a submitter found when it checked the profile ``profile_cid`` of its task: nothing
    wrong (``problem`` is ``None``: it accepts the profile) or why it rejects it."""

    profile_cid: str
    problem: str | None = None


@dataclass(frozen=True)
class WorkState:
    """Local work (training, replay, profiling) for one task, as the runtime tracks it."""

    key: str
    status: str  # "running" | "done" | "failed" | "interrupted"
    result: JobResult | None = None  # set when done
    error: str | None = None


@dataclass(frozen=True)
class Situation:
    """Everything a decision function may look at."""

    me: str
    # Chain time in seconds: the later of the latest block's timestamp and this machine's
    # clock, not rounded (a deadline passes as soon as a block could be mined past it).
    now: float
    head: int  # latest block number
    tasks: Mapping[int, TaskView]
    journal: Mapping[str, str]  # intent key -> journal status
    work: Mapping[str, WorkState]
    params: PoolParameters
    specs: Mapping[int, SpecFacts] = field(default_factory=dict)
    # Deadlines are acted on only this many seconds after they pass (fractions count).
    margin: float = 1.0
    # This agent's committed shares (agents.roles.shares), derived from its key: its seed as
    # the solver of a task, its forced-error secret as the verifier of (task, round).
    seed: Callable[[int], bytes] = field(default=lambda task: _dummy(b"seed", task, 0))
    secret: Callable[[int, int], bytes] = field(default=lambda task, rnd: _dummy(b"s", task, rnd))
    # The pool's ABI, to rebuild a task's record from its events (agents.roles.record).
    pool: ContractInterface | None = None
    # The pinpoint games this agent follows (agents.roles.games), by id.
    games: Mapping[int, GameRecord] = field(default_factory=dict)
    # What the pool holds for this account outside any task (won slashes, awards, deposits),
    # and how many times it withdrew that credit so far.
    credit: int = 0
    credit_withdrawals: int = 0
    # What the jackpot owes this account (awards for forced errors it caught).
    jackpot_owed: int = 0
    # Why a journaled transaction failed (reverted, rejected, dropped), and the block of the
    # event its decision answered, by intent key.
    failures: Mapping[str, Failure] = field(default_factory=dict)
    # The submitter's checks of its tasks' profiles under review, by task.
    profiles: Mapping[int, ProfileReview] = field(default_factory=dict)

    def is_me(self, account: str | None) -> bool:
        return account is not None and account.lower() == self.me.lower()

    def pending(self, key: str) -> bool:
        """Whether a transaction for ``key`` is in flight or already mined."""
        return self.journal.get(key) in (*IN_FLIGHT, "mined")

    def expired(self, view: TaskView) -> bool:
        """The deadline of the task's current state has passed (by ``margin``)."""
        return self.now > view.deadline + self.margin

    def in_time(self, view: TaskView, needed: float = 0) -> bool:
        """At least ``needed`` seconds (plus the margin) remain before the deadline."""
        return self.now + needed + self.margin <= view.deadline

    def under_review(self, view: TaskView) -> bool:
        """The task's profile may still be rejected by its submitter: solvers wait (claims
        revert until its review deadline has passed, by the margin, or it is accepted)."""
        if view.status != "Open" or view.mode != "tolerant" or not view.review_deadline:
            return False
        return self.now <= view.review_deadline + self.margin

    def must_reveal(self, view: TaskView) -> bool:
        """The task's report may be a forced error: it settles only once its verifier reveals
        its secret (or after the reveal window, forfeiting)."""
        return view.forceable and self.params.forced_error_ppm > 0

    def verdict_end(self, view: TaskView) -> float:
        """When a reported verdict may be settled: its deadline, plus the reveal window for a
        report that may be forced."""
        return view.deadline + (self.params.reveal_window if self.must_reveal(view) else 0)


def _dummy(label: bytes, task: int, rnd: int) -> bytes:
    """Stand-in shares for situations built without a key (decision tests)."""
    return hashlib.sha256(label + task.to_bytes(8, "big") + rnd.to_bytes(8, "big")).digest()


@dataclass(frozen=True)
class Send:
    """Send a transaction."""

    intent: Intent
    reason: str


@dataclass(frozen=True)
class Start:
    """Start (or resume) local work; its result comes back as a :class:`WorkState`."""

    key: str
    task_id: int
    inputs: JobInputs
    reason: str

    @property
    def kind(self) -> str:
        """``train``, ``replay`` or ``profile``."""
        return self.inputs.kind


Action = Send | Start


def trigger(view: TaskView) -> int | None:
    """The block of the latest event of the task: what a response reacts to."""
    return view.timeline[-1].block if view.timeline else None


def send(
    view: TaskView,
    key: str,
    function: str,
    args: tuple[Any, ...],
    reason: str,
    value: int = 0,
    *,
    persistent: bool = False,
) -> Send:
    """A :class:`Send` of ``TaskPool.function(args)`` about ``view``'s task (``persistent``:
    ``Intent.persistent``)."""
    return Send(
        Intent(
            key=key,
            contract=POOL,
            function=function,
            args=args,
            value=value,
            task_id=view.task_id,
            trigger_block=trigger(view),
            persistent=persistent,
        ),
        reason,
    )
