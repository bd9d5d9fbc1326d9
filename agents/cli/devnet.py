"""``veritrain devnet up | status | down | demo``: a local market for developers."""

from __future__ import annotations

from pathlib import Path

import click

from agents.cli.output import echo_json
from agents.devnet import lifecycle
from agents.errors import ConfigError

dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Devnet directory (default: $VERITRAIN_DEVNET_DIR, else ./.devnet).",
)


@click.group()
def devnet() -> None:
    """A local devnet: anvil, the contracts, funded role accounts, an embedded store."""


@devnet.command()
@dir_option
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Deployment parameter, e.g. challengeWindow=10 (repeatable; fresh chains only).",
)
def up(directory: Path | None, params: tuple[str, ...]) -> None:
    """Start the devnet (or restart a stopped one with its chain) and write its configs."""
    parameters: dict[str, int] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ConfigError(f"--param {item!r}: expected NAME=INTEGER, e.g. challengeWindow=10")
        parameters[name.strip()] = int(value)
    lifecycle.up(lifecycle.devnet_dir(directory), parameters=parameters, say=click.echo)


@devnet.command()
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(directory: Path | None, as_json: bool) -> None:
    """Whether the devnet runs, where, and the role accounts' balances."""
    report = lifecycle.status(lifecycle.devnet_dir(directory))
    if as_json:
        echo_json(report)
        return
    state = "running" if report["running"] else "stopped"
    click.echo(f"devnet {state}: {report['url']} (chain {report['chain_id']}, pid {report['pid']})")
    if "block" in report:
        click.echo(f"  block     {report['block']}")
    click.echo(f"  manifest  {report['manifest']}")
    click.echo(f"  store     {report['store']}")
    for role, account in report["accounts"].items():
        balance = account.get("balance_wei")
        shown = f"  {balance / 10**18:.4f} ETH" if balance is not None else ""
        click.echo(f"  {role:9} {account['address']}{shown}  {report['configs'][role]}")


@devnet.command()
@dir_option
@click.option("--purge", is_flag=True, help="Also delete the directory (chain, keys, store).")
def down(directory: Path | None, purge: bool) -> None:
    """Stop the devnet; its chain is kept for the next `up` unless --purge."""
    path = lifecycle.devnet_dir(directory)
    stopped = lifecycle.down(path, purge=purge)
    click.echo(("stopped" if stopped else "not running") + (f"; {path} deleted" if purge else ""))


@devnet.command()
@click.option(
    "--cheat",
    is_flag=True,
    help="A cheating solver and a colluding verifier; a whistleblower challenges.",
)
@click.option(
    "--dispute",
    is_flag=True,
    help="A verifier reports Fail on an honest solver, who challenges.",
)
@click.option("--forced", is_flag=True, help="A forced error, caught by a whistleblower.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".demo"),
    show_default=True,
    help="Where the demo's devnet lives (recreated on every run).",
)
@click.option(
    "--spec",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Task spec (default: examples/digits-mlp.yaml).",
)
@click.option("--keep", is_flag=True, help="Leave the devnet running afterwards (for audits).")
def demo(
    cheat: bool, dispute: bool, forced: bool, directory: Path, spec: Path | None, keep: bool
) -> None:
    """One whole round by real agents in separate processes; exits non-zero on any deviation."""
    from agents.devnet.demo import run_demo

    chosen = [
        name for name, on in (("cheat", cheat), ("dispute", dispute), ("forced", forced)) if on
    ]
    if len(chosen) > 1:
        raise click.UsageError("choose one of --cheat, --dispute, --forced")
    scenario = chosen[0] if chosen else "honest"
    run_demo(directory.resolve(), scenario=scenario, spec=spec, keep=keep)
