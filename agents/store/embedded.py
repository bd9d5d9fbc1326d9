"""The embedded store: an IPFS-compatible blockstore in a directory, shared by processes.

Directory layout::

    <root>/veritrain-store.json   format marker
    <root>/blocks/xx/<digest>     blocks (see :mod:`agents.store.blockstore`)
    <root>/pins/<cid>             one empty file per pinned CID (recursive pins)
    <root>/lock                   the garbage-collection lock

Several processes may use one directory at once. Every add and pin holds the lock
*shared* from its first block until its pin is recorded; garbage collection holds it
*exclusively*, so it never sees a half-added file whose blocks it would remove. Reads
take no lock; a read of unpinned content may fail if garbage collection removes it
meanwhile (as in Kubo).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from agents.files import TEMP_PREFIX, fsync_directory, write_atomically
from agents.store.base import (
    AddOptions,
    ArtifactStore,
    CorruptBlockError,
    MissingBlockError,
    StoreError,
)
from agents.store.blockstore import BlockBatch, Blockstore
from agents.store.cid import CID, DAG_PB, RAW, parse_content_cid
from agents.store.dagpb import has_links
from agents.store.importer import (
    BlockSink,
    Buffer,
    ImportResult,
    import_bytes,
    import_file,
    import_stream,
)
from agents.store.reader import DagReader, file_size, node_links

FORMAT_NAME = "veritrain-blockstore"
FORMAT_VERSION = 1
MARKER = "veritrain-store.json"


@dataclass(frozen=True)
class GcReport:
    """What one garbage collection did."""

    removed_blocks: int
    removed_bytes: int
    removed_temp_files: int
    kept_blocks: int


@dataclass(frozen=True)
class VerifyReport:
    """The result of checking every stored block against its digest."""

    checked_blocks: int
    corrupt: tuple[Path, ...]
    removed: int


class EmbeddedStore(ArtifactStore):
    """An :class:`ArtifactStore` in a local directory; see the module docstring."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).expanduser()
        self._open_or_create()
        self._blocks = Blockstore(self.root / "blocks", fsync=fsync)
        self._pins = self.root / "pins"

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"

    @property
    def location(self) -> str:
        return str(self.root)

    def _open_or_create(self) -> None:
        marker = self.root / MARKER
        try:
            if marker.is_file():
                self._check_marker(marker)
            else:
                self._create(marker)
            for sub in ("blocks", "pins"):
                (self.root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot open the store at {self.root}: {exc}") from exc

    def _check_marker(self, marker: Path) -> None:
        try:
            info = json.loads(marker.read_text())
        except ValueError as exc:
            raise StoreError(f"{marker} is unreadable: {exc}") from exc
        if info.get("format") != FORMAT_NAME or info.get("version") != FORMAT_VERSION:
            raise StoreError(
                f"{self.root} holds a store of format {info.get('format')!r} version "
                f"{info.get('version')!r}; this veritrain reads {FORMAT_NAME} "
                f"version {FORMAT_VERSION}"
            )

    def _create(self, marker: Path) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"store location {self.root} exists and is not a directory")
        if self.root.is_dir():
            # Entries a store being created by another process right now may have made.
            foreign = [
                e.name
                for e in os.scandir(self.root)
                if e.name not in ("blocks", "pins", "lock", MARKER)
                and not e.name.startswith(f"{TEMP_PREFIX}{MARKER}")
            ]
            if marker.is_file():  # another process finished creating it since we looked
                self._check_marker(marker)
                return
            if foreign:
                raise StoreError(
                    f"{self.root} is not empty and is not a veritrain store (no {MARKER}); "
                    "choose an empty or new directory"
                )
        self.root.mkdir(parents=True, exist_ok=True)
        marker_text = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION}) + "\n"
        write_atomically(marker, marker_text.encode())

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        # A new open file description per use: flock then also orders threads of one process.
        try:
            fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot lock the store at {self.root}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -- adding ---------------------------------------------------------------------------

    def import_with(self, run: Callable[[BlockSink], ImportResult], *, pin: bool) -> ImportResult:
        """Run an import whose blocks go into this store, then pin its root if asked.

        ``run`` gets the sink to give to a :class:`~agents.store.importer.FileImporter`.
        The garbage-collection lock is held shared throughout.
        """
        with self._locked(exclusive=False):
            batch = BlockBatch(self._blocks)
            result = run(batch)
            batch.sync()
            if pin:
                self._write_pin(result.cid)
        return result

    def put_bytes(
        self, data: Buffer, options: AddOptions | None = None, *, pin: bool = True
    ) -> str:
        return str(self.import_with(lambda sink: import_bytes(data, options, sink), pin=pin).cid)

    def put_file(
        self, path: str | os.PathLike[str], options: AddOptions | None = None, *, pin: bool = True
    ) -> str:
        return str(self.import_with(lambda sink: import_file(path, options, sink), pin=pin).cid)

    def put_stream(
        self, reader: BinaryIO, options: AddOptions | None = None, *, pin: bool = True
    ) -> str:
        """Store everything ``reader`` yields and return its CID."""
        return str(self.import_with(lambda sink: import_stream(reader, options, sink), pin=pin).cid)

    # -- reading --------------------------------------------------------------------------

    def open(self, cid: str) -> Iterator[bytes]:
        """Stream a file's content; the root block is read and checked before this returns,
        and is not read again by the stream."""
        root = parse_content_cid(cid)
        return DagReader(self._blocks.get).content(root, self._blocks.get(root))

    def get_block(self, cid: str | CID) -> bytes:
        """One block's bytes (checked against the CID)."""
        parsed = cid if isinstance(cid, CID) else CID.parse(cid)
        return self._blocks.get(parsed)

    def block_size(self, cid: str | CID) -> int:
        """One stored block's size; :class:`MissingBlockError` if absent."""
        parsed = cid if isinstance(cid, CID) else CID.parse(cid)
        size = self._blocks.size(parsed)
        if size is None:
            raise MissingBlockError(f"block {parsed} is not in the store")
        return size

    def content_size(self, cid: str | CID) -> int:
        """The size of the file named by ``cid``, from its root block."""
        parsed = cid if isinstance(cid, CID) else parse_content_cid(cid)
        return file_size(parsed, self._blocks.get(parsed))

    def has(self, cid: str) -> bool:
        """Whether every block of the DAG under ``cid`` is in this store: the root and every
        node with links read whole and checked against its CID, every other block (a leaf)
        present with the size its parent's link records. A leaf's bytes are not read: a
        missing leaf, or one of another size, makes this ``False``; a leaf of the right size
        whose bytes do not match its CID is found by the read that uses it
        (:class:`CorruptBlockError`). The walk opens each block's file once (a raw leaf is
        only looked up) and hashes no leaf; see :meth:`_dag_blocks`.
        """
        root = parse_content_cid(cid)
        try:
            for _ in self._dag_blocks(root):
                pass
        except (MissingBlockError, CorruptBlockError):
            return False
        return True

    def _dag_blocks(self, root: CID) -> Iterator[CID]:
        """Every block of the DAG under ``root``; raises if one is missing.

        Nodes with links are read (and checked); a leaf only has to exist with the size its
        parent records. A dag-pb block without links is recognised by its first byte, since
        canonical dag-pb writes links before data: one open of its file gives that byte and
        its size, or the whole node when it has links. A block is followed once per size a
        link records for it, however often the DAG repeats that link, so the walk is linear
        in the blocks stored rather than in the paths through them. The walk is depth first,
        holding the links of the nodes on one path (not their blocks).
        """
        yield root
        seen: set[tuple[CID, int | None]] = set()
        path = [iter(node_links(root, self._blocks.get(root)))]
        while path:
            link = next(path[-1], None)
            if link is None:
                path.pop()
                continue
            child = link.cid
            if (child, link.tsize) in seen:
                continue
            seen.add((child, link.tsize))
            if child.codec not in (DAG_PB, RAW):
                child.require_content()
            yield child
            found = (
                self._blocks.get_or_size(child, has_links)
                if child.codec == DAG_PB
                else self._blocks.size(child)
            )
            if found is None:
                raise MissingBlockError(f"block {child} is not in the store")
            if isinstance(found, bytes):
                path.append(iter(node_links(child, found)))
                continue
            # A leaf: its cumulative size is its own size.
            if link.tsize is not None and found != link.tsize:
                raise CorruptBlockError(
                    f"block {child} is corrupt: {found} bytes on disk, its parent says {link.tsize}"
                )

    # -- pins -----------------------------------------------------------------------------

    def _pin_path(self, cid: CID) -> Path:
        return self._pins / str(cid)

    def _write_pin(self, cid: CID) -> None:
        path = self._pin_path(cid)
        if path.exists():
            return
        try:
            write_atomically(path, b"")
        except OSError as exc:
            raise StoreError(f"cannot record the pin of {cid} in {self._pins}: {exc}") from exc
        if self._blocks.fsync:
            fsync_directory(self._pins)

    def pin(self, cid: str) -> None:
        root = parse_content_cid(cid)
        with self._locked(exclusive=False):
            try:
                for _ in self._dag_blocks(root):
                    pass
            except (MissingBlockError, CorruptBlockError) as exc:
                raise StoreError(f"cannot pin {root}: {exc}") from exc
            self._write_pin(root)

    def unpin(self, cid: str) -> None:
        root = parse_content_cid(cid)
        try:
            self._pin_path(root).unlink()
        except FileNotFoundError as exc:
            raise StoreError(f"{root} is not pinned") from exc

    def pins(self) -> list[str]:
        names = []
        for entry in os.scandir(self._pins):
            if entry.name.startswith("."):
                continue
            try:
                names.append(str(CID.parse(entry.name)))
            except StoreError:
                continue
        return sorted(names)

    # -- maintenance ----------------------------------------------------------------------

    def gc(self) -> GcReport:
        """Remove every block no pin reaches, and temporary files of dead writers.

        Holds the lock exclusively, so no add or pin is in progress. If a pinned DAG is
        incomplete, nothing is removed and the error names the pin and the block.
        """
        with self._locked(exclusive=True):
            keep: set[bytes] = set()
            for name in self.pins():
                pinned = CID.parse(name)
                try:
                    keep.update(c.digest for c in self._dag_blocks(pinned))
                except StoreError as exc:
                    raise StoreError(
                        f"garbage collection stopped, nothing removed: pinned {pinned} is "
                        f"incomplete ({exc}); add its content again or unpin it"
                    ) from exc
            removed = removed_bytes = kept = 0
            for digest, _path in list(self._blocks.digests()):
                if digest in keep:
                    kept += 1
                    continue
                removed_bytes += self._blocks.delete(digest)
                removed += 1
            temps = 0
            for tmp in list(self._blocks.temp_files()):
                tmp.unlink(missing_ok=True)
                temps += 1
            for tmp in self._pins.glob(TEMP_PREFIX + "*"):
                tmp.unlink(missing_ok=True)
        return GcReport(removed, removed_bytes, temps, kept)

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Check every stored block against its digest; with ``repair``, delete bad ones."""
        with self._locked(exclusive=repair):
            corrupt: list[Path] = []
            checked = 0
            for digest, path in self._blocks.digests():
                checked += 1
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    continue
                if hashlib.sha256(data).digest() != digest:
                    corrupt.append(path)
            removed = 0
            if repair:
                for path in corrupt:
                    path.unlink(missing_ok=True)
                    removed += 1
        return VerifyReport(checked, tuple(corrupt), removed)
