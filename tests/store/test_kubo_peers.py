"""Two real Kubo nodes on loopback, peered only with each other: content the solver's node
holds is available to the verifier's node, and content nobody holds is unavailable after the
timeout. Skipped where no ``ipfs`` binary is installed (no registry here ships one);
tests/store/test_availability.py covers the same rules against a stand-in node.

The nodes never dial anything else: the ``test`` profile (loopback addresses, no
bootstrap peers), no MDNS, no routing, no automatic configuration, no relays, no NAT mapping.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.store import AddOptions, Retrieval, UnavailableError, cid_of_bytes
from agents.store.kubo import KuboStore

IPFS = shutil.which("ipfs")
pytestmark = pytest.mark.skipif(IPFS is None, reason="no Kubo (ipfs) binary installed")

# Settings that keep a node on loopback and away from every public peer and service.
_LOOPBACK_ONLY: list[tuple[str, str]] = [
    ("Bootstrap", "[]"),
    ("Peering.Peers", "[]"),
    ("Discovery.MDNS.Enabled", "false"),
    ("Routing.Type", '"none"'),
    ("Addresses.Swarm", '["/ip4/127.0.0.1/tcp/0"]'),
    ("Addresses.API", '"/ip4/127.0.0.1/tcp/0"'),
    ("Addresses.Gateway", '"/ip4/127.0.0.1/tcp/0"'),
    ("Swarm.DisableNatPortMap", "true"),
    ("Swarm.RelayClient.Enabled", "false"),
    ("Swarm.RelayService.Enabled", "false"),
    ("AutoNAT.ServiceMode", '"disabled"'),
]
# Keys older Kubo versions do not know; newer ones would otherwise fetch settings online.
_IF_KNOWN: list[tuple[str, str]] = [
    ("AutoConf.Enabled", "false"),
    ("Routing.DelegatedRouters", "[]"),
    ("Ipns.DelegatedPublishers", "[]"),
    ("DNS.Resolvers", "{}"),
]


class Node:
    def __init__(self, root: Path) -> None:
        assert IPFS is not None
        self.env = {**os.environ, "IPFS_PATH": str(root)}
        self._run("init", "--profile=test", "--empty-repo")
        for key, value in _LOOPBACK_ONLY:
            self._run("config", "--json", key, value)
        for key, value in _IF_KNOWN:
            subprocess.run(
                [IPFS, "config", "--json", key, value], env=self.env, capture_output=True
            )
        self.process = subprocess.Popen(
            [IPFS, "daemon", "--enable-gc=false", "--migrate=false"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = root / "api"
        deadline = time.monotonic() + 60
        while not api.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("the Kubo daemon did not start")
            time.sleep(0.1)
        parts = api.read_text().strip().split("/")  # /ip4/127.0.0.1/tcp/PORT
        self.url = f"http://{parts[2]}:{parts[4]}"
        self.client = KuboStore(self.url, retries=10, backoff=0.2)
        self.client.version()  # waits out the daemon's start

    def _run(self, *args: str) -> None:
        assert IPFS is not None
        subprocess.run([IPFS, *args], env=self.env, check=True, capture_output=True)

    def swarm_address(self) -> str:
        ident = self.client._json("id")
        addresses = [a for a in ident["Addresses"] if a.startswith("/ip4/127.0.0.1/tcp/")]
        assert addresses, ident
        return str(addresses[0])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    solver = Node(tmp_path / "solver")
    try:
        verifier = Node(tmp_path / "verifier")
        try:
            verifier.client._json("swarm/connect", {"arg": solver.swarm_address()})
            peers = json.dumps(verifier.client._json("swarm/peers"))
            assert "127.0.0.1" in peers
            yield solver, verifier
        finally:
            verifier.client.close()
            verifier.stop()
    finally:
        solver.client.close()
        solver.stop()


def test_content_on_the_peer_is_available_and_absent_content_is_not(
    nodes: tuple[Node, Node],
) -> None:
    solver, verifier = nodes
    options = AddOptions(chunk_size=1000, max_links=4)
    data = bytes(i * 31 % 251 for i in range(20_000))
    cid = solver.client.put_bytes(data, options)
    assert not verifier.client.has(cid)
    assert verifier.client.available(cid, Retrieval(timeout=60.0))
    assert verifier.client.has(cid)
    assert verifier.client.get_bytes(cid) == data

    nobody = cid_of_bytes(b"published by nobody")
    started = time.monotonic()
    with pytest.raises(UnavailableError):
        verifier.client.require_available(nobody, Retrieval(timeout=2.0))
    assert time.monotonic() - started < 30
