"""The committed shares (the solver's seed, the verifier's secret) and the forced errors."""

from __future__ import annotations

import hashlib
import hmac

from eth_account import Account
from eth_utils.crypto import keccak

from agents.roles.shares import forced_error_secret, secret_hash

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
OTHER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
POOL = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_the_secret_is_deterministic_and_independent_of_everything_else() -> None:
    account = Account.from_key(KEY)
    first = forced_error_secret(account, POOL, 7, 0)
    assert forced_error_secret(Account.from_key(KEY), POOL, 7, 0) == first  # a restart
    others = {
        forced_error_secret(account, POOL, 8, 0),
        forced_error_secret(account, POOL, 7, 1),
        forced_error_secret(account, "0x" + "11" * 20, 7, 0),
        forced_error_secret(Account.from_key(OTHER_KEY), POOL, 7, 0),
    }
    assert len(others) == 4 and first not in others


def test_the_secret_as_documented() -> None:
    # HMAC-SHA256(key, "veritrain/forced-error-secret" ‖ pool ‖ u256 task ‖ u256 round).
    message = (
        b"veritrain/forced-error-secret"
        + bytes.fromhex(POOL[2:])
        + (7).to_bytes(32, "big")
        + (2).to_bytes(32, "big")
    )
    want = hmac.new(bytes.fromhex(KEY[2:]), message, hashlib.sha256).digest()
    account = Account.from_key(KEY)
    assert forced_error_secret(account, POOL, 7, 2) == want
    assert bytes(secret_hash(account, POOL, 7, 2)) == keccak(want)
