"""A local anvil node on a free loopback port: start, wait until it answers, stop.

Used by ``veritrain devnet``, the end-to-end tests and the benchmarks, so there
is one way to run a devnet. anvil listens on 127.0.0.1 only and dials nobody.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from agents.chain.client import ChainClient
from agents.chain.errors import RpcUnavailableError
from agents.chain.rpc import RetryPolicy
from agents.errors import VeritrainError

# anvil's default development mnemonic: its first accounts are the well-known
# test keys, funded on every devnet; never use them on a real chain.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
)
CHAIN_ID = 31337
REPO_ROOT = Path(__file__).resolve().parents[2]


class DevnetError(VeritrainError):
    """The devnet cannot be started, found or stopped."""


def anvil_binary() -> str:
    """The anvil executable: ``$VERITRAIN_ANVIL``, the project's npm install, or PATH."""
    explicit = os.environ.get("VERITRAIN_ANVIL")
    if explicit:
        return explicit
    # The platform package's native binary, else npm's shim (which runs it as a child of node).
    machine = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "")
    system = platform.system().lower()
    for local in (
        REPO_ROOT / "node_modules" / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / "anvil",
        REPO_ROOT / "node_modules" / ".bin" / "anvil",
    ):
        if local.is_file() and os.access(local, os.X_OK):
            return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise DevnetError(
        "anvil not found: run `make setup` (it installs @foundry-rs/anvil from npm) "
        "or set VERITRAIN_ANVIL"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Anvil:
    """A running anvil process."""

    port: int
    process: subprocess.Popen[bytes] | None
    pid: int
    log_path: Path | None = None
    state_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    cache_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return pid_alive(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (anvil then writes its ``--state`` file), SIGKILL if it lingers; then
        the states it persisted are removed."""
        stop_pid(self.pid, timeout=timeout, process=self.process)
        if self.cache_path is not None:
            shutil.rmtree(self.cache_path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
        return status != "Z"
    except (OSError, IndexError):
        return True


def stop_pid(
    pid: int, *, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Terminate ``pid`` gracefully, then forcefully after ``timeout`` seconds."""
    if not pid_alive(pid):
        if process is not None:
            process.wait()
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not pid_alive(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait()


def state_cache(state_path: Path | None) -> Path:
    """Where a node persists the states it no longer keeps in memory (anvil's ``--cache-path``).

    anvil's default is a new directory under ``~/.foundry/anvil/tmp`` per node that nothing
    removes, so a day of test runs leaves gigabytes there. A node with a state file keeps them
    beside it (emptied at each start: the state file is what a restart loads); any other node
    in a temporary directory that :meth:`Anvil.stop` removes.
    """
    if state_path is None:
        return Path(tempfile.mkdtemp(prefix="veritrain-anvil-"))
    cache = cache_beside(state_path)
    shutil.rmtree(cache, ignore_errors=True)
    return cache


def cache_beside(state_path: Path) -> Path:
    """The persisted-states directory of the node whose state file is ``state_path``."""
    return state_path.with_name(state_path.name + ".cache")


def start_anvil(
    *,
    port: int | None = None,
    state_path: Path | None = None,
    log_path: Path | None = None,
    block_time: float | None = None,
    accounts: int = 10,
    balance_eth: int = 10_000,
    detach: bool = False,
    zero_base_fee: bool = False,
    extra_args: list[str] | None = None,
    timeout: float = 30.0,
) -> Anvil:
    """Start anvil on 127.0.0.1 and return once it answers JSON-RPC.

    ``state_path``: load the chain from this file if it exists and write it
    back on a graceful stop (anvil's ``--state``), so a restarted node has the
    same blocks, logs and balances. ``detach``: a new session, so the node
    outlives this process (``veritrain devnet up``). ``zero_base_fee``: blocks
    charge no base fee (what brownie's deployment expects).
    """
    binary = anvil_binary()
    for _attempt in range(3):
        chosen = port or free_port()
        args = [
            binary,
            "--host", "127.0.0.1",
            "--port", str(chosen),
            "--chain-id", str(CHAIN_ID),
            "--hardfork", "cancun",
            "--accounts", str(accounts),
            "--balance", str(balance_eth),
            "--mnemonic", DEV_MNEMONIC,
            "--gas-limit", "30000000",
        ]  # fmt: skip
        if zero_base_fee:
            args += ["--block-base-fee-per-gas", "0"]
        if state_path is not None:
            args += ["--state", str(state_path)]
        cache = state_cache(state_path)
        args += ["--cache-path", str(cache)]
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        args += extra_args or []
        out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        finally:
            if log_path is not None and not isinstance(out, int):
                out.close()
        node = Anvil(
            chosen, process, process.pid, log_path, state_path, list(extra_args or []), cache
        )
        if _wait_ready(node, timeout):
            return node
        node.stop(timeout=2)
        if port is not None:
            break  # a fixed port that does not come up will not do better on retry
    where = f" (see {log_path})" if log_path is not None else ""
    raise DevnetError(f"anvil did not start on 127.0.0.1{where}")


def _wait_ready(node: Anvil, timeout: float) -> bool:
    client = ChainClient(node.url, timeout=1.0, retry=RetryPolicy(attempts=1))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not node.alive():
                return False
            try:
                client.chain_id()
                return True
            except RpcUnavailableError:
                time.sleep(0.1)
        return False
    finally:
        client.rpc.close()
