"""The task pool's rules in Python, written from docs/contracts.md rather than from the Solidity.

Off-chain parties use these to predict what the chain will do (the demo checks its balances
with them, the contract tests use them as the reference model): the enums of
contracts/lib/Types.sol, the amounts that follow from a bounty, the payouts of every
outcome, forced errors, the commitments and the randomness, and the task record's hash
chain. The money, forced-error, commitment and record rules (which events fold) are the
agents' own (``agents.rules``, which the audit and the verifier use too), re-exported here: one
copy of each rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from agents.audit.record import record_of
from agents.rules import AWARD_CAP_DIVISOR as AWARD_CAP_DIVISOR
from agents.rules import BPS as BPS
from agents.rules import FOLDED_EVENTS as FOLDED_EVENTS
from agents.rules import Amounts as Amounts
from agents.rules import Flag as Flag
from agents.rules import Outcome as Outcome
from agents.rules import Payouts as Payouts
from agents.rules import Role as Role
from agents.rules import commitment as commitment
from agents.rules import fold_record as fold_record
from agents.rules import forced_below as forced_below
from agents.rules import forced_error as forced_error
from agents.rules import forced_error_award as forced_error_award
from agents.rules import payouts as payouts
from agents.rules import randomness as randomness
from agents.rules import roots_hash as roots_hash
from agents.rules import seal as seal

# What a solver commits, keccak256(abi.encode(seed)), and what a verifier commits,
# keccak256(abi.encode(secret)): one rule, ``agents.rules.commitment``.
seed_hash = commitment
secret_hash = commitment
# A verifier's true trace roots sealed with its secret:
# keccak256(abi.encode(secret, keccak256(abi.encode(traceRoots)))).
sealed_roots = seal


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


class Verdict(IntEnum):
    """``Verdict`` in Types.sol."""

    NONE = 0
    PASS = 1
    FAIL = 2


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


def record_from_logs(
    logs: list[dict[str, Any]], topic0_of: dict[str, bytes], task_id: int
) -> bytes:
    """Rebuild ``task_id``'s record from raw logs (``topics`` and ``data`` as in ``eth_getLogs``,
    hex or bytes), as the audit does (``agents.audit.record.record_of``).

    ``topic0_of`` maps the folded event names to their topic0; other logs are skipped.
    """
    return record_of(logs, {topic0_of[name] for name in FOLDED_EVENTS}, task_id)
