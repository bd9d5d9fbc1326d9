"""A local devnet: anvil on a free loopback port, stopped when its owner is done.

Tests, benchmarks and the demo start one each; nothing is assumed about port
8545. The devnet only listens on 127.0.0.1 and never dials out.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.errors import VeritrainError

REPO_ROOT = Path(__file__).resolve().parent.parent
HARDFORK = "cancun"
CHAIN_ID = 31337
# anvil's well-known development mnemonic: its accounts are public test keys, never funds.
MNEMONIC = "test test test test test test test test test test test junk"


class DevnetError(VeritrainError):
    """The local devnet could not be started or stopped cleanly."""


def anvil_binary() -> Path:
    """Return the anvil executable installed by ``npm ci`` (the native one when present).

    The native binary is preferred over the ``node_modules/.bin`` shim, which runs it as a child
    of a node process. Raises ``DevnetError`` when neither exists.
    """
    machine = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    system = platform.system().lower()
    candidates = [
        REPO_ROOT / "node_modules" / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / "anvil",
        REPO_ROOT / "node_modules" / ".bin" / "anvil",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise DevnetError(f"anvil is not installed (looked for {candidates[0]}); run `make setup`")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rpc_request(
    url: str, method: str, params: list[Any] | None = None, timeout: float = 5.0
) -> Any:
    """Send one JSON-RPC request and return its result; raise ``DevnetError`` on an error reply."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise DevnetError(f"{method} failed: {reply['error']}")
    return reply["result"]


@dataclass
class Devnet:
    """A running anvil process; ``stop()`` (or leaving the ``devnet()`` block) ends it."""

    process: subprocess.Popen[bytes]
    port: int
    accounts: int
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """The HTTP JSON-RPC endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """Call a JSON-RPC method on this devnet."""
        return rpc_request(self.url, method, params)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines anvil wrote, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop anvil (its whole process group): SIGTERM, then SIGKILL after 5 s. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def start_devnet(accounts: int = 20, balance_eth: int = 1_000_000, attempts: int = 3) -> Devnet:
    """Start anvil on a free loopback port and wait until it answers.

    The chain runs the cancun hardfork with automine (one block per transaction) and a zero
    base fee, as brownie's development network expects. Raises ``DevnetError`` if anvil does
    not come up; a port taken between probing and binding is retried.
    """
    binary = anvil_binary()
    last_error = ""
    for _ in range(attempts):
        port = free_port()
        log_fd, log_name = tempfile.mkstemp(prefix="veritrain-anvil-", suffix=".log")
        command = [
            str(binary),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--hardfork", HARDFORK,
            "--chain-id", str(CHAIN_ID),
            "--accounts", str(accounts),
            "--balance", str(balance_eth),
            "--mnemonic", MNEMONIC,
            "--block-base-fee-per-gas", "0",
            "--gas-limit", "30000000",
        ]  # fmt: skip
        # A session of its own: stopping the devnet stops anything anvil started, and a Ctrl-C
        # in the terminal reaches only the owner, which then stops the devnet.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        os.close(log_fd)
        devnet = Devnet(process=process, port=port, accounts=accounts, log_path=Path(log_name))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if int(devnet.rpc("eth_chainId"), 16) == CHAIN_ID:
                    atexit.register(devnet.stop)
                    return devnet
            except (urllib.error.URLError, ConnectionError, OSError, DevnetError):
                time.sleep(0.05)
        last_error = devnet.log_tail()
        devnet.stop()
    raise DevnetError(f"anvil did not start after {attempts} attempts:\n{last_error}")


@contextlib.contextmanager
def devnet(accounts: int = 20, balance_eth: int = 1_000_000) -> Iterator[Devnet]:
    """A devnet for the duration of a ``with`` block; stopped on exit, also on errors."""
    running = start_devnet(accounts=accounts, balance_eth=balance_eth)
    try:
        yield running
    finally:
        running.stop()
