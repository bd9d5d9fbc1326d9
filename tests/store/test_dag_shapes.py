"""DAG shapes a peer could serve to make a walk expensive: repeated subtrees, empty leaves,
chains of single links. Reading costs time linear in the bytes read and ``has`` time linear
in the blocks stored, whatever the shape; every importer's DAG still reads."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from agents.store import AddOptions, CorruptBlockError, reader
from agents.store.cid import CID, DAG_PB, RAW, encode_varint
from agents.store.dagpb import encode_node
from agents.store.embedded import EmbeddedStore
from agents.store.reader import MAX_DEPTH, MAX_PATH_BYTES, SPARE_VISITS, DagReader
from agents.store.unixfs import encode_inner


@dataclass(frozen=True)
class Part:
    """A block put straight into the store, with the sizes a parent records for it."""

    cid: CID
    filesize: int
    tsize: int


def raw(store: EmbeddedStore, data: bytes) -> Part:
    cid = CID(1, RAW, hashlib.sha256(data).digest())
    store._blocks.put(cid, [data])
    return Part(cid, len(data), len(data))


def inner(store: EmbeddedStore, children: list[Part]) -> Part:
    sizes = [c.filesize for c in children]
    block = encode_node(
        [(c.cid.to_bytes(), c.tsize) for c in children], encode_inner(sum(sizes), sizes)
    )
    cid = CID(0, DAG_PB, hashlib.sha256(block).digest())
    store._blocks.put(cid, [block])
    return Part(cid, sum(sizes), len(block) + sum(c.tsize for c in children))


def with_data(store: EmbeddedStore, own: bytes, children: list[Part]) -> Part:
    """An inner node that holds content of its own before its children's."""
    sizes = [c.filesize for c in children]
    message = b"\x08\x02\x12" + encode_varint(len(own)) + own
    message += b"\x18" + encode_varint(len(own) + sum(sizes))
    message += b"".join(b"\x20" + encode_varint(size) for size in sizes)
    block = encode_node([(c.cid.to_bytes(), c.tsize) for c in children], message)
    cid = CID(0, DAG_PB, hashlib.sha256(block).digest())
    store._blocks.put(cid, [block])
    return Part(cid, len(own) + sum(sizes), len(block) + sum(c.tsize for c in children))


def counting(store: EmbeddedStore) -> list[CID]:
    """Record every block the store fetches from now on."""
    fetched: list[CID] = []
    get: Callable[[CID], bytes] = store._blocks.get

    def fetch(cid: CID) -> bytes:
        fetched.append(cid)
        return get(cid)

    store._blocks.get = fetch  # type: ignore[method-assign]
    return fetched


def test_a_dag_repeating_an_empty_leaf_is_refused_after_a_bounded_walk(
    store: EmbeddedStore,
) -> None:
    """4,000,000 paths to an empty leaf in two blocks of 80 KB: without a bound, hours of
    walking that yield nothing."""
    empty = raw(store, b"")
    middle = inner(store, [empty] * 2000)
    root = inner(store, [middle] * 2000)
    assert store.has(str(root.cid))  # every block is there
    fetched = counting(store)
    with pytest.raises(CorruptBlockError, match="no importer writes"):
        b"".join(store.open(str(root.cid)))
    assert len(fetched) <= SPARE_VISITS + 2


def test_a_chain_of_single_links_repeated_is_refused(store: EmbeddedStore) -> None:
    """A 1-byte leaf under a chain of 40 single-link nodes, linked 1,000 times: 41 blocks
    walked for each byte."""
    part = raw(store, b"x")
    for _ in range(40):
        part = inner(store, [part])
    root = inner(store, [part] * 1000)
    fetched = counting(store)
    received = 0
    with pytest.raises(CorruptBlockError, match="no importer writes"):
        for piece in store.open(str(root.cid)):
            received += len(piece)
    assert len(fetched) <= 2 * received + SPARE_VISITS + 1


def test_repeated_content_reads_in_time_linear_in_its_bytes(store: EmbeddedStore) -> None:
    """The same 1-byte leaf linked 10,000 times through one repeated node is content (a file
    of 10,000 equal bytes), read with at most two blocks per byte."""
    leaf = raw(store, b"z")
    root = inner(store, [inner(store, [leaf] * 100)] * 100)
    fetched = counting(store)
    assert store.get_bytes(str(root.cid)) == b"z" * 10_000
    assert len(fetched) <= 2 * 10_000 + SPARE_VISITS


def test_has_follows_each_block_once(store: EmbeddedStore) -> None:
    empty = raw(store, b"")
    root = inner(store, [inner(store, [inner(store, [empty] * 1000)] * 1000)] * 1000)
    fetched = counting(store)
    assert store.has(str(root.cid))  # 10^9 paths, three inner blocks
    assert len(fetched) <= 4


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 64, 1025])
@pytest.mark.parametrize("fill", ["varied", "zeros"])
def test_every_importer_dag_reads_within_the_bound(
    store: EmbeddedStore, size: int, fill: str
) -> None:
    """The deepest and narrowest DAGs the importer writes (1-byte chunks, two links per
    node; 1025 bytes is 11 levels), of varied bytes and of zeros (one leaf repeated)."""
    data = bytes(i % 251 for i in range(size)) if fill == "varied" else bytes(size)
    for options in (
        AddOptions(chunk_size=1, max_links=2),
        AddOptions(cid_version=1, chunk_size=1, max_links=2),
        AddOptions(chunk_size=3, max_links=3),
    ):
        cid = store.put_bytes(data, options)
        reader = DagReader(store._blocks.get)
        assert b"".join(reader.content(CID.parse(cid))) == data


def test_a_dag_deeper_than_any_importer_writes_is_refused(store: EmbeddedStore) -> None:
    """100 levels, each with a byte of its own (so every level pays for its visit)."""
    part = raw(store, b"x")
    for _ in range(100):
        part = with_data(store, b"y", [part])
    received = b""
    with pytest.raises(CorruptBlockError, match=f"deeper than {MAX_DEPTH} levels"):
        for piece in store.open(str(part.cid)):
            received += piece
    assert received == b"y" * (MAX_DEPTH + 1)


def test_a_walk_holds_at_most_its_path_bytes(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nine levels of nodes of 3,000 links (about 126 KB each) against a path bound of
    1 MiB (the bound scaled down eightfold, so the test stays quick): the ninth level is
    past it, and what the walk held on the way stays within eight times the bound."""
    bound = MAX_PATH_BYTES // 8
    monkeypatch.setattr(reader, "MAX_PATH_BYTES", bound)
    empty = raw(store, b"")
    part = raw(store, b"x")
    for _ in range(9):
        part = inner(store, [part] + [empty] * 2_999)
    fetched = counting(store)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptBlockError, match=f"more than {bound} bytes"):
            b"".join(store.open(str(part.cid)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The eighth node is past the bound; the root is read once (before ``open`` returns).
    assert len(fetched) == 8
    assert peak <= 8 * bound, peak
