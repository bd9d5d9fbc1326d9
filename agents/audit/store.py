"""The auditor's view of a store: read only, and every missing or corrupt block remembered,
so that the auditor's own broken copy is never mistaken for a fault of the proof."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from agents.store import (
    ArtifactStore,
    CorruptBlockError,
    MissingBlockError,
    Retrieval,
    StoreError,
    UnavailableError,
)
from agents.store.base import AddOptions


class WatchedStore(ArtifactStore):
    """Delegates reads to ``inner``; refuses writes; records what could not be read."""

    def __init__(self, inner: ArtifactStore) -> None:
        self.inner = inner
        self.corrupt: dict[str, str] = {}  # cid -> the store's message
        self.missing: dict[str, str] = {}

    def open(self, cid: str) -> Iterator[bytes]:
        try:
            yield from self.inner.open(cid)
        except CorruptBlockError as exc:
            self.corrupt.setdefault(cid, str(exc))
            raise
        except MissingBlockError as exc:
            self.missing.setdefault(cid, str(exc))
            raise

    def has(self, cid: str) -> bool:
        return self._present(cid, self.inner.has(cid))

    def require_available(self, cid: str, retrieval: Retrieval | None = None) -> None:
        try:
            self.inner.require_available(cid, retrieval)
        except UnavailableError:
            if not self._present(cid, False):
                raise

    def _present(self, cid: str, present: bool) -> bool:
        if not present:
            # Tell a copy that is damaged from one that is absent: only the first is the
            # auditor's own trouble whatever the chain says.
            try:
                for _ in self.open(cid):
                    pass
            except StoreError:
                pass
            else:
                return True
        return present

    def put_bytes(self, data: bytes, options: AddOptions | None = None) -> str:
        raise StoreError("an audit does not write to the store")

    def put_file(self, path: Path, options: AddOptions | None = None) -> str:
        raise StoreError("an audit does not write to the store")

    def pin(self, cid: str) -> None:
        raise StoreError("an audit does not write to the store")

    def unpin(self, cid: str) -> None:
        raise StoreError("an audit does not write to the store")

    def pins(self) -> list[str]:
        return self.inner.pins()
