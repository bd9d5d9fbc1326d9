"""Availability: content a store's node can retrieve from its peers within the bounds is
available, even when the node does not hold it yet; content nobody serves is unavailable
after the timeout; a node that does not answer is the reader's own trouble."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.store import (
    AddOptions,
    BackendError,
    Retrieval,
    UnavailableError,
    cid_of_bytes,
)
from agents.store.cid import parse_content_cid
from agents.store.embedded import EmbeddedStore
from agents.store.kubo import KuboStore
from tests.store.peered import PeeredNode

FAST = {"retries": 1, "backoff": 0.01, "timeout": 5.0, "connect_timeout": 2.0}
SMALL = AddOptions(chunk_size=1000, max_links=4)


def _data(size: int, seed: int = 0) -> bytes:
    return bytes((i * 13 + seed + (i >> 9)) % 256 for i in range(size))


@pytest.fixture
def solver(tmp_path: Path) -> EmbeddedStore:
    """The solver's node: it holds what it published."""
    return EmbeddedStore(tmp_path / "solver", fsync=False)


@pytest.fixture
def node(solver: EmbeddedStore) -> Iterator[PeeredNode]:
    """The verifier's own node, peered with the solver's and holding nothing yet."""
    with PeeredNode([solver]) as peered:
        yield peered


@pytest.fixture
def verifier(node: PeeredNode) -> Iterator[KuboStore]:
    client = KuboStore(node.url, **FAST)  # type: ignore[arg-type]
    yield client
    client.close()


@pytest.mark.parametrize(
    ("size", "options"),
    [(0, AddOptions()), (11, AddOptions()), (20_000, SMALL), (20_000, AddOptions(cid_version=1))],
    ids=["empty", "one-block", "deep-dagpb", "raw-leaves"],
)
def test_content_a_peer_serves_is_available_though_the_node_lacks_it(
    solver: EmbeddedStore,
    node: PeeredNode,
    verifier: KuboStore,
    size: int,
    options: AddOptions,
) -> None:
    data = _data(size, seed=size)
    cid = solver.put_bytes(data, options)
    assert cid == cid_of_bytes(data, options)
    # The node's own blockstore does not hold it: the local question says so ...
    assert not verifier.has(cid)
    # ... but the artifact is published: it is available, and now held by the node.
    assert verifier.available(cid, Retrieval(timeout=10.0))
    assert verifier.has(cid)
    fetched = set(node.fetched)
    assert parse_content_cid(cid) in fetched
    assert verifier.get_bytes(cid) == data
    assert set(node.fetched) == fetched  # reading afterwards fetched nothing more


def test_content_nobody_serves_is_unavailable_after_the_timeout(
    verifier: KuboStore, tmp_path: Path
) -> None:
    elsewhere = EmbeddedStore(tmp_path / "unpeered", fsync=False)
    cid = elsewhere.put_bytes(_data(5000), SMALL)
    started = time.monotonic()
    with pytest.raises(UnavailableError, match=r"within 0\.6 s.*deadline"):
        verifier.require_available(cid, Retrieval(timeout=0.6))
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 5.0
    assert not verifier.available(cid, Retrieval(timeout=0.3))


def test_a_dag_missing_one_leaf_is_unavailable(solver: EmbeddedStore, verifier: KuboStore) -> None:
    data = _data(9000)
    cid = solver.put_bytes(data, SMALL)
    # Take one leaf away from the solver's node: nobody serves the whole DAG any more.
    leaf = cid_of_bytes(data[1000:2000], SMALL)
    digest = parse_content_cid(leaf).digest
    removed = solver._blocks.delete(digest)
    assert removed > 0
    assert not verifier.available(cid, Retrieval(timeout=0.5))


def test_a_slow_peer_past_the_timeout_is_unavailable(solver: EmbeddedStore) -> None:
    cid = solver.put_bytes(_data(8000), SMALL)  # 8 leaves, several inner nodes
    with PeeredNode([solver], delay=0.2) as slow:
        client = KuboStore(slow.url, **FAST)  # type: ignore[arg-type]
        assert not client.available(cid, Retrieval(timeout=0.5))
        # Given the time, the same content is available.
        assert client.available(cid, Retrieval(timeout=20.0))


def test_content_over_the_size_bound_is_not_fetched_beyond_its_root(
    solver: EmbeddedStore, node: PeeredNode, verifier: KuboStore
) -> None:
    cid = solver.put_bytes(_data(20_000), SMALL)
    # Available as far as a reader that refuses it by its size needs: the root only.
    verifier.require_available(cid, Retrieval(timeout=10.0, max_bytes=19_999))
    assert node.fetched == [parse_content_cid(cid)]
    verifier.require_available(cid, Retrieval(timeout=10.0, max_bytes=20_000))
    assert len(node.fetched) > 1


def test_a_node_that_does_not_answer_is_the_readers_own_trouble(solver: EmbeddedStore) -> None:
    cid = solver.put_bytes(b"published")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = KuboStore(f"http://127.0.0.1:{port}", **FAST)  # type: ignore[arg-type]
    with pytest.raises(BackendError):
        client.available(cid, Retrieval(timeout=1.0))


def test_stores_without_peers_are_available_exactly_when_they_hold_the_content(
    solver: EmbeddedStore,
) -> None:
    data = _data(3000)
    assert not solver.available(cid_of_bytes(data, SMALL))
    cid = solver.put_bytes(data, SMALL)
    assert solver.available(cid, Retrieval(timeout=0.01, max_bytes=1))
    with pytest.raises(UnavailableError, match="not in"):
        solver.require_available(cid_of_bytes(b"other"))


def test_retrieval_bounds_are_checked() -> None:
    from agents.store import StoreError

    for bad in ({"timeout": 0.0}, {"timeout": -1.0}, {"max_bytes": -1}):
        with pytest.raises(StoreError):
            Retrieval(**bad)


def test_the_stores_own_retrieval_timeout_applies_when_the_caller_names_none(
    node: PeeredNode, tmp_path: Path
) -> None:
    from agents.store import StoreError, open_store

    elsewhere = EmbeddedStore(tmp_path / "unpeered", fsync=False)
    cid = elsewhere.put_bytes(_data(700))
    client = open_store(node.url, retrieval_timeout=0.4)
    assert isinstance(client, KuboStore) and client.retrieval_timeout == 0.4
    started = time.monotonic()
    with pytest.raises(UnavailableError, match=r"within 0\.4 s"):
        client.require_available(cid)
    assert time.monotonic() - started < 5.0
    # A caller's own timeout still wins.
    with pytest.raises(UnavailableError, match=r"within 0\.2 s"):
        client.require_available(cid, Retrieval(timeout=0.2))
    for bad in (0.0, -1.0):
        with pytest.raises(StoreError, match="positive"):
            KuboStore(node.url, retrieval_timeout=bad)
