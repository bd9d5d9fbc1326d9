"""Kubo's file importer: fixed-size chunker plus balanced layout, streaming.

The DAG is exactly the one ``ipfs add`` builds (boxo's ``balanced.Layout``) for the same
options, so the root CID is the one Kubo prints:

- the input is cut into chunks of ``chunk_size`` bytes (the last one shorter; none for
  empty input);
- each chunk is a leaf: a raw block (raw leaves) or a dag-pb node whose UnixFS ``Data``
  is ``Type=File, Data=<chunk>, filesize=<length>``;
- a single leaf is the root itself; otherwise leaves are packed left to right under inner
  nodes of at most ``max_links`` children, every node full except along the right edge,
  and the tree has the least depth that holds every leaf (a right-edge node with a single
  child is kept, never collapsed into its parent);
- an inner node links its children with an empty name and the child's cumulative size
  (``Tsize``: the block's own length plus its children's ``Tsize``), and its UnixFS data
  is ``Type=File, filesize=<sum>, blocksizes=<each child's file size>``;
- leaves are CIDv1 when raw, otherwise they and the inner nodes use ``cid_version``.

Memory is bounded: one chunk buffer plus at most ``max_links`` child references per tree
level. Blocks go to a :class:`BlockSink` as soon as they exist, leaves first and the root
last, as ``parts`` (views, never concatenated) that the sink must consume before it
returns.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from agents.store.base import AddOptions, StoreError
from agents.store.cid import CID, DAG_PB, RAW
from agents.store.dagpb import encode_node
from agents.store.unixfs import LeafFrame, encode_inner, leaf_frame

Buffer = bytes | bytearray | memoryview


class BlockSink(Protocol):
    """Where an import puts its blocks (a blockstore, or nowhere for ``--only-hash``)."""

    def put_block(self, cid: CID, parts: Sequence[Buffer]) -> None:
        """Store the block ``b"".join(parts)`` under ``cid``; ``parts`` are only valid
        during the call."""


@dataclass(frozen=True)
class ImportResult:
    """The root of an imported file."""

    cid: CID
    # The DAG's cumulative size: what ``ipfs add`` reports as "Size".
    dag_size: int
    file_size: int


@dataclass(frozen=True)
class _Child:
    cid: CID
    tsize: int
    file_size: int


class FileImporter:
    """Builds the UnixFS DAG of one file from bytes fed in any pieces."""

    def __init__(self, options: AddOptions | None = None, sink: BlockSink | None = None) -> None:
        self.options = options if options is not None else AddOptions()
        self._sink = sink
        self._raw_leaves = self.options.uses_raw_leaves
        self._chunk_size = self.options.chunk_size
        self._buffer = bytearray(self._chunk_size)
        self._fill = 0
        self._leaves = 0
        self._levels: list[list[_Child]] = []
        self._full_frame = leaf_frame(self._chunk_size)
        self._finished = False

    def write(self, data: Buffer) -> None:
        """Feed the next bytes of the file."""
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        size = self._chunk_size
        pos = 0
        if self._fill:
            take = min(size - self._fill, len(view))
            self._buffer[self._fill : self._fill + take] = view[:take]
            self._fill += take
            pos = take
            if self._fill < size:
                return
            self._leaf(memoryview(self._buffer))
            self._fill = 0
        # Whole chunks straight from the caller's buffer: no copy.
        while len(view) - pos >= size:
            self._leaf(view[pos : pos + size])
            pos += size
        rest = len(view) - pos
        if rest:
            self._buffer[:rest] = view[pos:]
            self._fill = rest

    def write_chunk(self, chunk: memoryview) -> None:
        """Feed one whole chunk (or the short last one) from the caller's buffer.

        Only valid while no partial chunk is pending, i.e. when every earlier piece was
        whole chunks; this is the zero-copy path of :func:`import_stream`.
        """
        if self._fill:
            raise RuntimeError("write_chunk after a partial write")
        if len(chunk) > self._chunk_size:
            raise ValueError("chunk larger than the chunk size")
        if chunk:
            self._leaf(chunk)

    def finish(self) -> ImportResult:
        """Flush the last chunk, write the inner nodes, and return the root."""
        if self._finished:
            raise RuntimeError("import already finished")
        self._finished = True
        if self._fill:
            self._leaf(memoryview(self._buffer)[: self._fill])
            self._fill = 0
        if self._leaves == 0:
            self._leaf(memoryview(b""))
        if self._leaves == 1:
            root = self._levels[0][0]
        else:
            level = 0
            while True:
                node = self._inner(self._levels[level])
                if level + 1 == len(self._levels):
                    root = node
                    break
                self._push(level + 1, node)
                level += 1
        return ImportResult(root.cid, root.tsize, root.file_size)

    def _frame(self, length: int) -> LeafFrame:
        return self._full_frame if length == self._chunk_size else leaf_frame(length)

    def _leaf(self, chunk: memoryview) -> None:
        length = len(chunk)
        if self._raw_leaves:
            cid = CID(1, RAW, hashlib.sha256(chunk).digest())
            parts: tuple[Buffer, ...] = (chunk,)
            tsize = length
        else:
            frame = self._frame(length)
            digest = hashlib.sha256(frame.prefix)
            digest.update(chunk)
            digest.update(frame.suffix)
            cid = CID(self.options.cid_version, DAG_PB, digest.digest())
            parts = (frame.prefix, chunk, frame.suffix)
            tsize = length + frame.overhead
        if self._sink is not None:
            self._sink.put_block(cid, parts)
        self._leaves += 1
        self._push(0, _Child(cid, tsize, length))

    def _push(self, level: int, child: _Child) -> None:
        # A full node is closed only when another child arrives for its level, so the
        # tree never grows a level before it needs one.
        while True:
            if level == len(self._levels):
                self._levels.append([])
            nodes = self._levels[level]
            if len(nodes) < self.options.max_links:
                nodes.append(child)
                return
            parent = self._inner(nodes)
            self._levels[level] = [child]
            child = parent
            level += 1

    def _inner(self, children: list[_Child]) -> _Child:
        sizes = [c.file_size for c in children]
        file_size = sum(sizes)
        block = encode_node(
            [(c.cid.to_bytes(), c.tsize) for c in children], encode_inner(file_size, sizes)
        )
        cid = CID(self.options.cid_version, DAG_PB, hashlib.sha256(block).digest())
        if self._sink is not None:
            self._sink.put_block(cid, (block,))
        return _Child(cid, len(block) + sum(c.tsize for c in children), file_size)


def _read_full(reader: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``reader`` (short only at end of input); return the bytes read."""
    filled = 0
    readinto = getattr(reader, "readinto", None)
    while filled < len(view):
        if readinto is not None:
            n = readinto(view[filled:])
        else:
            piece = reader.read(len(view) - filled)
            n = len(piece)
            view[filled : filled + n] = piece
        if not n:
            break
        filled += n
    return filled


def import_stream(
    reader: BinaryIO, options: AddOptions | None = None, sink: BlockSink | None = None
) -> ImportResult:
    """Import everything ``reader`` yields, reading whole chunks into one reused buffer."""
    importer = FileImporter(options, sink)
    chunk = memoryview(bytearray(importer.options.chunk_size))
    while True:
        n = _read_full(reader, chunk)
        if n:
            importer.write_chunk(chunk[:n])
        if n < len(chunk):
            return importer.finish()


def import_file(
    path: str | os.PathLike[str], options: AddOptions | None = None, sink: BlockSink | None = None
) -> ImportResult:
    """Import a regular file, streaming (unbuffered reads straight into the chunk buffer)."""
    file_path = Path(path)
    try:
        handle = open(file_path, "rb", buffering=0)  # noqa: SIM115 (closed below)
    except FileNotFoundError as exc:
        raise StoreError(f"no such file: {file_path}") from exc
    except IsADirectoryError as exc:
        raise StoreError(f"{file_path} is a directory; only files can be added") from exc
    except PermissionError as exc:
        raise StoreError(f"cannot read {file_path}: permission denied") from exc
    with handle:
        if not os.path.isfile(file_path) and not _is_stream(handle):
            raise StoreError(f"{file_path} is not a regular file")
        return import_stream(handle, options, sink)


def _is_stream(handle: io.RawIOBase) -> bool:
    # FIFOs and character devices stream like stdin; sockets and the like are refused.
    mode = os.fstat(handle.fileno()).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def import_bytes(
    data: Buffer, options: AddOptions | None = None, sink: BlockSink | None = None
) -> ImportResult:
    """Import an in-memory buffer (chunks are views into it)."""
    importer = FileImporter(options, sink)
    importer.write(data)
    return importer.finish()


def cid_of_file(path: str | os.PathLike[str], options: AddOptions | None = None) -> str:
    """The CID ``ipfs add --only-hash`` prints for the file at ``path`` with ``options``."""
    return str(import_file(path, options).cid)


def cid_of_bytes(data: Buffer, options: AddOptions | None = None) -> str:
    """The CID ``ipfs add --only-hash`` prints for ``data`` with ``options``."""
    return str(import_bytes(data, options).cid)
