"""brownie as a library: load the veritrain project and attach it to a running devnet.

brownie's own development network would launch anvil on port 8545; here the devnet
(``agents.devnet.anvil``) owns the process and brownie only attaches to it, so tests,
the demo and the benchmarks can run side by side on free ports.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

from agents.devnet.anvil import REPO_ROOT, Anvil, anvil_binary, start_anvil
from agents.errors import VeritrainError

SOLCX_DIR = REPO_ROOT / ".solcx"
NETWORK_ID = "veritrain-devnet"


class Endpoint(Protocol):
    """A running devnet: an ``agents.devnet.anvil.Anvil`` or anything with its address."""

    @property
    def url(self) -> str: ...

    @property
    def port(self) -> int: ...


class ToolchainError(VeritrainError):
    """The compiler adapter or the brownie project is not usable."""


def prepare_compiler() -> None:
    """Point py-solc-x at the project's solc-js adapter (``.solcx/``), never at a download.

    Raises ``ToolchainError`` when ``make setup`` has not created the adapter.
    """
    adapter = SOLCX_DIR / "solc-v0.8.28"
    if not adapter.is_file():
        raise ToolchainError(f"{adapter} is missing; run `make setup`")
    os.environ["SOLCX_BINARY_PATH"] = str(SOLCX_DIR)


def load_project() -> Any:
    """Load the brownie project (compiling what changed); returns ``brownie.project.Project``."""
    prepare_compiler()
    from brownie.project.main import get_loaded_projects, load

    loaded = get_loaded_projects()
    if loaded:
        return loaded[0]
    return load(str(REPO_ROOT), name="VeritrainProject")


@contextlib.contextmanager
def local_devnet(accounts: int = 20, balance_eth: int = 1_000_000) -> Iterator[Anvil]:
    """A fresh anvil on a free loopback port for the block, stopped on exit (also on errors).

    Zero base fee, as brownie's development network expects; automine, one block per
    transaction.
    """
    node = start_anvil(accounts=accounts, balance_eth=balance_eth, zero_base_fee=True)
    try:
        yield node
    finally:
        node.stop()


@contextlib.contextmanager
def attached(devnet: Endpoint, quiet: bool = True) -> Iterator[Any]:
    """Load the project and connect brownie to ``devnet`` for the block; yields the project.

    brownie attaches to the running anvil instead of launching one, and leaves it running
    on exit: the devnet's owner stops it. ``quiet`` keeps brownie from printing every
    transaction.
    """
    project = load_project()
    from brownie._config import CONFIG
    from brownie.network.main import connect, disconnect, is_connected

    # brownie's own snapshot bookkeeping trips its warning against direct rpc use.
    warnings.filterwarnings(
        "ignore", message=r"rpc\.\w+ should not be called directly", category=FutureWarning
    )
    CONFIG.argv["silent"] = quiet

    CONFIG.networks[NETWORK_ID] = {
        "id": NETWORK_ID,
        "name": "veritrain devnet",
        "cmd": str(anvil_binary()),
        "host": devnet.url,
        "cmd_settings": {"port": devnet.port},
    }
    connect(NETWORK_ID)
    try:
        yield project
    finally:
        if is_connected():
            disconnect(kill_rpc=False)
