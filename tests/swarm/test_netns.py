"""Slow networks on one machine: namespaces joined by shaped veth links (root only)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from agents.learning.backends import get_backend
from agents.swarm import netns
from agents.swarm.errors import SwarmError
from agents.swarm.netns import NetworkUnavailableError, ShapedNetwork, burst_bytes
from agents.swarm.training import SwarmBackend

REASON = netns.unavailable()
needs_root = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def test_without_root_it_says_why_and_creates_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert netns.unavailable() == "shaped networks need root (network namespaces and tc); skipped"
    with pytest.raises(NetworkUnavailableError, match="need root"), ShapedNetwork(2, 10.0):
        pass


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(SwarmError, match="at least one worker"):
        ShapedNetwork(0)
    with pytest.raises(SwarmError, match="out of range"):
        ShapedNetwork(2, 0.0)
    assert burst_bytes(10.0) == 12_500
    assert burst_bytes(0.1) == 3028


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


SERVER = textwrap.dedent(
    """
    import socket, sys, time
    s = socket.socket(); s.bind((sys.argv[1], 47001)); s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept(); got = 0; start = None
    while True:
        data = c.recv(1 << 16)
        if start is None: start = time.perf_counter()
        if not data: break
        got += len(data)
    print(got, time.perf_counter() - start, flush=True)
    """
)
CLIENT = textwrap.dedent(
    """
    import socket, sys
    c = socket.create_connection((sys.argv[1], 47001), timeout=30)
    c.sendall(b"x" * int(sys.argv[2])); c.close()
    """
)


def _transfer_seconds(network: ShapedNetwork, size: int) -> float:
    """Seconds to send ``size`` bytes from worker 0's namespace to worker 1's."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", network.namespace(1), sys.executable, "-c", SERVER,
         network.address(1)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        subprocess.run(
            ["ip", "netns", "exec", network.namespace(0), sys.executable, "-c", CLIENT,
             network.address(1), str(size)],
            check=True, timeout=60,
        )  # fmt: skip
        got, seconds = server.stdout.readline().split()
        assert int(got) == size
        return float(seconds)
    finally:
        server.kill()
        server.wait()


@pytest.mark.slow
@needs_root
def test_links_run_at_their_rate_and_vanish_afterwards() -> None:
    before = _namespaces()
    size = 1_000_000
    with ShapedNetwork(2, 8.0) as network:
        made = _namespaces() - before
        assert made == {network.hub, network.namespace(0), network.namespace(1)}
        seconds = _transfer_seconds(network, size)
    # 1 MB at 8 Mbit/s takes one second; a bucket of 10 ms lets little through early.
    assert 0.85 <= seconds <= 10.0, seconds
    assert _namespaces() == before


@pytest.mark.slow
@needs_root
def test_namespaces_are_removed_when_creation_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _namespaces()
    network = ShapedNetwork(2, 10.0)
    real = network._shape
    calls = []

    def failing(namespace: str, device: str) -> None:
        calls.append(device)
        if len(calls) == 3:
            raise SwarmError("tc failed")
        real(namespace, device)

    monkeypatch.setattr(network, "_shape", failing)
    with pytest.raises(SwarmError, match="tc failed"), network:
        pass
    assert _namespaces() == before


@pytest.mark.slow
@needs_root
def test_a_pipeline_across_namespaces_writes_the_single_process_proof(tmp_path: Any) -> None:
    from tests.swarm.test_training import AQ, _proof, _staged

    task = _staged(microbatches=2, stages=2, compression=AQ)
    alone = _proof(task, get_backend("exact", threads=1), tmp_path, "alone")
    started = time.monotonic()
    with ShapedNetwork(2, 50.0) as network:
        backend = SwarmBackend(workers=2, placements=network.placements(), latency_s=0.005)
        swarm = _proof(task, backend, tmp_path, "swarm")
    assert swarm == alone
    assert time.monotonic() - started < 600


HOLDER = textwrap.dedent(
    """
    import sys, time
    from agents.swarm.netns import ShapedNetwork
    with ShapedNetwork(2, 10.0) as network:
        print(network.prefix, flush=True)
        time.sleep(120)
    """
)


@needs_root
def test_a_terminated_process_removes_its_namespaces() -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    prefix = ""
    try:
        assert holder.stdout is not None
        prefix = holder.stdout.readline().strip()
        assert prefix, "the holder did not create its network"
        assert len([name for name in _namespaces() if name.startswith(prefix)]) == 3
        holder.terminate()  # SIGTERM, as timeout(1) sends
        assert holder.wait(timeout=60) == 128 + 15
        left = [name for name in _namespaces() if name.startswith(prefix)]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        for name in _namespaces():
            if prefix and name.startswith(prefix):
                subprocess.run(["ip", "netns", "del", name], check=False, timeout=20)
    assert left == []
