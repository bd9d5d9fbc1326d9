"""Blocks on disk, one file each, written atomically and checked on every read.

Layout: ``blocks/<first two hex digits of the digest>/<sha2-256 digest in hex>``. A block
is keyed by its digest alone (the codec lives in the CID), so the same bytes named by a
CIDv0 and a CIDv1 are stored once.

Writes go to a temporary file in the block's own directory, are flushed to disk
(``fsync``), and are then renamed over the final name: a reader, another process, or the
store after a crash sees either no block or the whole block, never a torn one. A
temporary file left by a killed writer is never read as a block and is removed by
garbage collection.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from agents.files import TEMP_PREFIX, fsync_directory, write_atomically
from agents.store.base import CorruptBlockError, MissingBlockError, StoreError
from agents.store.cid import CID
from agents.store.importer import Buffer

# Nodes exchange blocks of at most 2 MiB; nothing larger is ever read as a block.
MAX_BLOCK_SIZE = 2 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")


class Blockstore:
    """Content-addressed block files under ``root``."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync

    def path(self, digest: bytes) -> Path:
        name = digest.hex()
        return self.root / name[:2] / name

    def _file(self, digest: bytes) -> str:
        # Reads name the file by a string: building a Path costs as much as opening it.
        name = digest.hex()
        return f"{self.root}/{name[:2]}/{name}"

    def _open(self, cid: CID, path: str) -> int:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise MissingBlockError(f"block {cid} is not in the store") from exc

    @staticmethod
    def _checked(cid: CID, fd: int, size: int, path: str) -> bytes:
        """The whole block from the open file ``fd`` of ``size`` bytes, hashed against ``cid``."""
        if size > MAX_BLOCK_SIZE:
            raise CorruptBlockError(
                f"block {cid} is corrupt: {size} bytes, more than any block can have"
            )
        # One byte more than the file had: a block that grew since is seen as corrupt.
        data = os.pread(fd, size + 1, 0)
        if hashlib.sha256(data).digest() != cid.digest:
            raise CorruptBlockError(
                f"block {cid} is corrupt: its {len(data)} bytes on disk ({path}) do not hash "
                "to its CID"
            )
        return data

    def get(self, cid: CID) -> bytes:
        """The block named by ``cid``, after checking that its bytes hash to the CID.

        One open of the block's file; :class:`MissingBlockError` if it is absent,
        :class:`CorruptBlockError` if its bytes do not hash to the CID.
        """
        path = self._file(cid.digest)
        fd = self._open(cid, path)
        try:
            return self._checked(cid, fd, os.fstat(fd).st_size, path)
        finally:
            os.close(fd)

    def get_or_size(self, cid: CID, read: Callable[[bytes], bool]) -> bytes | int:
        """Look at a block's first byte (``b""`` if it is empty) in one open of its file: if
        ``read`` says so, the whole block, checked against ``cid`` as :meth:`get` does; else
        only its size in bytes, the rest neither read nor hashed.

        :class:`MissingBlockError` if the block is absent; :class:`CorruptBlockError` for a
        block read whole whose bytes do not hash to the CID.
        """
        path = self._file(cid.digest)
        fd = self._open(cid, path)
        try:
            size = os.fstat(fd).st_size
            if not read(os.pread(fd, 1, 0)):
                return size
            return self._checked(cid, fd, size, path)
        finally:
            os.close(fd)

    def size(self, cid: CID) -> int | None:
        """The stored block's size in bytes, or ``None`` if it is absent."""
        try:
            return os.stat(self._file(cid.digest)).st_size
        except FileNotFoundError:
            return None

    def put(self, cid: CID, parts: Sequence[Buffer]) -> Path | None:
        """Store a block atomically unless an intact-looking copy exists.

        Returns the directory that got a new entry (to make durable), or ``None``.
        """
        path = self.path(cid.digest)
        total = sum(len(p) for p in parts)
        try:
            if path.stat().st_size == total:
                return None
        except FileNotFoundError:
            pass
        directory = path.parent
        try:
            directory.mkdir(exist_ok=True)
            write_atomically(path, parts, fsync=self.fsync)
        except OSError as exc:
            raise StoreError(f"cannot write block {cid} into {directory}: {exc}") from exc
        return directory

    def delete(self, digest: bytes) -> int:
        """Remove a block; return the bytes freed (0 if it was already gone)."""
        path = self.path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def digests(self) -> Iterator[tuple[bytes, Path]]:
        """Every stored block's digest and path (temporary files excluded)."""
        for shard in sorted(self._shards()):
            for entry in os.scandir(shard):
                name = entry.name
                if len(name) == 64 and name[:2] == shard.name and set(name) <= _HEX:
                    yield bytes.fromhex(name), Path(entry.path)

    def temp_files(self) -> Iterator[Path]:
        """Temporary files of writes in progress or of writers that died."""
        for shard in self._shards():
            for entry in os.scandir(shard):
                if entry.name.startswith(TEMP_PREFIX):
                    yield Path(entry.path)

    def _shards(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for entry in os.scandir(self.root):
            if entry.is_dir() and len(entry.name) == 2 and set(entry.name) <= _HEX:
                yield Path(entry.path)


class BlockBatch:
    """The blocks of one import; :meth:`sync` makes every new directory entry durable."""

    def __init__(self, blocks: Blockstore) -> None:
        self._blocks = blocks
        self._dirty: set[Path] = set()
        self.blocks_written = 0

    def put_block(self, cid: CID, parts: Sequence[Buffer]) -> None:
        directory = self._blocks.put(cid, parts)
        if directory is not None:
            self._dirty.add(directory)
            self.blocks_written += 1

    def sync(self) -> None:
        if self._blocks.fsync:
            for directory in sorted(self._dirty):
                fsync_directory(directory)
            if self._dirty:
                fsync_directory(self._blocks.root)
        self._dirty.clear()
