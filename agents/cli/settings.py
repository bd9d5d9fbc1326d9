"""Command-line options shared by every command that talks to the chain, and how they resolve.

The configuration file is ``--config``, else ``$VERITRAIN_CONFIG``, else the
role's file in the devnet directory (``.devnet/<role>.toml``) when one exists.
Flags override environment variables, which override the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import click

from agents.devnet.lifecycle import devnet_dir
from agents.errors import ConfigError
from agents.node.config import AgentConfig, load_config

F = TypeVar("F", bound=Callable[..., Any])

# Flag name -> setting it overrides.
FLAGS = {
    "rpc_url": "chain.rpc_url",
    "deployment": "chain.deployment",
    "data_dir": "agent.data_dir",
    "store": "store.location",
    "metrics_port": "agent.metrics_port",
    "log_format": "agent.log_format",
}


def chain_options(func: F) -> F:
    """Add ``--config``, ``--set`` and the flags of :data:`FLAGS` to a command."""
    options = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path, dir_okay=False),
            help="TOML configuration file (default: $VERITRAIN_CONFIG, else .devnet/<role>.toml).",
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="SECTION.NAME=VALUE",
            help="Override one setting (repeatable).",
        ),
        click.option("--rpc-url", help="JSON-RPC endpoint of the chain."),
        click.option(
            "--deployment", type=click.Path(path_type=Path), help="Deployment manifest (JSON)."
        ),
        click.option(
            "--data-dir", type=click.Path(path_type=Path), help="The agent's data directory."
        ),
        click.option("--store", help="Artifact store: a directory or a Kubo RPC URL."),
        click.option("--metrics-port", type=int, help="Serve Prometheus metrics on this port."),
        click.option("--log-format", type=click.Choice(["logfmt", "json"]), help="Log lines."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def resolve_config(
    role: str, config_path: Path | None, overrides: tuple[str, ...], **flags: Any
) -> AgentConfig:
    """The effective configuration of ``role`` (see the module docstring)."""
    path = config_path
    if path is None and os.environ.get("VERITRAIN_CONFIG"):
        path = Path(os.environ["VERITRAIN_CONFIG"])
    if path is None:
        candidate = devnet_dir() / f"{role}.toml"
        if candidate.is_file():
            path = candidate
    values = {FLAGS[name]: value for name, value in flags.items() if name in FLAGS}
    if isinstance(values.get("chain.deployment"), Path):
        values["chain.deployment"] = str(values["chain.deployment"])
    if isinstance(values.get("agent.data_dir"), Path):
        values["agent.data_dir"] = str(values["agent.data_dir"])
    return load_config(path, overrides=overrides, flags=values)


_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(wei|gwei|eth|ether)?\s*$", re.IGNORECASE)
_UNITS = {"wei": 1, "gwei": 10**9, "eth": 10**18, "ether": 10**18}


def parse_amount(text: str) -> int:
    """Wei from ``1.5eth``, ``20gwei``, ``1000wei`` or a bare integer (wei)."""
    match = _AMOUNT.match(text)
    if match is None:
        raise ConfigError(f"amount {text!r}: expected a number with a unit, like 1.5eth or 20gwei")
    number, unit = match.group(1), (match.group(2) or "wei").lower()
    try:
        wei = Decimal(number) * _UNITS[unit]
    except InvalidOperation:
        raise ConfigError(f"amount {text!r} is not a number") from None
    if wei != wei.to_integral_value():
        raise ConfigError(f"amount {text!r} is not a whole number of wei")
    return int(wei)


_DURATION = re.compile(r"^\s*([0-9]+)\s*(s|m|h|d)?\s*$")


def parse_duration(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``30m``, ``2h`` or ``1d``."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(f"duration {text!r}: expected a number with s, m, h or d, like 30m")
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2) or "s"]
    return int(match.group(1)) * factor


def format_eth(wei: int) -> str:
    """``1.5 ETH`` style (up to 6 decimals, trailing zeros dropped)."""
    text = f"{Decimal(wei) / 10**18:.6f}".rstrip("0").rstrip(".")
    return f"{text} ETH"
