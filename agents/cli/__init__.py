"""The ``veritrain`` command line.

Each protocol area adds one command group in a module of its own; this module
only assembles them. Errors a user can cause are reported as one line and a
non-zero exit status, without a traceback (set ``VERITRAIN_DEBUG=1`` for one).
"""

from __future__ import annotations

import os
import sys

import click

from agents import __version__
from agents.cli.agent import config, solver, verifier
from agents.cli.devnet import devnet
from agents.cli.market import cancel, submit, task, tasks, withdraw
from agents.cli.pol import pol
from agents.cli.store import store
from agents.errors import VeritrainError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="veritrain")
def cli() -> None:
    """veritrain: verifiable training compute on an EVM chain and IPFS."""


cli.add_command(store)
cli.add_command(pol)
for command in (submit, cancel, withdraw, tasks, task, solver, verifier, config, devnet):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="veritrain", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except VeritrainError as exc:
        if os.environ.get("VERITRAIN_DEBUG"):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("VERITRAIN_DEBUG"):
            raise
        click.echo(
            f"error: internal: {type(exc).__name__}: {exc} (VERITRAIN_DEBUG=1 shows where)",
            err=True,
        )
        sys.exit(1)
