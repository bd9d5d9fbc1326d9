"""brownie as a library: load the veritrain project and attach it to a running devnet.

brownie's own development network would launch anvil on port 8545; here the devnet
(``agents.devnet.anvil``) owns the process and brownie only attaches to it, so tests,
the demo and the benchmarks can run side by side on free ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from agents.devnet.anvil import REPO_ROOT, Anvil, anvil_binary, start_anvil
from agents.errors import ConfigError, VeritrainError
from agents.files import write_atomically

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


def compile_sources(sources: dict[str, str], bytecode: bool = True) -> dict[str, Any]:
    """Compile ``sources`` (path: text) with the project's solc-js (as brownie does: optimizer,
    cancun); returns solc's ``contracts`` output (path → name → ABI and, with ``bytecode``,
    ``evm.bytecode.object``). Raises ``ConfigError`` on a compile error."""
    outputs = ["abi", "evm.bytecode.object"] if bytecode else ["abi"]
    request = {
        "language": "Solidity",
        "sources": {path: {"content": text} for path, text in sources.items()},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "cancun",
            "outputSelection": {"*": {"*": outputs}},
        },
    }
    adapter = REPO_ROOT / "tools" / "solc" / "solc-adapter.js"
    out = subprocess.run(
        ["node", str(adapter), "--standard-json"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    result = json.loads(out.stdout)
    errors = [e["formattedMessage"] for e in result.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise ConfigError("solc: " + "\n".join(errors))
    contracts: dict[str, Any] = result["contracts"]
    return contracts


def _artifacts(root: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    out = {}
    for path in sorted((root / "build" / "contracts").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out[path.stem] = (path, data)
    return out


def drop_stale_artifacts(root: Path = REPO_ROOT) -> list[str]:
    """Delete the build artifacts that name a source file no longer there; returns their names.

    brownie reads every source an artifact was built from before it looks for changes, so
    one removed or moved contract file would stop every later load of a checkout that built
    it; without the stale artifact brownie compiles again what needs it. (Sources from npm
    packages are recorded under ``node_modules/``, brownie-config.yaml's remappings.)
    """
    dropped = []
    for name, (path, data) in _artifacts(root).items():
        sources = data.get("allSourcePaths", {})
        names = sources.values() if isinstance(sources, dict) else sources
        if any(isinstance(source, str) and not (root / source).exists() for source in names):
            path.unlink(missing_ok=True)
            dropped.append(name)
    return dropped


def close_dependencies(root: Path = REPO_ROOT) -> list[str]:
    """List every project contract's transitive dependencies in its artifact; returns the
    names of the artifacts deleted because one of those has no artifact left.

    brownie keeps a dependency's artifact only while a project contract lists it, and lists
    only the contracts it inherits from or names itself, so a library that only an npm
    contract uses (OpenZeppelin's ``TransientSlot`` under ``ReentrancyGuardTransient``) is
    deleted at the next load, and slither, which reads the build, cannot find its source.
    A project artifact whose dependency is already gone is deleted instead: brownie then
    compiles it again, with every artifact it needs, in one compilation.
    """
    artifacts = _artifacts(root)
    deleted = []
    for name, (path, data) in artifacts.items():
        if not str(data.get("sourcePath", "")).startswith("contracts/"):
            continue
        direct = [str(d) for d in data.get("dependencies", [])]
        closure: set[str] = set()
        todo = list(direct)
        while todo:
            dependency = todo.pop()
            if dependency not in closure:
                closure.add(dependency)
                if dependency in artifacts:
                    todo.extend(str(d) for d in artifacts[dependency][1].get("dependencies", []))
        if any(dependency not in artifacts for dependency in closure):
            path.unlink(missing_ok=True)
            deleted.append(name)
        elif sorted(closure) != direct:
            data["dependencies"] = sorted(closure)
            write_atomically(path, json.dumps(data, sort_keys=True, indent=2).encode())
    return deleted


def load_project() -> Any:
    """Load the brownie project (compiling what changed); returns ``brownie.project.Project``.

    The build is kept complete for slither (``prepare_build``) before and after brownie
    loads it. brownie reads sources from npm packages (``node_modules/…``, relative to the
    project) from the working directory, so it loads from the checkout's root whatever
    directory the caller runs in.
    """
    prepare_compiler()
    drop_stale_artifacts()
    close_dependencies()
    from brownie.project.main import get_loaded_projects, load

    loaded = get_loaded_projects()
    if loaded:
        return loaded[0]
    with contextlib.chdir(REPO_ROOT):
        project = load(str(REPO_ROOT), name="VeritrainProject")
    close_dependencies()
    return project


def prepare_build() -> None:
    """Compile what changed and leave a build that slither can read whole (``make lint``)."""
    load_project()


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
    receipts_before_drops()

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


def receipts_before_drops() -> None:
    """Make brownie judge a transaction dropped only once the node no longer knows it.

    brownie reads the sender's nonce, then the receipt, and takes a nonce past the
    transaction's with no receipt for a transaction dropped without replacement. anvil
    raises the nonce before the block's receipts can be read (the state is written first),
    so a transaction caught between the two, more often on a loaded machine, was reported
    dropped although it was mined. Before brownie looks, wait until the node has the
    receipt or has forgotten the transaction (replaced, dropped from its pool): brownie's
    judgement is then the same as before for a transaction that is really gone.
    Installed once per process.
    """
    from brownie.network.transaction import TransactionReceipt

    brownies: Any = TransactionReceipt._await_confirmation
    if getattr(brownies, "waits_for_receipt", False):
        return

    def await_confirmation(
        receipt: Any, block_number: int | None = None, required_confs: int = 1
    ) -> None:
        receipt_or_forgotten(receipt.txid)
        brownies(receipt, block_number, required_confs)

    await_confirmation.waits_for_receipt = True  # type: ignore[attr-defined]
    setattr(TransactionReceipt, "_await_confirmation", await_confirmation)  # noqa: B010


def receipt_or_forgotten(txid: str, longest_pause: float = 1.0) -> bool:
    """Poll the node brownie is attached to until it has ``txid``'s receipt (True) or no
    longer knows the transaction (False); pauses grow from 10 ms to ``longest_pause``."""
    from brownie import web3
    from hexbytes import HexBytes
    from web3.exceptions import TransactionNotFound

    pause = 0.01
    while True:
        try:
            if web3.eth.get_transaction_receipt(HexBytes(txid)) is not None:
                return True
        except TransactionNotFound:
            pass
        try:
            web3.eth.get_transaction(HexBytes(txid))
        except TransactionNotFound:
            return False
        time.sleep(pause)
        pause = min(2 * pause, longest_pause)


def snapshot() -> str:
    """``evm_snapshot`` on the devnet brownie is attached to: an id to go back to."""
    from brownie import web3
    from web3.types import RPCEndpoint

    return str(web3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"])


def revert(snapshot_id: str) -> None:
    """``evm_revert`` to ``snapshot_id`` (which it uses up), and tell brownie: its clock offset,
    transaction history and accounts' nonces follow the chain back."""
    from brownie import chain, web3
    from brownie.network import state
    from web3.types import RPCEndpoint

    reverted = web3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot_id])
    if reverted.get("result") is not True:
        raise VeritrainError(f"evm_revert {snapshot_id}: {reverted}")
    chain._set_time_offset_from_block()
    state._notify_registry()
