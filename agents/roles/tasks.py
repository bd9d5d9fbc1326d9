"""Tasks as agents see them: a view of each task folded from the pool's events alone.

The contracts emit every fact an observer needs (CIDs as strings, roots,
deadlines, randomness, verdicts, payouts), so a task's whole state and history
is ``fold(events)``. Folding is pure and deterministic: the same events give
the same view on every machine, which is also what ``veritrain task show``
prints.

The enum orders below are the contracts' (``contracts/lib/Types.sol``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agents.chain.abi import DecodedLog
from agents.commitment import Digest, Root

STATUSES = (
    "None",
    "Submitted",
    "Open",
    "Training",
    "Committed",
    "Verifying",
    "ChallengeWindow",
    "Disputed",
    "Settled",
)
MODES = ("exact", "tolerant")
OUTCOMES = (
    "None",
    "Passed",
    "Failed",
    "Cancelled",
    "Expired",
    "SolverTimedOut",
    "Unverified",
    "SeedWithheld",
)
VERDICTS = ("None", "Pass", "Fail")
CLAIMS = ("None", "Report", "Proof")  # what a challenge disputes
CHALLENGE_STATES = ("None", "Answering", "Playing", "Upheld", "Rejected")
# States in which a deadline is running and a timeout (or settle) moves the task on.
WAITING = ("Submitted", "Open", "Training", "Committed", "Verifying", "ChallengeWindow")
ROLES = ("submitter", "solver", "verifier", "profiler")


@dataclass(frozen=True)
class TimelineEntry:
    """One event of a task's history."""

    block: int
    log_index: int
    name: str
    args: dict[str, Any]
    tx_hash: str


@dataclass
class ChallengeView:
    """One challenge of the task's report or proof (``ChallengeOpened`` and what followed)."""

    challenge_id: int
    challenger: str
    claim: str  # "Report" | "Proof"
    segment: int
    position: int
    defender_trace: Root
    challenger_trace: Root
    game: int  # 0 while a proof challenge waits for the solver's answer
    deadline: int  # the solver's answer deadline (proof challenges)
    round: int  # the verification round it was opened in
    state: str = "Playing"  # one of CHALLENGE_STATES
    ruling: int = 0

    @property
    def open(self) -> bool:
        return self.state in ("Answering", "Playing")


@dataclass
class TaskView:
    """Everything the events say about one task."""

    task_id: int
    status: str = "None"
    mode: str = "exact"
    submitter: str | None = None
    bounty: int = 0
    protocol_fee: int = 0
    spec_cid: str | None = None
    spec_hash: Digest | None = None
    program_root: Root | None = None
    segments: int = 0  # S: fixed at submission
    sampled_segments: int = 0  # s: random segments a verification samples
    threshold_bound: int = 0  # the largest τ the submitter accepts (binary32 bits)
    training_window: int = 0
    deadline: int = 0
    profiler: str | None = None
    threshold: int = 0  # binary32 bit pattern of τ (0 in exact mode)
    profile_cid: str | None = None
    profiler_stake: int = 0
    # Until when the submitter may reject the current profile (0: accepted, or none posted);
    # solvers claim after it or once it is accepted. Profiles posted so far (rejected ones too).
    review_deadline: int = 0
    profiles: int = 0
    # Profiles the submitter rejected: (profiler, amount credited: its stake back).
    rejected_profiles: list[tuple[str, int]] = field(default_factory=list)
    solver: str | None = None
    solver_stake: int = 0
    proof_cid: str | None = None
    checkpoint_root: Root | None = None
    seed_hash: Digest | None = None
    randomness: Digest | None = None
    seed: Digest | None = None
    # The block that holds the current verifier's claim, and (once the seed is revealed) its hash,
    # which decides with the secret and the randomness whether a first verifier is forced to err.
    claim_block: int = 0
    claim_block_hash: Digest | None = None
    verifier: str | None = None
    secret_hash: Digest | None = None
    verifier_stake: int = 0
    # Verification rounds: a silent verifier's timeout reopens verification for another one.
    verification_round: int = 0
    # The current verifier claimed before the randomness existed: its report may be a forced
    # error, and is settled only once it reveals its secret (or forfeits).
    forceable: bool = False
    distances: list[int] = field(default_factory=list)
    extra_segments: list[int] = field(default_factory=list)
    extra_distances: list[int] = field(default_factory=list)
    trace_roots: list[Root] = field(default_factory=list)
    sealed_roots: Digest | None = None
    verdict: str = "None"
    # The current report rests on a fault record (``reportFault``): no game is played on it;
    # it is disputed by publishing a sampled segment's start state (``publishState``).
    fault_report: bool = False
    # Start states published against fault reports: (publisher, verifier, segment, refunded).
    publications: list[tuple[str, str, int, int]] = field(default_factory=list)
    revealed: bool = False  # the verifier revealed its secret
    forced: bool = False  # ... and it had been forced to err
    outcome: str = "None"
    payouts: dict[str, int] = field(default_factory=dict)
    withdrawn: dict[str, int] = field(default_factory=dict)  # account -> amount
    penalised: list[tuple[str, int]] = field(default_factory=list)  # (account, slashed)
    # Challenges of the task's reports and proof, by id (every round's).
    challenges: dict[int, ChallengeView] = field(default_factory=dict)
    # A report that lost a challenge (its verifier slashed to ``winner``), a proof that lost one,
    # forced errors caught: (account, amount) credited by each.
    defeats: list[tuple[str, str, int]] = field(default_factory=list)  # (verifier, winner, slashed)
    proof_failed: bool = False
    awards: list[tuple[str, int]] = field(default_factory=list)  # (account, amount) credited
    # Forced-error awards: (catcher, or the verifier of one nobody caught, amount) the jackpot
    # awarded (Jackpot.withdraw pays them).
    jackpot_awards: list[tuple[str, int]] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.status == "Settled"

    def parties(self) -> dict[str, str]:
        """Role -> account for every role somebody holds in this task."""
        out = {}
        for role in ROLES:
            account = getattr(self, role)
            if account is not None:
                out[role] = account
        return out

    def roles_of(self, account: str) -> list[str]:
        """The roles ``account`` holds in this task."""
        wanted = account.lower()
        return [r for r, a in self.parties().items() if a.lower() == wanted]

    def due_to(self, account: str) -> int:
        """What a settled task still owes ``account`` (settlement payouts less withdrawals)."""
        if not self.final:
            return 0
        total = sum(self.payouts.get(role, 0) for role in self.roles_of(account))
        taken = sum(v for a, v in self.withdrawn.items() if a.lower() == account.lower())
        return max(0, total - taken)

    def has_withdrawn(self, account: str) -> bool:
        return any(a.lower() == account.lower() for a in self.withdrawn)


def fold(task_id: int, events: Iterable[DecodedLog]) -> TaskView:
    """The view of task ``task_id`` after ``events`` (its events, in chain order)."""
    view = TaskView(task_id)
    for event in sorted(events, key=lambda e: (e.block_number, e.log_index)):
        apply(view, event)
    return view


def apply(view: TaskView, event: DecodedLog) -> None:
    """Update ``view`` with one event; events of other tasks or unknown names are ignored."""
    a = event.args
    if int(a.get("taskId", -1)) != view.task_id:
        return
    handler = _HANDLERS.get(event.name)
    if handler is None:
        return
    handler(view, a)
    view.timeline.append(
        TimelineEntry(event.block_number, event.log_index, event.name, dict(a), event.tx_hash)
    )


def _submitted(v: TaskView, a: dict[str, Any]) -> None:
    v.mode = MODES[int(a["mode"])]
    v.status = "Open" if v.mode == "exact" else "Submitted"
    v.submitter = a["submitter"]
    v.bounty = int(a["bounty"])
    v.protocol_fee = int(a["protocolFee"])
    v.spec_hash = Digest.parse(a["specHash"])
    v.program_root = Root.parse(a["programRoot"])
    v.segments = int(a["segments"])
    v.sampled_segments = int(a["sampledSegments"])
    v.threshold_bound = int(a["thresholdBound"])
    v.spec_cid = a["specCid"]
    v.training_window = int(a["trainingWindow"])
    v.deadline = int(a["deadline"])


def _profiled(v: TaskView, a: dict[str, Any]) -> None:
    v.status = "Open"
    v.profiler = a["profiler"]
    v.threshold = int(a["threshold"])
    v.profile_cid = a["profileCid"]
    v.profiler_stake = int(a["stake"])
    v.deadline = int(a["deadline"])
    v.review_deadline = int(a.get("reviewDeadline", 0))
    v.profiles += 1


def _profile_accepted(v: TaskView, a: dict[str, Any]) -> None:
    v.review_deadline = 0
    v.deadline = int(a["deadline"])


def _profile_rejected(v: TaskView, a: dict[str, Any]) -> None:
    v.status = "Submitted"
    v.rejected_profiles.append((str(a["profiler"]), int(a["refund"])))
    v.profiler = None
    v.threshold = 0
    v.profile_cid = None
    v.profiler_stake = 0
    v.review_deadline = 0
    v.deadline = int(a["deadline"])


def _claimed(v: TaskView, a: dict[str, Any]) -> None:
    v.status = "Training"
    v.solver = a["solver"]
    v.solver_stake = int(a["stake"])
    v.deadline = int(a["deadline"])


def _committed(v: TaskView, a: dict[str, Any]) -> None:
    v.status = "Committed"
    v.proof_cid = a["proofCid"]
    v.checkpoint_root = Root.parse(a["checkpointRoot"])
    v.seed_hash = Digest.parse(a["seedHash"])
    v.deadline = int(a["deadline"])


def _verification_claimed(v: TaskView, a: dict[str, Any]) -> None:
    v.status = "Verifying"
    v.fault_report = False
    v.verifier = a["verifier"]
    v.secret_hash = Digest.parse(a["secretHash"])
    v.verifier_stake = int(a["stake"])
    v.forceable = v.randomness is None
    v.deadline = int(a["deadline"])
    v.claim_block = int(a["claimBlock"])


def _randomness(v: TaskView, a: dict[str, Any]) -> None:
    v.randomness = Digest.parse(a["randomness"])
    v.seed = Digest.parse(a["seed"])
    v.deadline = int(a["deadline"])
    v.claim_block_hash = Digest.parse(a["claimBlockHash"])
    # A seed revealed past the claim block's reach draws no hash: that claim is not forceable.
    v.forceable = v.forceable and any(bytes(v.claim_block_hash))


def _reported(v: TaskView, a: dict[str, Any]) -> None:
    v.status = "ChallengeWindow"
    v.distances = [int(d) for d in a["distances"]]
    v.extra_segments = [int(d) for d in a["extraSegments"]]
    v.extra_distances = [int(d) for d in a["extraDistances"]]
    v.trace_roots = [Root.parse(r) for r in a["traceRoots"]]
    v.sealed_roots = Digest.parse(a["sealedTraceRoots"])
    v.verdict = VERDICTS[int(a["verdict"])]
    v.deadline = int(a["challengeDeadline"])


def _fault_reported(v: TaskView, a: dict[str, Any]) -> None:
    v.fault_report = True


def _state_published(v: TaskView, a: dict[str, Any]) -> None:
    # The fault report is void; its verifier is credited its stake (ReportDefeated and
    # VerificationReopened, or TaskSettled Unverified in the last round, follow in the same
    # transaction unless a challenge is still open).
    verifier, refunded = str(a["verifier"]), int(a["refunded"])
    v.publications.append((str(a["publisher"]), verifier, int(a["segment"]), refunded))
    if refunded:
        v.awards.append((verifier, refunded))


def _revealed(v: TaskView, a: dict[str, Any]) -> None:
    v.revealed = True
    v.forceable = False
    v.forced = bool(a["forced"])
    v.trace_roots = [Root.parse(r) for r in a["traceRoots"]]
    if int(a["challengeDeadline"]):
        v.deadline = int(a["challengeDeadline"])  # a forced report's true root: open again


def _challenge_opened(v: TaskView, a: dict[str, Any]) -> None:
    challenge_id = int(a["challengeId"])
    claim = CLAIMS[int(a["claim"])]
    game = int(a["game"])
    v.challenges[challenge_id] = ChallengeView(
        challenge_id=challenge_id,
        challenger=str(a["challenger"]),
        claim=claim,
        segment=int(a["segment"]),
        position=int(a["position"]),
        defender_trace=Root.parse(a["defenderTrace"]),
        challenger_trace=Root.parse(a["challengerTrace"]),
        game=game,
        deadline=int(a["deadline"]),
        round=v.verification_round,
        state="Playing" if game else "Answering",
    )


def _challenge_answered(v: TaskView, a: dict[str, Any]) -> None:
    challenge = v.challenges.get(int(a["challengeId"]))
    if challenge is not None:
        challenge.game = int(a["game"])
        challenge.defender_trace = Root.parse(a["solverTrace"])
        challenge.state = "Playing"


def _challenge_resolved(v: TaskView, a: dict[str, Any]) -> None:
    challenge = v.challenges.get(int(a["challengeId"]))
    if challenge is not None:
        challenge.state = CHALLENGE_STATES[int(a["state"])]
        challenge.ruling = int(a["ruling"])
    if int(a.get("deadline", 0)):
        v.deadline = int(a["deadline"])  # the task's deadline once its challenges are over


def _reveal_scheduled(v: TaskView, a: dict[str, Any]) -> None:
    # The report's last challenge ended: the reveal window follows this deadline (it restarts
    # when the challenges outlasted the challenge window).
    v.deadline = int(a["challengeDeadline"])


def _report_defeated(v: TaskView, a: dict[str, Any]) -> None:
    v.defeats.append((str(a["verifier"]), str(a["winner"]), int(a["slashed"])))
    if int(str(a["winner"]), 16):
        v.awards.append((str(a["winner"]), int(a["slashed"])))


def _proof_failed(v: TaskView, a: dict[str, Any]) -> None:
    v.proof_failed = True
    if int(str(a["winner"]), 16):
        v.awards.append((str(a["winner"]), int(a["award"])))


def _forced_caught(v: TaskView, a: dict[str, Any]) -> None:
    for catcher in a["catchers"]:
        v.awards.append((str(catcher), int(a["award"])))
        v.jackpot_awards.append((str(catcher), int(a["award"])))


def _forced_uncaught(v: TaskView, a: dict[str, Any]) -> None:
    # Nobody caught the forced error: its verifier gets the award (when the reserve had any).
    if int(a["award"]):
        v.awards.append((str(a["verifier"]), int(a["award"])))
        v.jackpot_awards.append((str(a["verifier"]), int(a["award"])))


def _cancelled(v: TaskView, a: dict[str, Any]) -> None:
    pass  # TaskSettled follows in the same transaction


def _timed_out(v: TaskView, a: dict[str, Any]) -> None:
    slashed = int(a["slashed"])
    penalised = str(a["penalised"])
    if slashed or int(penalised, 16):
        v.penalised.append((penalised, slashed))


def _reopened(v: TaskView, a: dict[str, Any]) -> None:
    v.status = "Committed"
    v.fault_report = False
    v.verifier = None
    v.secret_hash = None
    v.verifier_stake = 0
    v.forceable = False
    v.verification_round += 1
    v.deadline = int(a["deadline"])


def _settled(v: TaskView, a: dict[str, Any]) -> None:
    v.status = "Settled"
    v.outcome = OUTCOMES[int(a["outcome"])]
    v.payouts = {
        "submitter": int(a["toSubmitter"]),
        "solver": int(a["toSolver"]),
        "verifier": int(a["toVerifier"]),
        "profiler": int(a["toProfiler"]),
        "jackpot": int(a["toJackpot"]),
    }


def _withdrawn(v: TaskView, a: dict[str, Any]) -> None:
    account = str(a["account"])
    v.withdrawn[account] = v.withdrawn.get(account, 0) + int(a["amount"])


_HANDLERS = {
    "TaskSubmitted": _submitted,
    "TaskProfiled": _profiled,
    "ProfileAccepted": _profile_accepted,
    "ProfileRejected": _profile_rejected,
    "TaskClaimed": _claimed,
    "ProofCommitted": _committed,
    "VerificationClaimed": _verification_claimed,
    "RandomnessDrawn": _randomness,
    "VerificationReported": _reported,
    "VerificationRevealed": _revealed,
    "TaskCancelled": _cancelled,
    "TaskTimedOut": _timed_out,
    "VerificationReopened": _reopened,
    "TaskSettled": _settled,
    "PayoutWithdrawn": _withdrawn,
    "ChallengeOpened": _challenge_opened,
    "ChallengeAnswered": _challenge_answered,
    "ChallengeResolved": _challenge_resolved,
    "ReportDefeated": _report_defeated,
    "ProofFailed": _proof_failed,
    "ForcedErrorCaught": _forced_caught,
    "ForcedErrorUncaught": _forced_uncaught,
    "RevealScheduled": _reveal_scheduled,
    "FaultReported": _fault_reported,
    "StatePublished": _state_published,
}
TASK_EVENTS = tuple(_HANDLERS)


def task_subject(event: DecodedLog) -> int | None:
    """The task an event is about (the event source's subject index)."""
    value = event.args.get("taskId")
    return int(value) if value is not None else None


def fold_all(events: Iterable[DecodedLog]) -> dict[int, TaskView]:
    """Views of every task that appears in ``events``."""
    by_task: dict[int, list[DecodedLog]] = {}
    for event in events:
        subject = task_subject(event)
        if subject is not None:
            by_task.setdefault(subject, []).append(event)
    return {task_id: fold(task_id, evs) for task_id, evs in sorted(by_task.items())}
