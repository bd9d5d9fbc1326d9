"""The two committed shares of a task's randomness, and forced errors (PROTOCOL.md §1.6, §1.8).

Both secrets are derived from the agent's key, never stored, so a restarted agent commits
and later reveals the same ones:

- the solver's **seed** (``seed``): it commits ``keccak256(seed)`` with its proof and reveals
  the seed once a verifier has claimed;
- the verifier's **secret** (``forced_error_secret``): it commits ``keccak256(secret)`` when it
  claims (that hash is also its share of the randomness) and reveals the secret after the
  challenge window when its report may be forced.

The randomness is ``keccak256(abi.encode(seed, secretHash, taskId))``; whether the verifier is
forced to err is ``agents.rules.forced_error`` (its secret, the randomness and the hash of the
block that holds its claim, which nobody knows when the claim is sent), and it seals its true
trace roots as ``keccak256(abi.encode(secret, keccak256(abi.encode(roots))))`` (``seal``). These
are the contracts' rules (docs/contracts.md), written once in ``agents.rules`` and checked
against the chain in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from eth_account.signers.local import LocalAccount

from agents import rules
from agents.commitment import Digest, Root


def _derive(account: LocalAccount, label: bytes, pool: str, task_id: int, rnd: int) -> bytes:
    message = label + bytes.fromhex(pool[2:]) + task_id.to_bytes(32, "big")
    message += rnd.to_bytes(32, "big")
    return hmac.new(bytes(account.key), message, hashlib.sha256).digest()


def forced_error_secret(account: LocalAccount, pool: str, task_id: int, rnd: int) -> bytes:
    """The verifier's secret for (task, verification round), derived from its key:
    HMAC-SHA256(key, "veritrain/forced-error-secret" ‖ pool ‖ u256 task id ‖ u256 round)."""
    return _derive(account, b"veritrain/forced-error-secret", pool, task_id, rnd)


def secret_hash(account: LocalAccount, pool: str, task_id: int, rnd: int) -> Digest:
    """``keccak256`` of the secret: what ``claimVerification`` commits to."""
    return commitment(forced_error_secret(account, pool, task_id, rnd))


def seed(account: LocalAccount, pool: str, task_id: int) -> bytes:
    """The solver's seed for a task, derived from its key:
    HMAC-SHA256(key, "veritrain/randomness-seed" ‖ pool ‖ u256 task id ‖ u256 0)."""
    return _derive(account, b"veritrain/randomness-seed", pool, task_id, 0)


def commitment(value: bytes) -> Digest:
    """``keccak256(abi.encode(value))`` of a 32-byte value: a seed's or a secret's hash
    (``agents.rules.commitment``)."""
    return Digest(rules.commitment(value))


def randomness(seed_value: bytes, verifier_secret_hash: bytes, task_id: int) -> Digest:
    """The task's randomness: ``keccak256(abi.encode(seed, secretHash, taskId))``
    (``agents.rules.randomness``)."""
    return Digest(rules.randomness(seed_value, verifier_secret_hash, task_id))


def roots_hash(roots: Sequence[Root]) -> bytes:
    """``keccak256(abi.encode(roots))`` of a list of trace roots (``agents.rules.roots_hash``)."""
    return rules.roots_hash(roots)


def seal(secret: bytes, roots: Sequence[Root]) -> Digest:
    """Trace roots sealed with the verifier's secret:
    ``keccak256(abi.encode(secret, keccak256(abi.encode(roots))))`` (``agents.rules.seal``)."""
    return Digest(rules.seal(secret, roots))


def forced_roots(true_roots: Sequence[Root], secret: bytes) -> tuple[Root, ...]:
    """The trace roots a forced verifier reports: its true ones with one of them, chosen by
    its secret (so no segment is safe to skip for a checker), replaced by another value;
    derived so that a restarted verifier reports the same."""
    if not true_roots:
        return ()
    index = secret[0] % len(true_roots)
    wrong = Root(hashlib.sha256(b"veritrain/forced-error" + bytes(true_roots[index])).digest())
    return (*true_roots[:index], wrong, *true_roots[index + 1 :])
