"""``veritrain key new | address``: agents' encrypted keystores (never a key in a command line)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from agents.errors import ConfigError
from agents.node.config import KeySettings
from agents.node.keys import load_account, write_keystore


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"password file {password_file} cannot be read: {exc.strerror}"
            ) from None
    return str(click.prompt("keystore password", hide_input=True, confirmation_prompt=True))


@click.group()
def key() -> None:
    """Agent keys: encrypted keystore files (Web3 Secret Storage, scrypt)."""


@key.command("new")
@click.argument("keystore", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the password from this file (else it is asked for).",
)
def key_new(keystore: Path, password_file: Path | None) -> None:
    """Create KEYSTORE holding a new random key; print its address."""
    address = write_keystore(keystore, _password(password_file))
    click.echo(address)


@key.command("address")
@click.argument("keystore", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--password-file", type=click.Path(path_type=Path, dir_okay=False))
def key_address(keystore: Path, password_file: Path | None) -> None:
    """Print the address of KEYSTORE once its password opens it.

    The password comes from --password-file or $VERITRAIN_KEY_PASSWORD.
    """
    try:
        declared = json.loads(keystore.read_text()).get("address")
    except (OSError, ValueError, AttributeError):
        declared = None
    account = load_account(KeySettings(keystore=keystore, password_file=password_file), 0)
    if declared and declared.lower().removeprefix("0x") != account.address.lower()[2:]:
        raise ConfigError(
            f"keystore {keystore} declares address {declared}, holds {account.address}"
        )
    click.echo(account.address)
