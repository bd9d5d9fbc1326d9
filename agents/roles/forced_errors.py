"""The verifier's forced-error secrets (PROTOCOL.md §1.8): derived from its key, never stored.

At claim time a verifier commits ``keccak256(secret)``; after the fact
``hash(secret, later blockhash) < p·2^256`` tells whether it was forced to err, and
revealing the secret proves it. Deriving the secret from the key makes a restarted
verifier commit and reveal the same one.
"""

from __future__ import annotations

import hashlib
import hmac

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from agents.commitment import Digest


def forced_error_secret(account: LocalAccount, pool: str, task_id: int, rnd: int) -> bytes:
    """The verifier's forced-error secret for (task, round), derived from its key.

    Deterministic, so a restarted verifier commits and (later) reveals the same
    secret without storing it: HMAC-SHA256(key, "veritrain/forced-error-secret" ‖
    pool ‖ task id ‖ round). The chain gets ``keccak256(secret)``.
    """
    message = (
        b"veritrain/forced-error-secret"
        + bytes.fromhex(pool[2:])
        + task_id.to_bytes(32, "big")
        + rnd.to_bytes(32, "big")
    )
    return hmac.new(bytes(account.key), message, hashlib.sha256).digest()


def secret_hash(account: LocalAccount, pool: str, task_id: int, rnd: int) -> Digest:
    """``keccak256`` of the secret: what ``claimVerification`` commits to."""
    return Digest(keccak(forced_error_secret(account, pool, task_id, rnd)))
