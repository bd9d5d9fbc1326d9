"""``veritrain devnet up | status | down``: a whole local market in one directory.

``up`` starts anvil on a free loopback port (its chain kept in
``anvil-state.json`` across ``down``/``up``), deploys the contracts (once per
chain), creates and funds one account per role with an encrypted keystore,
creates the embedded artifact store, and writes one agent configuration per
role. The directory (``./.devnet`` by default, ``$VERITRAIN_DEVNET_DIR`` or
``--dir``) then holds::

    devnet.json        what is running where (read by ``status`` and ``down``)
    deployment.json    the deployment manifest
    submitter.toml     agent configurations, one per role
    solver.toml
    verifier.toml
    keys/<role>.json   keystores; keys/password is their password file
    store/             the embedded artifact store
    agents/<role>/     the agents' data directories
    anvil.log, deploy.log, anvil-state.json
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from agents.chain.client import ChainClient
from agents.chain.deployment import load_deployment
from agents.chain.errors import ChainError, RpcUnavailableError
from agents.chain.rpc import RetryPolicy
from agents.devnet.anvil import (
    CHAIN_ID,
    DEV_KEYS,
    DevnetError,
    cache_beside,
    free_port,
    pid_alive,
    start_anvil,
    stop_pid,
)
from agents.devnet.contracts import DEVNET_PARAMETERS, deploy_contracts
from agents.files import write_atomically
from agents.node.keys import write_keystore

# verifier2 is a second verifier (one that re-verifies after a report lost a challenge, in the
# demos); the whistleblower re-checks reports.
ROLES = ("submitter", "solver", "verifier", "verifier2", "whistleblower")
ENV_DIR = "VERITRAIN_DEVNET_DIR"
FUND_WEI = 1_000 * 10**18
INFO = "devnet.json"
STATE = "anvil-state.json"


def devnet_dir(explicit: Path | None = None) -> Path:
    """The devnet directory: ``explicit``, ``$VERITRAIN_DEVNET_DIR``, or ``./.devnet``."""
    if explicit is not None:
        return explicit.resolve()
    env = os.environ.get(ENV_DIR)
    return Path(env).resolve() if env else (Path.cwd() / ".devnet").resolve()


@dataclass
class DevnetInfo:
    """What ``up`` started and wrote."""

    directory: str
    url: str
    port: int
    pid: int
    chain_id: int
    manifest: str
    store: str
    accounts: dict[str, str] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0

    def save(self) -> None:
        path = Path(self.directory) / INFO
        write_atomically(path, (json.dumps(asdict(self), indent=2) + "\n").encode())

    @classmethod
    def load(cls, directory: Path) -> DevnetInfo:
        path = directory / INFO
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise DevnetError(f"no devnet in {directory} (run `veritrain devnet up`)") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise DevnetError(f"{path} is damaged: {exc}") from None


def _answers(url: str) -> bool:
    try:
        ChainClient(url, timeout=2.0, retry=RetryPolicy(attempts=1)).chain_id()
    except (RpcUnavailableError, ChainError):
        return False
    return True


def up(
    directory: Path,
    *,
    parameters: dict[str, int] | None = None,
    poll_interval: float = 0.2,
    say: Any = print,
) -> DevnetInfo:
    """Start (or restart) the devnet in ``directory``; returns what runs where.

    ``parameters`` override the devnet's deployment parameters (they apply when
    the contracts are deployed, that is on a fresh chain).
    """
    directory.mkdir(parents=True, exist_ok=True)
    previous: DevnetInfo | None = None
    if (directory / INFO).exists():
        previous = DevnetInfo.load(directory)
        if _is_anvil(previous.pid) and _answers(previous.url):
            say(f"devnet already up at {previous.url} (pid {previous.pid})")
            return previous
    port = previous.port if previous is not None and _port_free(previous.port) else free_port()
    node = start_anvil(
        port=port,
        state_path=directory / STATE,
        log_path=directory / "anvil.log",
        detach=True,
        zero_base_fee=True,
        balance_eth=1_000_000,
    )
    say(f"anvil listening at {node.url} (pid {node.pid})")
    try:
        client = ChainClient(node.url)
        manifest = directory / "deployment.json"
        if not _deployed(client, manifest):
            say("deploying the contracts ...")
            chosen = {**DEVNET_PARAMETERS, **(parameters or {})}
            deploy_contracts(node.url, manifest, chosen, directory / "deploy.log")
        deployment = load_deployment(manifest)
        say(
            "contracts: "
            + ", ".join(f"{n} {c.address}" for n, c in sorted(deployment.contracts.items()))
        )
        store = directory / "store"
        store.mkdir(exist_ok=True)
        accounts = _role_accounts(directory, client)
        info = DevnetInfo(
            directory=str(directory),
            url=node.url,
            port=node.port,
            pid=node.pid,
            chain_id=CHAIN_ID,
            manifest=str(manifest),
            store=str(store),
            accounts=accounts,
            configs={
                role: str(_write_config(directory, role, node.url, store, poll_interval))
                for role in ROLES
            },
            started_at=time.time(),
        )
        info.save()
    except BaseException:
        node.stop()
        raise
    for role, address in accounts.items():
        say(f"{role:9} {address}  config {info.configs[role]}")
    return info


def _is_anvil(pid: int) -> bool:
    """Whether ``pid`` is a live anvil (not a process that reused the pid of a dead one)."""
    if not pid_alive(pid):
        return False
    try:
        return b"anvil" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _deployed(client: ChainClient, manifest: Path) -> bool:
    if not manifest.is_file():
        return False
    try:
        deployment = load_deployment(manifest)
        deployment.check(client)
    except ChainError:
        return False
    return True


def _role_accounts(directory: Path, client: ChainClient) -> dict[str, str]:
    keys = directory / "keys"
    keys.mkdir(exist_ok=True)
    password_file = keys / "password"
    if not password_file.exists():
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(16) + "\n")
    password = password_file.read_text().strip()
    accounts = {}
    for role in ROLES:
        keystore = keys / f"{role}.json"
        if keystore.exists():
            key = Account.decrypt(json.loads(keystore.read_text()), password)
            accounts[role] = Account.from_key(key).address
        else:
            accounts[role] = write_keystore(keystore, password, light=True)
    funder = Account.from_key(DEV_KEYS[0])
    for address in accounts.values():
        if client.balance(address) < FUND_WEI // 2:
            _transfer(client, funder, address, FUND_WEI)
    return accounts


def _transfer(client: ChainClient, sender: Any, to: str, value: int) -> None:
    block = client.block()
    signed = sender.sign_transaction(
        {
            "type": 2,
            "chainId": client.chain_id(),
            "nonce": client.nonce(sender.address),
            "to": to,
            "value": value,
            "gas": 21_000,
            "maxFeePerGas": (block.base_fee or 0) * 2 + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    tx_hash = client.send_raw(bytes(signed.raw_transaction))
    for _ in range(200):
        if client.receipt(tx_hash) is not None:
            return
        time.sleep(0.05)
    raise DevnetError(f"funding {to} was not mined")


def _write_config(directory: Path, role: str, url: str, store: Path, poll: float) -> Path:
    path = directory / f"{role}.toml"
    path.write_text(
        f"# The {role} of the devnet in this directory (written by `veritrain devnet up`).\n"
        "# Relative paths are relative to this file.\n"
        "[chain]\n"
        f'rpc_url = "{url}"\n'
        'deployment = "deployment.json"\n'
        f"poll_interval = {poll}\n"
        "\n[key]\n"
        f'keystore = "keys/{role}.json"\n'
        'password_file = "keys/password"\n'
        "\n[store]\n"
        f'location = "{store}"\n'
        "\n[agent]\n"
        f'data_dir = "agents/{role}"\n'
    )
    return path


def status(directory: Path) -> dict[str, Any]:
    """Whether the devnet runs, where, at which block, and the role accounts' balances."""
    info = DevnetInfo.load(directory)
    running = _is_anvil(info.pid) and _answers(info.url)
    report: dict[str, Any] = {
        "directory": info.directory,
        "running": running,
        "url": info.url,
        "pid": info.pid,
        "chain_id": info.chain_id,
        "manifest": info.manifest,
        "store": info.store,
        "configs": info.configs,
        "accounts": {role: {"address": a} for role, a in info.accounts.items()},
    }
    if running:
        client = ChainClient(info.url, retry=RetryPolicy(attempts=1))
        report["block"] = client.block_number()
        for role, address in info.accounts.items():
            report["accounts"][role]["balance_wei"] = client.balance(address)
    return report


def down(directory: Path, *, purge: bool = False) -> bool:
    """Stop the devnet's node (its chain is saved for the next ``up``); ``purge`` deletes it all.

    Returns whether a running node was stopped.
    """
    stopped = False
    if (directory / INFO).exists():
        info = DevnetInfo.load(directory)
        if _is_anvil(info.pid):
            stop_pid(info.pid)
            stopped = True
        shutil.rmtree(cache_beside(directory / STATE), ignore_errors=True)
    elif not purge:
        raise DevnetError(f"no devnet in {directory}")
    if purge and directory.exists():
        shutil.rmtree(directory)
    return stopped
