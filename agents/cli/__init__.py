"""The ``veritrain`` command line.

Each protocol area adds one command group in a module of its own; this module
only assembles them. Errors a user can cause are reported as one line and a
non-zero exit status, without a traceback (set ``VERITRAIN_DEBUG=1`` for one).
Anything else is a bug: it is reported as ``error: internal: …`` with exit status
``INTERNAL_ERROR`` (70, sysexits' EX_SOFTWARE), which no command uses for anything
else, so that a script never mistakes a crash for an answer.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from agents import __version__
from agents.errors import VeritrainError

INTERNAL_ERROR = 70

# Command name -> "module:attribute". Modules are imported only when their
# command runs (or help lists it), so `veritrain store cid` does not pay for
# importing torch and web3.
COMMANDS: dict[str, str] = {
    "store": "agents.cli.store:store",
    "pol": "agents.cli.pol:pol",
    "submit": "agents.cli.market:submit",
    "cancel": "agents.cli.market:cancel",
    "withdraw": "agents.cli.market:withdraw",
    "tasks": "agents.cli.market:tasks",
    "task": "agents.cli.market:task",
    "solver": "agents.cli.agent:solver",
    "verifier": "agents.cli.agent:verifier",
    "whistleblower": "agents.cli.agent:whistleblower",
    "config": "agents.cli.agent:config",
    "key": "agents.cli.key:key",
    "devnet": "agents.cli.devnet:devnet",
    "arbiter": "agents.cli.arbiter:arbiter",
    "swarm": "agents.cli.swarm:swarm",
    "audit": "agents.cli.audit:audit",
    "dispute": "agents.cli.dispute:dispute",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="veritrain")
def cli() -> None:
    """veritrain: verifiable training compute on an EVM chain and IPFS."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        code = cli.main(args=argv, prog_name="veritrain", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
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
        sys.exit(INTERNAL_ERROR)
