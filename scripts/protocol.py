"""The task pool's rules in Python, written from docs/contracts.md rather than from the Solidity.

Off-chain parties use these to predict what the chain will do (the demo checks its balances
with them, the contract tests use them as the reference model): the enums of
contracts/lib/Types.sol, the amounts that follow from a bounty, the payouts of every
outcome, and the task record's hash chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils.crypto import keccak

BPS = 10_000
# Events whose topics and data enter the task record, in the order they can occur.
FOLDED_EVENTS = (
    "TaskSubmitted",
    "TaskProfiled",
    "ProofCommitted",
    "VerificationClaimed",
    "RandomnessDrawn",
    "VerificationReported",
    "VerificationRevealed",
)


class Status(IntEnum):
    """``Status`` in Types.sol."""

    NONE = 0
    SUBMITTED = 1
    OPEN = 2
    TRAINING = 3
    COMMITTED = 4
    VERIFYING = 5
    CHALLENGE_WINDOW = 6
    DISPUTED = 7
    SETTLED = 8


class Mode(IntEnum):
    """``Mode`` in Types.sol."""

    EXACT = 0
    TOLERANT = 1


class Outcome(IntEnum):
    """``Outcome`` in Types.sol."""

    NONE = 0
    PASSED = 1
    FAILED = 2
    CANCELLED = 3
    EXPIRED = 4
    SOLVER_TIMED_OUT = 5
    UNVERIFIED = 6
    SEED_WITHHELD = 7


class Verdict(IntEnum):
    """``Verdict`` in Types.sol."""

    NONE = 0
    PASS = 1
    FAIL = 2


class Flag(IntEnum):
    """Bits of ``Task.flags``."""

    RANDOMNESS = 1
    FORCEABLE = 2
    FORFEITED = 4
    DEFEATED = 8
    PROOF_FAILED = 16
    VOID = 32
    SLASH_AWARDED = 64
    STAKE_TAKEN = 128


class Role(IntEnum):
    """Bits of ``Task.withdrawn``."""

    SUBMITTER = 1
    SOLVER = 2
    VERIFIER = 4
    PROFILER = 8


@dataclass(frozen=True)
class Amounts:
    """What follows from one bounty under a deployment's parameters, in wei (``amounts()``)."""

    bounty: int
    protocol_fee: int
    verification_fee: int
    profile_fee: int
    solver_stake: int
    verifier_stake: int
    profiler_stake: int
    profile_rejection_fee: int
    forced_error_tax: int = 0

    @classmethod
    def of(cls, bounty: int, parameters: Any) -> Amounts:
        """Fractions of the bounty, rounded down; ``parameters`` has the ``Params`` field names."""

        def part(bps: int) -> int:
            return bounty * bps // BPS

        return cls(
            bounty=bounty,
            protocol_fee=part(parameters.protocolFeeBps),
            verification_fee=part(parameters.verificationFeeBps),
            profile_fee=part(parameters.profileFeeBps),
            solver_stake=part(parameters.solverStakeBps),
            verifier_stake=part(parameters.verifierStakeBps),
            profiler_stake=part(parameters.profilerStakeBps),
            # Parameter sets that predate the profile review (payout tables) have no such fee.
            profile_rejection_fee=part(getattr(parameters, "profileRejectionFeeBps", 0)),
            # Charged only by a pool that forces errors; parameter sets without it charge none.
            forced_error_tax=part(getattr(parameters, "forcedErrorTaxBps", 0))
            if getattr(parameters, "forcedErrorPpm", 0)
            else 0,
        )


@dataclass(frozen=True)
class Payouts:
    """What a settled task pays each party and the jackpot, in wei."""

    submitter: int = 0
    solver: int = 0
    verifier: int = 0
    profiler: int = 0
    jackpot: int = 0

    def total(self) -> int:
        """Everything the settlement distributes."""
        return self.submitter + self.solver + self.verifier + self.profiler + self.jackpot

    def for_role(self, role: Role) -> int:
        """The payout of one role."""
        return {
            Role.SUBMITTER: self.submitter,
            Role.SOLVER: self.solver,
            Role.VERIFIER: self.verifier,
            Role.PROFILER: self.profiler,
        }[role]


def payouts(
    outcome: Outcome,
    amounts: Amounts,
    profiled: bool,
    parameters: Any,
    forfeited: bool = False,
    flags: int = 0,
    taxed: bool = False,
) -> Payouts:
    """The settlement table of docs/contracts.md ("Settlement").

    ``forfeited``: the verifier did not reveal its secret in time (or revealed a forced report it
    did not falsify): its fee and stake go to the jackpot. ``flags`` (``Task.flags``) after
    challenges: ``VOID`` (the report lost and its verifier was slashed: no verifier is paid and
    its fee stays with the bounty), ``STAKE_TAKEN`` (the verifier's stake was credited back before
    settlement: it gets its fee only), ``SLASH_AWARDED`` (the jackpot's part of a failed
    solver's stake was credited to the challenger that won against the proof);
    ``FORFEITED`` in ``flags`` is the same as ``forfeited``. ``taxed``: the verifier made the
    task's first verification claim (``Task.rounds == 1``), the one report that may be forced: a
    verifier paid for it pays the forced-error tax out of its payout to the jackpot.
    """
    forfeited = forfeited or bool(flags & Flag.FORFEITED)
    void = bool(flags & Flag.VOID)
    accepted = outcome not in (Outcome.CANCELLED, Outcome.EXPIRED)
    profile_fee = amounts.profile_fee if profiled and accepted else 0
    profiler = profile_fee + amounts.profiler_stake if profiled else 0
    stake = amounts.solver_stake
    to_submitter = stake * parameters.slashToSubmitterBps // BPS
    fee = 0 if void else amounts.verification_fee
    verifier = 0 if void else fee + (0 if flags & Flag.STAKE_TAKEN else amounts.verifier_stake)
    paid, lost = (0, verifier) if forfeited else (verifier, 0)
    if taxed and paid:
        # The tax is at most the fee: the stake always comes back whole.
        paid, lost = paid - amounts.forced_error_tax, amounts.forced_error_tax
    if outcome == Outcome.PASSED:
        return Payouts(
            solver=amounts.bounty - fee - profile_fee + stake,
            verifier=paid,
            profiler=profiler,
            jackpot=lost,
        )
    if outcome == Outcome.FAILED:
        slashed = 0 if flags & Flag.SLASH_AWARDED else stake - to_submitter
        return Payouts(
            submitter=amounts.bounty - fee - profile_fee + to_submitter,
            verifier=paid,
            profiler=profiler,
            jackpot=lost + slashed,
        )
    if outcome in (Outcome.SOLVER_TIMED_OUT, Outcome.SEED_WITHHELD):
        return Payouts(
            submitter=amounts.bounty - profile_fee + to_submitter,
            verifier=amounts.verifier_stake if outcome == Outcome.SEED_WITHHELD else 0,
            profiler=profiler,
            jackpot=stake - to_submitter,
        )
    if outcome == Outcome.UNVERIFIED:
        return Payouts(submitter=amounts.bounty - profile_fee, solver=stake, profiler=profiler)
    if outcome in (Outcome.CANCELLED, Outcome.EXPIRED):
        return Payouts(submitter=amounts.bounty, profiler=profiler)
    raise ValueError(f"no settlement for outcome {outcome!r}")


@dataclass(frozen=True)
class Rejection:
    """What ``rejectProfile`` moves, in wei: the submitter pays ``fee`` with the call."""

    profiler: int  # credited to the rejected profiler: its stake back, nothing more
    jackpot: int  # accrued to the jackpot: the rejection fee
    fee: int  # paid by the submitter


def profile_rejection(amounts: Amounts) -> Rejection:
    """A rejected profile (docs/contracts.md, "The submitter's review of a profile"): the
    profiler gets its stake back and is paid nothing (a profiler is paid only when a task
    completes with its τ); the submitter's rejection fee goes to the jackpot."""
    fee = amounts.profile_rejection_fee
    return Rejection(profiler=amounts.profiler_stake, jackpot=fee, fee=fee)


def seed_hash(seed: bytes) -> bytes:
    """What a solver commits: keccak256(abi.encode(seed))."""
    return keccak(bytes(seed).rjust(32, b"\0"))


def secret_hash(secret: bytes) -> bytes:
    """What a verifier commits: keccak256(abi.encode(secret))."""
    return keccak(bytes(secret).rjust(32, b"\0"))


def roots_hash(trace_roots: list[bytes]) -> bytes:
    """``keccak256(abi.encode(traceRoots))`` of a list of 32-byte trace roots."""
    encoded = (32).to_bytes(32, "big") + len(trace_roots).to_bytes(32, "big")
    return keccak(encoded + b"".join(bytes(r).rjust(32, b"\0") for r in trace_roots))


def sealed_roots(secret: bytes, trace_roots: list[bytes]) -> bytes:
    """A verifier's true trace roots sealed with its secret.

    ``keccak256(abi.encode(secret, keccak256(abi.encode(traceRoots))))``.
    """
    return keccak(bytes(secret).rjust(32, b"\0") + roots_hash(trace_roots))


def randomness(seed: bytes, verifier_secret_hash: bytes, task_id: int) -> bytes:
    """The task's randomness: keccak256(abi.encode(seed, secretHash, taskId))."""
    return keccak(
        bytes(seed).rjust(32, b"\0")
        + bytes(verifier_secret_hash).rjust(32, b"\0")
        + task_id.to_bytes(32, "big")
    )


def forced_below(forced_error_ppm: int) -> int:
    """A verifier is forced iff keccak256(abi.encode(secret, keccak256(abi.encode(randomness,
    claimBlockHash)))) is below this."""
    return ((2**256 - 1) // 1_000_000) * forced_error_ppm


def forced_error(
    secret: bytes, task_randomness: bytes, claim_block_hash: bytes, forced_error_ppm: int
) -> bool:
    """Whether a verifier with ``secret`` must err on a task with ``task_randomness``, its claim
    mined in the block whose hash is ``claim_block_hash`` (``RandomnessDrawn.claimBlockHash``).

    (It applies only to a verifier that claimed before the randomness existed.) A zero hash (the
    seed was revealed more than 256 blocks after the claim, where the chain no longer gives the
    claim block's hash) forces nobody.
    """
    if not any(claim_block_hash):
        return False
    drawn = keccak(
        bytes(task_randomness).rjust(32, b"\0") + bytes(claim_block_hash).rjust(32, b"\0")
    )
    word = keccak(bytes(secret).rjust(32, b"\0") + drawn)
    return int.from_bytes(word, "big") < forced_below(forced_error_ppm)


def fold_record(record: bytes, topics: list[bytes], data: bytes) -> bytes:
    """One step of the task record.

    ``keccak256(record ‖ topic0 ‖ topic1 [‖ topic2] ‖ keccak256(data))``: the event's topics as
    logged, then the hash of its data.
    """
    return keccak(bytes(record) + b"".join(bytes(t) for t in topics) + keccak(bytes(data)))


def record_from_logs(logs: list[dict[str, Any]], topic0_of: dict[str, bytes]) -> bytes:
    """Rebuild a task's record from its raw logs (``topics`` and ``data`` as in ``eth_getLogs``).

    ``topic0_of`` maps the folded event names to their topic0; other logs are skipped.
    """
    folded = {topic0_of[name] for name in FOLDED_EVENTS}
    record = bytes(32)
    for log in logs:
        topics = [bytes(t) for t in log["topics"]]
        if topics and topics[0] in folded:
            record = fold_record(record, topics, bytes(log["data"]))
    return record


AWARD_CAP_DIVISOR = 3  # Jackpot.AWARD_CAP_DIVISOR: an award takes at most a third of the reserve


def forced_error_award(amounts: Amounts, reserve: int, catchers: int) -> int:
    """What the jackpot awards each recipient for one forced error that was erred
    (docs/contracts.md, "Forced errors"): one award of ``min(verifier stake, reserve // 3)``
    (``reserve``: the jackpot's, after the pool swept what it had accrued), split evenly among
    the ``catchers`` (the winners of the challenges on forced roots), or paid whole to the
    verifier when there are none."""
    award = min(amounts.verifier_stake, reserve // AWARD_CAP_DIVISOR)
    return award // catchers if catchers else award
