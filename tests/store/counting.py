"""A blockstore that records every access to a block's file, to count what reads cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agents.store.blockstore import Blockstore
from agents.store.cid import CID
from agents.store.embedded import EmbeddedStore


@dataclass(frozen=True)
class Access:
    """One access to a block's file: which method, and whether the block was hashed."""

    method: str
    cid: CID
    hashed: bool


class CountingBlockstore(Blockstore):
    """A blockstore that records every access to a block's file."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync=False)
        self.accesses: list[Access] = []

    def get(self, cid: CID) -> bytes:
        self.accesses.append(Access("get", cid, hashed=True))
        return super().get(cid)

    def get_or_size(self, cid: CID, read: Callable[[bytes], bool]) -> bytes | int:
        found = super().get_or_size(cid, read)
        self.accesses.append(Access("get_or_size", cid, hashed=isinstance(found, bytes)))
        return found

    def size(self, cid: CID) -> int | None:
        self.accesses.append(Access("size", cid, hashed=False))
        return super().size(cid)

    def per_block(self) -> Counter[CID]:
        return Counter(a.cid for a in self.accesses)

    def hashed(self) -> Counter[CID]:
        return Counter(a.cid for a in self.accesses if a.hashed)


def counting(store: EmbeddedStore) -> CountingBlockstore:
    """Make ``store`` read through a counting blockstore from now on, and return it."""
    blocks = CountingBlockstore(store._blocks.root)
    store._blocks = blocks
    return blocks
