"""What reads and availability walks cost in block accesses, and what they still promise.

Every access to a block's file goes through the store's ``Blockstore``; the tests count them
with a subclass that records each one (and whether it hashed the block against its CID).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from agents.store import AddOptions, CorruptBlockError, MissingBlockError, UnavailableError
from agents.store.cid import CID, DAG_PB, RAW, encode_varint
from agents.store.dagpb import encode_node, has_links
from agents.store.embedded import EmbeddedStore
from agents.store.reader import node_links
from agents.store.unixfs import encode_inner
from tests.store.counting import Access, counting

# 2,000 bytes in chunks of 100 under nodes of 3 links: 20 leaves under 7, 3 and 1 nodes.
DATA = bytes((i * 131 + (i >> 8)) % 256 for i in range(2000))
SMALL = {
    "dag-pb leaves": AddOptions(chunk_size=100, max_links=3),
    "raw leaves": AddOptions(cid_version=1, chunk_size=100, max_links=3),
}


def dag(store: EmbeddedStore, root: CID) -> tuple[list[CID], list[CID]]:
    """The nodes with links and the leaves under ``root``, each once."""
    nodes: list[CID] = []
    leaves: list[CID] = []
    stack = [root]
    while stack:
        cid = stack.pop()
        block = store.get_block(cid)
        if cid.codec == DAG_PB and has_links(block):
            nodes.append(cid)
            stack.extend(link.cid for link in node_links(cid, block))
        else:
            leaves.append(cid)
    return nodes, leaves


def block_path(store: EmbeddedStore, cid: CID) -> Path:
    return store._blocks.path(cid.digest)


@pytest.fixture(params=list(SMALL))
def file(request: pytest.FixtureRequest, store: EmbeddedStore) -> CID:
    return CID.parse(store.put_bytes(DATA, SMALL[request.param]))


def test_a_read_fetches_and_hashes_each_block_once(store: EmbeddedStore, file: CID) -> None:
    nodes, leaves = dag(store, file)
    assert len(nodes) == 11 and len(leaves) == 20
    blocks = counting(store)
    pieces = store.open(str(file))
    assert blocks.accesses == [Access("get", file, hashed=True)]  # checked before open returns
    assert b"".join(pieces) == DATA
    assert blocks.hashed() == Counter(nodes + leaves)
    assert blocks.per_block() == blocks.hashed()


def test_has_opens_each_block_once_and_hashes_only_the_nodes_with_links(
    store: EmbeddedStore, file: CID
) -> None:
    nodes, leaves = dag(store, file)
    blocks = counting(store)
    assert store.has(str(file))
    assert blocks.per_block() == Counter(nodes + leaves)
    assert blocks.hashed() == Counter(nodes)
    # A raw leaf is only looked up; a dag-pb leaf's file is opened for its first byte.
    leaf_access = {a.method for a in blocks.accesses if a.cid in leaves}
    assert leaf_access == {"size" if file.version == 1 else "get_or_size"}


def test_availability_and_a_read_after_it_cost_one_walk_and_one_read(
    store: EmbeddedStore, file: CID
) -> None:
    """The verifier's pattern: availability first, then the read. The nodes with links are
    hashed twice (once by each), every leaf once (by the read)."""
    nodes, leaves = dag(store, file)
    blocks = counting(store)
    store.require_available(str(file))
    assert store.get_bytes(str(file)) == DATA
    assert blocks.hashed() == Counter(nodes * 2 + leaves)


def _damage(store: EmbeddedStore, cid: CID, how: str) -> None:
    path = block_path(store, cid)
    if how == "missing":
        path.unlink()
    elif how == "flipped":  # the same size, other bytes
        raw = bytearray(path.read_bytes())
        raw[-1] ^= 0x01
        path.write_bytes(bytes(raw))
    else:
        path.write_bytes(path.read_bytes() + b"\x00")


@pytest.mark.parametrize("how", ["missing", "flipped", "longer"])
@pytest.mark.parametrize("which", ["root", "node", "leaf"])
def test_damage_is_reported_by_the_same_call_as_before(
    store: EmbeddedStore, file: CID, which: str, how: str
) -> None:
    """What ``has`` promises: every node with links there and intact, every leaf there with
    the size its parent records. A leaf of that size with other bytes is found by the read,
    which raises before yielding any of it; a damaged root, by ``open`` itself."""
    nodes, leaves = dag(store, file)
    target = {"root": file, "node": nodes[-1], "leaf": leaves[7]}[which]
    _damage(store, target, how)
    error = MissingBlockError if how == "missing" else CorruptBlockError
    message = f"block {target} is " + ("not in the store" if how == "missing" else "corrupt")
    held = which == "leaf" and how == "flipped"
    assert store.has(str(file)) is held
    assert store.available(str(file)) is held
    if not held:
        with pytest.raises(UnavailableError):
            store.require_available(str(file))
    if which == "root":
        with pytest.raises(error, match=message):
            store.open(str(file))
        return
    pieces = store.open(str(file))
    with pytest.raises(error, match=message):
        b"".join(pieces)


def test_a_node_with_links_the_size_of_a_leaf_is_walked_into(store: EmbeddedStore) -> None:
    """A DAG whose parent records, for a node with links, the node's own size (what a leaf's
    link records): judged by its size alone it would pass as a leaf, and the block it links
    to, which nobody stored, would never be asked for. ``has`` reads the node's first byte,
    so the missing block makes the content not held."""
    absent = CID(1, RAW, hashlib.sha256(b"withheld").digest())
    own = b"y" * 40
    message = b"\x08\x02\x12" + encode_varint(len(own)) + own
    message += b"\x18" + encode_varint(len(own) + 8) + b"\x20\x08"
    node = encode_node([(absent.to_bytes(), 8)], message)
    node_cid = CID(0, DAG_PB, hashlib.sha256(node).digest())
    store._blocks.put(node_cid, [node])
    root = encode_node([(node_cid.to_bytes(), len(node))], encode_inner(48, [48]))
    root_cid = CID(0, DAG_PB, hashlib.sha256(root).digest())
    store._blocks.put(root_cid, [root])
    assert not store.has(str(root_cid))
    with pytest.raises(MissingBlockError, match=f"block {absent} is not in the store"):
        store.get_bytes(str(root_cid))
    store._blocks.put(absent, [b"withheld"])
    assert store.has(str(root_cid))
    assert store.get_bytes(str(root_cid)) == own + b"withheld"
