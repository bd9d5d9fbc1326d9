"""Slow networks on one machine: workers in network namespaces, links shaped with ``tc``.

``ShapedNetwork(workers=W, rate_mbit=R)`` creates, for the time of a ``with`` block, a
hub namespace holding a bridge and one namespace per worker joined to it by a veth
pair; each worker's side has the address ``10.<net>.<net2>.<i + 1>/24`` (these exist
only inside the namespaces: nothing is routed to or from the machine's own network).
With a rate, both ends of every veth pair get a token bucket filter (``tc qdisc ... tbf
rate R``), so each worker sends and receives at most ``R`` Mbit/s. The kernel here has
no ``netem``, so latency is not shaped: ``SwarmBackend(latency_s=...)`` adds it in the
transport instead. ``placements()`` starts the swarm's workers inside the namespaces
(``ip netns exec``), gloo bound to their veth.

Creating namespaces needs root (``CAP_SYS_ADMIN``, ``CAP_NET_ADMIN``) and the ``ip``
and ``tc`` tools: ``unavailable()`` says why not, for callers that skip. Every command
is bounded in time; leaving the block removes everything created, also after errors
and, in a process that does not handle SIGTERM itself, after a SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from types import FrameType, TracebackType
from typing import Any

from agents.swarm.errors import SwarmError
from agents.swarm.training import Placement

COMMAND_TIMEOUT_S = 20.0


class NetworkUnavailableError(SwarmError):
    """Shaped networks cannot be created here (not root, or no ``ip``/``tc``)."""


def unavailable() -> str | None:
    """Why ``ShapedNetwork`` cannot run here, or ``None`` when it can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "shaped networks need root (network namespaces and tc); skipped"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"shaped networks need the {tool!r} tool (iproute2); skipped"
    return None


def _run(*command: str) -> None:
    try:
        subprocess.run(
            command, check=True, capture_output=True, timeout=COMMAND_TIMEOUT_S, text=True
        )
    except subprocess.CalledProcessError as exc:
        raise SwarmError(f"{' '.join(command)} failed: {exc.stderr.strip()}") from None
    except subprocess.TimeoutExpired:
        raise SwarmError(
            f"{' '.join(command)} did not finish in {COMMAND_TIMEOUT_S:.0f} s"
        ) from None


def _exit_on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def burst_bytes(rate_mbit: float) -> int:
    """The token bucket's size: 10 ms of traffic, at least two full frames."""
    return max(int(rate_mbit * 1e6 / 8 / 100), 3028)


class ShapedNetwork:
    """Namespaces for ``workers`` workers, every link at ``rate_mbit`` (``None``: unshaped)."""

    def __init__(self, workers: int, rate_mbit: float | None = None) -> None:
        if workers < 1:
            raise SwarmError("a network needs at least one worker")
        if workers > 250:
            raise SwarmError("at most 250 workers share one shaped network")
        if rate_mbit is not None and not 0.01 <= rate_mbit <= 100_000:
            raise SwarmError(f"a rate of {rate_mbit} Mbit/s is out of range")
        self.workers = workers
        self.rate_mbit = rate_mbit
        tag = os.getpid() % 100_000
        self.prefix = f"vt{tag}"
        self.subnet = f"10.{200 + tag % 50}.{tag % 250}"
        self.hub = f"{self.prefix}hub"
        self._created: list[str] = []
        self._previous: Any = None

    def namespace(self, i: int) -> str:
        return f"{self.prefix}w{i}"

    def interface(self, i: int) -> str:
        """The worker's end of its veth pair (inside its namespace)."""
        return f"{self.prefix}w{i}"

    def address(self, i: int) -> str:
        return f"{self.subnet}.{i + 1}"

    def placements(self) -> list[Placement]:
        """How to start worker ``i`` inside its namespace."""
        return [
            Placement(
                prefix=("ip", "netns", "exec", self.namespace(i)),
                env={"GLOO_SOCKET_IFNAME": self.interface(i)},
            )
            for i in range(self.workers)
        ]

    def __enter__(self) -> ShapedNetwork:
        reason = unavailable()
        if reason is not None:
            raise NetworkUnavailableError(reason)
        self._catch_termination()
        try:
            self._create()
        except BaseException:
            self.remove()
            self._restore_termination()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.remove()
        finally:
            self._restore_termination()

    def _catch_termination(self) -> None:
        """While the namespaces exist, SIGTERM (``timeout``, ``kill``) ends the process through
        ``SystemExit``, so leaving the block still removes them; only where nothing else
        handles SIGTERM, and only in the main thread (where Python runs signal handlers)."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        self._previous = signal.signal(signal.SIGTERM, _exit_on_term)

    def _restore_termination(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _namespace(self, name: str) -> None:
        _run("ip", "netns", "add", name)
        self._created.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")

    def _shape(self, namespace: str, device: str) -> None:
        if self.rate_mbit is None:
            return
        rate = f"{self.rate_mbit}mbit"
        burst = str(burst_bytes(self.rate_mbit))
        _run(
            "ip", "netns", "exec", namespace,
            "tc", "qdisc", "add", "dev", device, "root", "tbf",
            "rate", rate, "burst", burst, "latency", "200ms",
        )  # fmt: skip

    def _create(self) -> None:
        self._namespace(self.hub)
        _run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.hub, "link", "set", "br0", "up")
        for i in range(self.workers):
            ns, inside, outside = self.namespace(i), self.interface(i), f"{self.prefix}h{i}"
            self._namespace(ns)
            _run(
                "ip", "-n", self.hub, "link", "add", outside, "type", "veth",
                "peer", "name", inside, "netns", ns,
            )  # fmt: skip
            _run("ip", "-n", self.hub, "link", "set", outside, "master", "br0")
            _run("ip", "-n", self.hub, "link", "set", outside, "up")
            _run("ip", "-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inside)
            _run("ip", "-n", ns, "link", "set", inside, "up")
            self._shape(self.hub, outside)
            self._shape(ns, inside)

    def remove(self) -> None:
        """Delete every namespace created (their links go with them)."""
        while self._created:
            name = self._created.pop()
            subprocess.run(
                ["ip", "netns", "del", name],
                capture_output=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
