"""Reading a UnixFS file DAG back, every byte checked against a CID.

:class:`DagReader` walks a file's DAG depth first and yields its content in order. It
gets blocks through a ``fetch`` function that returns a block only after checking its
hash. Given a ``stream`` of the file's bytes as well (Kubo's ``/cat``), it takes leaves
from the stream instead of fetching each one, and checks each leaf's bytes against the
leaf's CID before yielding them: raw leaves by their sha2-256, dag-pb leaves by hashing
the canonical leaf encoding around the bytes (Kubo's ``File`` leaves, or ``Raw`` leaves
of older importers). Inner nodes always come through ``fetch``.

A walk costs time linear in the bytes it yields, whatever the DAG: a file DAG that an
importer writes has fewer inner nodes than non-empty leaves, plus at most two per level
(the path being walked, the right edge), so a walk that visits more than
``2 · pieces + SPARE_VISITS`` blocks for the ``pieces`` of content it has yielded is
refused. Without that, a DAG of a few small blocks linking the same empty leaf (or a chain
of single links) over and over would keep a reader busy for hours yielding nothing.

A walk holds the blocks on one path from the root, decoded (about 7 times a block's size
for a node of many links): a path deeper than ``MAX_DEPTH`` levels, or whose blocks add
up to more than ``MAX_PATH_BYTES``, is refused. Importers' DAGs stay far below both (a
file of 2**40 one-byte chunks under nodes of two links is 40 levels deep; 174-link nodes
are about 8 KB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Protocol

from agents.store.base import MAX_CHUNK_SIZE, CorruptBlockError, StoreError
from agents.store.cid import CID, DAG_PB, RAW
from agents.store.dagpb import DagPbError, PBLink, PBNode, decode_node
from agents.store.unixfs import DataType, UnixFSData, UnixFSError, decode_data, leaf_frame

FetchBlock = Callable[[CID], bytes]

# Blocks a walk may visit beyond two per piece of content: room for the path from the root
# and the right edge of a balanced tree of any depth a file can have.
SPARE_VISITS = 256
MAX_DEPTH = 64
MAX_PATH_BYTES = 8 * 1024 * 1024


class ContentStream(Protocol):
    """The file's bytes in order (e.g. an HTTP response body)."""

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; ``b""`` only at the end."""


def decode_file_node(cid: CID, block: bytes) -> tuple[PBNode, UnixFSData]:
    """Decode a dag-pb block that must be a UnixFS file node (or leaf)."""
    try:
        node = decode_node(block)
        if node.data is None:
            raise UnixFSError("no UnixFS data")
        fs = decode_data(node.data)
    except (DagPbError, UnixFSError) as exc:
        raise CorruptBlockError(f"block {cid} is not a valid UnixFS node: {exc}") from exc
    if fs.type == DataType.DIRECTORY or fs.type == DataType.HAMT_SHARD:
        raise StoreError(f"{cid} is a UnixFS directory; the store reads files only")
    if fs.type not in (DataType.FILE, DataType.RAW):
        raise StoreError(f"{cid} is a UnixFS node of type {fs.type}, not a file")
    if node.links and len(fs.blocksizes) != len(node.links):
        raise CorruptBlockError(
            f"block {cid} has {len(node.links)} links but {len(fs.blocksizes)} block sizes"
        )
    own = len(fs.data) if fs.data is not None else 0
    total = own + sum(fs.blocksizes)
    if fs.filesize is not None and fs.filesize != total:
        raise CorruptBlockError(
            f"block {cid} says its file has {fs.filesize} bytes but its parts add up to {total}"
        )
    return node, fs


def node_links(cid: CID, block: bytes) -> tuple[PBLink, ...]:
    """The links of any block (none for raw blocks)."""
    if cid.codec == RAW:
        return ()
    try:
        return decode_node(block).links
    except DagPbError as exc:
        raise CorruptBlockError(f"block {cid} is not valid dag-pb: {exc}") from exc


def file_size(cid: CID, block: bytes) -> int:
    """The size of the file whose root block is ``block``."""
    if cid.codec == RAW:
        return len(block)
    _, fs = decode_file_node(cid, block)
    return (len(fs.data) if fs.data is not None else 0) + sum(fs.blocksizes)


def looks_like_leaf(link: PBLink, file_bytes: int) -> bool:
    """Whether a child is (by its CID and cumulative size) a leaf holding ``file_bytes``."""
    if link.cid.codec == RAW:
        return True
    if link.cid.codec != DAG_PB or file_bytes > MAX_CHUNK_SIZE or link.tsize is None:
        return False
    return link.tsize == file_bytes + leaf_frame(file_bytes).overhead


class DagReader:
    """Yields a UnixFS file's content from its root CID; see the module docstring."""

    def __init__(self, fetch: FetchBlock, stream: ContentStream | None = None) -> None:
        self._fetch = fetch
        self._stream = stream
        self._visits = 0
        self._pieces = 0

    def content(self, root: CID, root_block: bytes | None = None) -> Iterator[bytes]:
        """The file's bytes, in pieces (one per leaf), each checked before it is yielded.

        ``root_block``: the root's block, already checked against ``root`` by the caller
        (it is then not fetched again).
        """
        if root.codec not in (DAG_PB, RAW):
            root.require_content()
        yield from self._subtree(root, None, 0, 0, root_block)
        if self._stream is not None and self._stream.read(1):
            raise CorruptBlockError(f"the content stream of {root} is longer than its DAG")

    def _visit(self, cid: CID) -> None:
        self._visits += 1
        if self._visits > 2 * self._pieces + SPARE_VISITS:
            raise CorruptBlockError(
                f"the DAG at {cid} takes {self._visits} blocks to yield {self._pieces} pieces "
                "of content; no importer writes a file DAG like that"
            )

    def _piece(self, data: bytes) -> bytes:
        self._pieces += 1
        return data

    def _subtree(
        self, cid: CID, expected: int | None, depth: int, path_bytes: int, block: bytes | None
    ) -> Iterator[bytes]:
        self._visit(cid)
        if depth > MAX_DEPTH:
            raise CorruptBlockError(
                f"the DAG is nested deeper than {MAX_DEPTH} levels at {cid}; "
                "no importer writes a file DAG like that"
            )
        if block is None:
            block = self._fetch(cid)
        path_bytes += len(block)
        if path_bytes > MAX_PATH_BYTES:
            raise CorruptBlockError(
                f"the DAG's blocks from its root to {cid} hold more than {MAX_PATH_BYTES} "
                "bytes; no importer writes a file DAG like that"
            )
        if cid.codec == RAW:
            self._check_size(cid, len(block), expected)
            if block:
                yield self._piece(self._known(cid, block))
            return
        node, fs = decode_file_node(cid, block)
        own = bytes(fs.data) if fs.data is not None else b""
        self._check_size(cid, len(own) + sum(fs.blocksizes), expected)
        if own:
            yield self._piece(self._known(cid, own))
        for link, size in zip(node.links, fs.blocksizes, strict=True):
            if self._stream is not None and looks_like_leaf(link, size):
                self._visit(link.cid)
                if size:
                    yield self._piece(self._streamed_leaf(link.cid, size))
            else:
                yield from self._subtree(link.cid, size, depth + 1, path_bytes, None)

    @staticmethod
    def _check_size(cid: CID, actual: int, expected: int | None) -> None:
        if expected is not None and actual != expected:
            raise CorruptBlockError(
                f"the DAG is inconsistent: {cid} holds {actual} bytes, its parent says {expected}"
            )

    def _take(self, cid: CID, size: int) -> bytes:
        assert self._stream is not None
        pieces: list[bytes] = []
        remaining = size
        while remaining:
            piece = self._stream.read(remaining)
            if not piece:
                raise CorruptBlockError(f"the content stream ended inside block {cid}")
            pieces.append(piece)
            remaining -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _known(self, cid: CID, data: bytes) -> bytes:
        # Bytes that came from a checked block; a stream must agree with them.
        if self._stream is not None and self._take(cid, len(data)) != data:
            raise CorruptBlockError(f"the content stream disagrees with block {cid}")
        return data

    def _streamed_leaf(self, cid: CID, size: int) -> bytes:
        data = self._take(cid, size)
        if cid.codec == RAW:
            if hashlib.sha256(data).digest() == cid.digest:
                return data
        else:
            for kind in (DataType.FILE, DataType.RAW):
                frame = leaf_frame(size, kind)
                digest = hashlib.sha256(frame.prefix)
                digest.update(data)
                digest.update(frame.suffix)
                if digest.digest() == cid.digest:
                    return data
            # A leaf encoded some other way: check it against the block itself.
            if b"".join(DagReader(self._fetch).content(cid)) == data:
                return data
        raise CorruptBlockError(f"the content stream's bytes for block {cid} do not match its CID")
