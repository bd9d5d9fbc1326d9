"""The importer against an independent transcription of Kubo's balanced layout.

The reference below builds the DAG the way boxo's ``balanced.Layout`` and ``fillNodeRec``
do (a recursion that deepens the tree when the root is full), with its own minimal
protobuf writer; the importer under test builds it bottom-up from a stream. They must
agree on every root CID, cumulative size and block, for sizes around chunk and link
boundaries and for random inputs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.store import AddOptions
from agents.store.cid import CID
from agents.store.importer import FileImporter, import_bytes, import_stream


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out += bytes([low | 0x80])
        else:
            return out + bytes([low])


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _field_int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _cid_bytes(version: int, codec: int, block: bytes) -> bytes:
    multihash = b"\x12\x20" + hashlib.sha256(block).digest()
    return multihash if version == 0 else _varint(1) + _varint(codec) + multihash


def _cid_text(cid: bytes) -> str:
    if cid[0] == 0x12:
        alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
        n = int.from_bytes(cid, "big")
        text = ""
        while n:
            n, r = divmod(n, 58)
            text = alphabet[r] + text
        return text
    return "b" + base64.b32encode(cid).decode().lower().rstrip("=")


@dataclass
class _Node:
    cid: bytes
    tsize: int
    filesize: int


class Reference:
    """boxo's balanced layout, transcribed as a recursion over a queue of chunks."""

    def __init__(self, data: bytes, chunk: int, max_links: int, version: int, raw: bool) -> None:
        self.chunks = deque(data[i : i + chunk] for i in range(0, len(data), chunk))
        self.max_links = max_links
        self.version = version
        self.raw = raw
        self.blocks: dict[bytes, bytes] = {}

    def _put(self, version: int, codec: int, block: bytes) -> bytes:
        cid = _cid_bytes(version, codec, block)
        self.blocks[cid] = block
        return cid

    def leaf(self, data: bytes) -> _Node:
        if self.raw:
            return _Node(self._put(1, 0x55, data), len(data), len(data))
        unixfs = _field_int(1, 2) + (_field_bytes(2, data) if data else b"")
        unixfs += _field_int(3, len(data))
        block = _field_bytes(1, unixfs)
        return _Node(self._put(self.version, 0x70, block), len(block), len(data))

    def commit(self, children: list[_Node]) -> _Node:
        total = sum(c.filesize for c in children)
        unixfs = _field_int(1, 2) + _field_int(3, total)
        unixfs += b"".join(_field_int(4, c.filesize) for c in children)
        links = b"".join(
            _field_bytes(2, _field_bytes(1, c.cid) + _field_bytes(2, b"") + _field_int(3, c.tsize))
            for c in children
        )
        block = links + _field_bytes(1, unixfs)
        cid = self._put(self.version, 0x70, block)
        return _Node(cid, len(block) + sum(c.tsize for c in children), total)

    def fill(self, children: list[_Node], depth: int) -> list[_Node]:
        while len(children) < self.max_links and self.chunks:
            if depth == 1:
                children.append(self.leaf(self.chunks.popleft()))
            else:
                children.append(self.commit(self.fill([], depth - 1)))
        return children

    def root(self) -> _Node:
        if not self.chunks:
            return self.leaf(b"")
        root = self.leaf(self.chunks.popleft())
        depth = 1
        while self.chunks:
            root = self.commit(self.fill([root], depth))
            depth += 1
        return root


class _Recorder:
    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}
        self.order: list[bytes] = []

    def put_block(self, cid: CID, parts: object) -> None:
        block = b"".join(bytes(p) for p in parts)  # type: ignore[attr-defined]
        assert hashlib.sha256(block).digest() == cid.digest
        self.blocks[cid.to_bytes()] = block
        self.order.append(cid.to_bytes())


def _check(data: bytes, chunk: int, max_links: int, version: int, raw: bool | None) -> None:
    options = AddOptions(cid_version=version, chunk_size=chunk, max_links=max_links, raw_leaves=raw)
    reference = Reference(data, chunk, max_links, version, options.uses_raw_leaves)
    expected = reference.root()
    recorder = _Recorder()
    result = import_bytes(data, options, recorder)
    assert str(result.cid) == _cid_text(expected.cid)
    assert result.dag_size == expected.tsize
    assert result.file_size == len(data)
    assert recorder.blocks == reference.blocks
    # The root is written last, so a store never holds a root whose children are missing.
    assert recorder.order[-1] == expected.cid


# Sizes in chunks around every boundary of a tree with max_links=3: 1 node, full root,
# one more (depth 2), full depth 2, one more (depth 3).
@pytest.mark.parametrize("chunks", [0, 1, 2, 3, 4, 8, 9, 10, 26, 27, 28])
@pytest.mark.parametrize("delta", [-1, 0, 1])
@pytest.mark.parametrize(("version", "raw"), [(0, None), (1, None), (1, False), (0, True)])
def test_boundaries_match_reference(
    chunks: int, delta: int, version: int, raw: bool | None
) -> None:
    size = max(0, chunks * 7 + delta)
    data = bytes((i * 31 + 7) % 251 for i in range(size))
    _check(data, 7, 3, version, raw)


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=3000),
    chunk=st.integers(1, 300),
    max_links=st.integers(2, 6),
    version=st.sampled_from([0, 1]),
    raw=st.sampled_from([None, True, False]),
)
def test_random_inputs_match_reference(
    data: bytes, chunk: int, max_links: int, version: int, raw: bool | None
) -> None:
    _check(data, chunk, max_links, version, raw)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=12))
def test_pieces_and_streams_give_the_same_cid(data: bytes, cuts: list[int]) -> None:
    options = AddOptions(chunk_size=64, max_links=4)
    expected = import_bytes(data, options).cid
    importer = FileImporter(options)
    bounds = sorted({0, len(data), *[c for c in cuts if c <= len(data)]})
    for start, end in itertools.pairwise(bounds):
        importer.write(data[start:end])
    assert importer.finish().cid == expected

    class Trickling(io.RawIOBase):
        """A reader that returns at most 5 bytes per call, as a pipe may."""

        def __init__(self) -> None:
            self.pos = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            n = min(5, len(buffer), len(data) - self.pos)
            buffer[:n] = data[self.pos : self.pos + n]
            self.pos += n
            return n

    assert import_stream(Trickling(), options).cid == expected  # type: ignore[arg-type]


def test_finish_twice_is_an_error() -> None:
    importer = FileImporter()
    importer.finish()
    with pytest.raises(RuntimeError):
        importer.finish()
