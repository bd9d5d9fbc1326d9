"""The auditor's store: reads pass through, writes are refused, and a corrupt copy is told
from an absent one."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.audit.store import WatchedStore
from agents.store import CorruptBlockError, MissingBlockError, StoreError, open_store
from agents.store.cid import CID


def _block(store_dir: Path, cid: str) -> Path:
    matches = list(store_dir.rglob(CID.parse(cid).digest.hex()))
    assert len(matches) == 1
    return matches[0]


def test_reads_pass_and_writes_are_refused(tmp_path: Path) -> None:
    inner = open_store(tmp_path / "store")
    cid = inner.put_bytes(b"checkpoint bytes")
    watched = WatchedStore(inner)
    assert watched.get_bytes(cid) == b"checkpoint bytes" and watched.has(cid)
    for write in (
        lambda: watched.put_bytes(b"x"),
        lambda: watched.put_file(tmp_path / "f"),
        lambda: watched.pin(cid),
        lambda: watched.unpin(cid),
    ):
        with pytest.raises(StoreError, match="does not write"):
            write()
    assert watched.corrupt == {} and watched.missing == {}


def test_a_corrupt_copy_is_recorded_as_corrupt(tmp_path: Path) -> None:
    inner = open_store(tmp_path / "store")
    cid = inner.put_bytes(b"a" * 5000)
    block = _block(tmp_path / "store", cid)
    data = bytearray(block.read_bytes())
    data[-1] ^= 1
    block.write_bytes(bytes(data))
    watched = WatchedStore(inner)
    assert not watched.has(cid)
    assert cid in watched.corrupt and watched.missing == {}
    with pytest.raises(CorruptBlockError):
        watched.get_bytes(cid)


def test_an_absent_artifact_is_recorded_as_missing(tmp_path: Path) -> None:
    inner = open_store(tmp_path / "store")
    cid = open_store(tmp_path / "elsewhere").put_bytes(b"never published here")
    watched = WatchedStore(inner)
    assert not watched.has(cid)
    assert cid in watched.missing and watched.corrupt == {}
    with pytest.raises(MissingBlockError):
        watched.get_bytes(cid)
