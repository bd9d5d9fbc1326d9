"""The task pool's money and forced-error rules in Python, written from docs/contracts.md rather
than from the Solidity, once for every off-chain party.

The agents decide with them (a verifier computes whether it is forced), the audit holds the
chain to them (what a settled task must pay), and the scripts, the contract tests and the
benchmarks use them as the reference model of the pool (``scripts.protocol`` re-exports them):
the outcomes and flags of contracts/lib/Types.sol, the amounts that follow from a bounty, the
payouts of every outcome with the forced-error tax, the task record's fold, the hashes a
solver and a verifier commit and the randomness they draw (``agents.roles.shares`` derives the
shares and wraps these), whether a verifier is forced, and the jackpot's award for a forced
error. Pure: hashing and integers only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any

from eth_utils.crypto import keccak

BPS = 10_000
PPM = 1_000_000
# The pool reads the claim block's hash when the seed is revealed; the chain gives the hashes of
# the last 256 blocks only, and a seed revealed later draws a zero hash (the claim not forceable).
CLAIM_BLOCK_REACH = 256
# The longest ``seedRevealWindow`` a pool accepts (TaskPoolBase.MAX_SEED_REVEAL_WINDOW): the claim
# block's reach in 12-second blocks, so that a solver cannot reveal out of reach by waiting alone.
MAX_SEED_REVEAL_WINDOW = CLAIM_BLOCK_REACH * 12
AWARD_CAP_DIVISOR = 3  # Jackpot.AWARD_CAP_DIVISOR: an award takes at most a third of the reserve


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


# Parameters that older parameter sets lack (payout tables that predate the profile review or
# forced errors): they count as zero. Every other one must be given.
_OPTIONAL_PARAMETERS = ("profileRejectionFeeBps", "forcedErrorTaxBps", "forcedErrorPpm")


def parameter(parameters: Any, name: str) -> int:
    """A deployment parameter by its ``Params`` field name, from a mapping (the manifest's
    parameters) or an object with those attributes (``ProtocolParameters``)."""
    optional = name in _OPTIONAL_PARAMETERS
    if isinstance(parameters, Mapping):
        return int(parameters.get(name, 0) if optional else parameters[name])
    return int(getattr(parameters, name, 0) if optional else getattr(parameters, name))


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
        """Fractions of the bounty, rounded down (``parameters`` as :func:`parameter` reads
        them). The forced-error tax is charged only by a pool that forces errors."""

        def part(name: str) -> int:
            return bounty * parameter(parameters, name) // BPS

        return cls(
            bounty=bounty,
            protocol_fee=part("protocolFeeBps"),
            verification_fee=part("verificationFeeBps"),
            profile_fee=part("profileFeeBps"),
            solver_stake=part("solverStakeBps"),
            verifier_stake=part("verifierStakeBps"),
            profiler_stake=part("profilerStakeBps"),
            profile_rejection_fee=part("profileRejectionFeeBps"),
            forced_error_tax=part("forcedErrorTaxBps")
            if parameter(parameters, "forcedErrorPpm")
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
    """The settlement table of docs/contracts.md ("Settlement"); they always add up to the
    bounty plus every stake still locked at settlement.

    ``forfeited``: the verifier did not reveal its secret in time (or revealed a forced report it
    did not falsify): its fee and stake go to the jackpot. ``flags`` (``Task.flags``) after
    challenges: ``VOID`` (the report lost and its verifier was slashed: no verifier is paid and
    its fee stays with the bounty), ``STAKE_TAKEN`` (the verifier's stake was credited back before
    settlement: it gets its fee only), ``SLASH_AWARDED`` (the jackpot's part of a failed
    solver's stake was credited to the challenger that won against the proof);
    ``FORFEITED`` in ``flags`` is the same as ``forfeited``. ``taxed``: the verifier made the
    task's first verification claim (``Task.rounds == 1``), the one report that may be forced
    (also when its seed came too late for it to be): a verifier paid for it pays the
    forced-error tax out of its payout to the jackpot. ``parameters`` gives
    ``slashToSubmitterBps`` (as :func:`parameter` reads it).
    """
    forfeited = forfeited or bool(flags & Flag.FORFEITED)
    void = bool(flags & Flag.VOID)
    accepted = outcome not in (Outcome.CANCELLED, Outcome.EXPIRED)
    profile_fee = amounts.profile_fee if profiled and accepted else 0
    profiler = profile_fee + amounts.profiler_stake if profiled else 0
    stake = amounts.solver_stake
    to_submitter = stake * parameter(parameters, "slashToSubmitterBps") // BPS
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
            # A verifier that waited for a withheld seed gets its stake back.
            verifier=amounts.verifier_stake if outcome == Outcome.SEED_WITHHELD else 0,
            profiler=profiler,
            jackpot=stake - to_submitter,
        )
    if outcome == Outcome.UNVERIFIED:
        return Payouts(submitter=amounts.bounty - profile_fee, solver=stake, profiler=profiler)
    if outcome in (Outcome.CANCELLED, Outcome.EXPIRED):
        return Payouts(submitter=amounts.bounty, profiler=profiler)
    raise ValueError(f"no settlement for outcome {outcome!r}")


def _word(value: bytes) -> bytes:
    """A 32-byte ABI word: the value, zero-filled on the left to 32 bytes."""
    value = bytes(value)
    if len(value) > 32:
        raise ValueError(f"{len(value)} bytes do not fit a 32-byte word")
    return value.rjust(32, b"\0")


def commitment(value: bytes) -> bytes:
    """``keccak256(abi.encode(value))`` of a 32-byte value: what the solver commits for its
    seed (``seedHash``) and a verifier for its secret (``secretHash``)."""
    return keccak(_word(value))


def randomness(seed: bytes, secret_hash: bytes, task_id: int) -> bytes:
    """The task's randomness: ``keccak256(abi.encode(seed, secretHash, taskId))``."""
    return keccak(_word(seed) + _word(secret_hash) + task_id.to_bytes(32, "big"))


def roots_hash(roots: Sequence[bytes]) -> bytes:
    """``keccak256(abi.encode(roots))`` of a ``bytes32[]`` of trace roots."""
    head = (32).to_bytes(32, "big") + len(roots).to_bytes(32, "big")
    return keccak(head + b"".join(_word(r) for r in roots))


def seal(secret: bytes, roots: Sequence[bytes]) -> bytes:
    """A verifier's true trace roots sealed with its secret (``sealedTraceRoots``):
    ``keccak256(abi.encode(secret, keccak256(abi.encode(roots))))``."""
    return keccak(_word(secret) + roots_hash(roots))


# The pool's events folded into a task's record (marked "Folded" in
# contracts/interfaces/ITaskPool.sol), in the order they can occur, each with the argument that
# names its party (the event's second indexed topic, after the task id).
FOLDED_PARTIES: Mapping[str, str] = MappingProxyType(
    {
        "TaskSubmitted": "submitter",
        "TaskProfiled": "profiler",
        "ProofCommitted": "solver",
        "VerificationClaimed": "verifier",
        "RandomnessDrawn": "solver",
        "VerificationReported": "verifier",
        "VerificationRevealed": "verifier",
    }
)
FOLDED_EVENTS = tuple(FOLDED_PARTIES)


def fold_record(record: bytes, topics: Iterable[bytes], data: bytes) -> bytes:
    """One step of a task's record (``Task.record``): ``keccak256(record ‖ topic0 ‖ topic1
    [‖ topic2] ‖ keccak256(data))``, the folded event's topics as logged, then its data's hash."""
    return keccak(bytes(record) + b"".join(bytes(t) for t in topics) + keccak(bytes(data)))


def forced_below(forced_error_ppm: int) -> int:
    """A verifier is forced iff keccak256(abi.encode(secret, keccak256(abi.encode(randomness,
    claimBlockHash)))) is below this: ``forcedErrorPpm`` units of ⌊(2^256 − 1) / 10^6⌋."""
    return ((2**256 - 1) // PPM) * forced_error_ppm


def forced_error(
    secret: bytes, task_randomness: bytes, claim_block_hash: bytes, forced_error_ppm: int
) -> bool:
    """Whether the verifier with ``secret`` must err (on a report that may be forced: the first
    verification claim of a task), its claim mined in the block whose hash is
    ``claim_block_hash`` (``RandomnessDrawn.claimBlockHash``):
    ``keccak256(abi.encode(secret, keccak256(abi.encode(randomness, claimBlockHash))))`` below
    ``p · 2^256``. A zero hash (the seed was revealed more than ``CLAIM_BLOCK_REACH`` blocks after
    the claim, where the chain no longer gives its block's hash: the claim is not forceable)
    forces nobody."""
    if not any(claim_block_hash):
        return False
    drawn = keccak(_word(task_randomness) + _word(claim_block_hash))
    word = keccak(_word(secret) + drawn)
    return int.from_bytes(word, "big") < forced_below(forced_error_ppm)


def forced_error_award(amounts: Amounts, reserve: int, catchers: int) -> int:
    """What the jackpot awards each recipient for one forced error that was erred
    (docs/contracts.md, "Forced errors"): one award of ``min(verifier stake, reserve // 3)``
    (``reserve``: the jackpot's, after the pool swept what it had accrued), split evenly among
    the ``catchers`` (the winners of the challenges on forced roots), or paid whole to the
    verifier when there are none."""
    award = min(amounts.verifier_stake, reserve // AWARD_CAP_DIVISOR)
    return award // catchers if catchers else award
