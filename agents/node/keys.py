"""The agent's signing key: an encrypted keystore file, or an environment variable on devnets.

Keys never come from the command line (it ends up in shell history and in
``ps``). A keystore (Ethereum's "Web3 Secret Storage" JSON, as written by
eth-account, geth or Foundry's ``cast wallet``) is decrypted with a password
read from the file ``key.password_file`` or from ``VERITRAIN_KEY_PASSWORD``.
``VERITRAIN_PRIVATE_KEY`` (hex) is accepted only on devnet chain ids, where
keys are public anyway.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agents.errors import VeritrainError
from agents.node.config import KeySettings

PASSWORD_ENV = "VERITRAIN_KEY_PASSWORD"
PRIVATE_KEY_ENV = "VERITRAIN_PRIVATE_KEY"
# anvil/hardhat (31337) and geth --dev / ganache (1337).
DEVNET_CHAIN_IDS = frozenset({31337, 1337})


class KeyLoadError(VeritrainError):
    """The signing key cannot be loaded."""


def load_account(
    settings: KeySettings, chain_id: int, env: Mapping[str, str] | None = None
) -> LocalAccount:
    """The account to sign with, per the module docstring; raises :class:`KeyLoadError`."""
    env = os.environ if env is None else env
    if settings.keystore is not None:
        return _from_keystore(settings.keystore, _password(settings, env))
    raw = env.get(PRIVATE_KEY_ENV)
    if raw:
        if chain_id not in DEVNET_CHAIN_IDS:
            raise KeyLoadError(
                f"{PRIVATE_KEY_ENV} is accepted on devnets only (chain id "
                f"{sorted(DEVNET_CHAIN_IDS)}), this is chain id {chain_id}: use a keystore"
            )
        try:
            account: LocalAccount = Account.from_key(raw.strip())
        except (ValueError, TypeError) as exc:
            raise KeyLoadError(f"{PRIVATE_KEY_ENV} is not a valid private key: {exc}") from None
        return account
    raise KeyLoadError(
        "no signing key: set key.keystore (with key.password_file or "
        f"{PASSWORD_ENV}), or {PRIVATE_KEY_ENV} on a devnet"
    )


def _password(settings: KeySettings, env: Mapping[str, str]) -> str:
    if settings.password_file is not None:
        try:
            return settings.password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise KeyLoadError(
                f"password file {settings.password_file} cannot be read: {exc.strerror}"
            ) from None
    password = env.get(PASSWORD_ENV)
    if password is None:
        raise KeyLoadError(
            f"keystore {settings.keystore} needs a password: "
            f"set key.password_file or {PASSWORD_ENV}"
        )
    return password


def _from_keystore(path: Path, password: str) -> LocalAccount:
    try:
        keystore = json.loads(path.read_text())
    except FileNotFoundError:
        raise KeyLoadError(f"keystore {path} does not exist") from None
    except OSError as exc:
        raise KeyLoadError(f"keystore {path} cannot be read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise KeyLoadError(f"keystore {path} is not a JSON keystore file") from None
    if not isinstance(keystore, dict) or "crypto" not in {k.lower() for k in keystore}:
        raise KeyLoadError(f"keystore {path} is not a JSON keystore file (no crypto section)")
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as exc:
        if "MAC" in str(exc):
            raise KeyLoadError(f"wrong password for keystore {path}") from None
        raise KeyLoadError(f"keystore {path} cannot be decrypted: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise KeyLoadError(f"keystore {path} is malformed (missing {exc})") from None
    account: LocalAccount = Account.from_key(key)
    return account


def write_keystore(
    path: Path, password: str, *, private_key: str | bytes | None = None, light: bool = False
) -> str:
    """Create a keystore file for a new (or the given) key; returns its address.

    ``light`` uses a cheap key derivation (pbkdf2, 2^14 rounds) for devnet keys
    whose starting time matters more than their secrecy; otherwise scrypt with
    eth-account's defaults. The file is created with mode 0600 and never overwritten.
    """
    account = Account.from_key(private_key) if private_key is not None else Account.create()
    if light:
        keystore = Account.encrypt(account.key, password, kdf="pbkdf2", iterations=2**14)
    else:
        keystore = Account.encrypt(account.key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyLoadError(f"keystore {path} exists already; not overwriting it") from None
    with os.fdopen(fd, "w") as out:
        json.dump(keystore, out)
    return str(account.address)
