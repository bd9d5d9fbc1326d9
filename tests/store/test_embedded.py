"""The embedded store: round trips, verified reads, pins and garbage collection, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.errors import ConfigError
from agents.files import TEMP_PREFIX
from agents.store import (
    AddOptions,
    CorruptBlockError,
    InvalidCIDError,
    MissingBlockError,
    StoreError,
    UnsupportedCIDError,
    cid_of_bytes,
    open_store,
)
from agents.store.cid import CID
from agents.store.embedded import EmbeddedStore
from agents.store.reader import node_links

SMALL = AddOptions(chunk_size=100, max_links=3)
SMALL_V1 = AddOptions(cid_version=1, chunk_size=100, max_links=3)


def _data(size: int, seed: int = 1) -> bytes:
    return bytes((i * 131 + seed * 17 + (i >> 8)) % 256 for i in range(size))


def _block_path(store: EmbeddedStore, cid: CID) -> Path:
    return store.root / "blocks" / cid.digest.hex()[:2] / cid.digest.hex()


def _leaves(store: EmbeddedStore, root: CID) -> list[CID]:
    links = node_links(root, store.get_block(root))
    if not links:
        return [root]
    return [leaf for link in links for leaf in _leaves(store, link.cid)]


# Around chunk (100) and link (3) boundaries: 1, 3, 4, 9 and 10 chunks, and 27 + 1.
@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 300, 301, 399, 900, 901, 1000, 2701])
@pytest.mark.parametrize("options", [SMALL, SMALL_V1], ids=["v0", "v1"])
def test_round_trip(store: EmbeddedStore, size: int, options: AddOptions) -> None:
    data = _data(size)
    cid = store.put_bytes(data, options)
    assert cid == cid_of_bytes(data, options)
    assert cid.startswith("b" if options.cid_version == 1 else "Qm")
    assert store.get_bytes(cid) == data
    assert store.has(cid)
    assert store.content_size(cid) == size
    assert cid in store.pins()


def test_round_trip_with_default_options_and_a_file(store: EmbeddedStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 262_144 + 5)
    path = tmp_path / "artifact.bin"
    path.write_bytes(data)
    cid = store.put_file(path)
    assert cid == cid_of_bytes(data)
    out = tmp_path / "out.bin"
    store.get_file(cid, out)
    assert out.read_bytes() == data
    assert [len(piece) for piece in store.open(cid)] == [262_144, 262_144, 262_144, 5]


def test_json_round_trip(store: EmbeddedStore) -> None:
    value = {"b": [1, 2.5, "x"], "a": None, "é": True}
    cid = store.put_json(value)
    assert store.get_bytes(cid) == b'{"a":null,"b":[1,2.5,"x"],"\xc3\xa9":true}'
    assert store.get_json(cid) == value
    not_json = store.put_bytes(b"\xff\xfe")
    with pytest.raises(StoreError, match=f"artifact {not_json} is not valid JSON"):
        store.get_json(not_json)


def test_same_content_is_stored_once(store: EmbeddedStore) -> None:
    data = _data(1000)
    v0 = store.put_bytes(data, AddOptions(chunk_size=100, max_links=3))
    v1 = store.put_bytes(
        data, AddOptions(cid_version=1, raw_leaves=False, chunk_size=100, max_links=3)
    )
    assert v0 != v1
    count = len(list((store.root / "blocks").rglob("*")))
    store.put_bytes(data, AddOptions(chunk_size=100, max_links=3))
    assert len(list((store.root / "blocks").rglob("*"))) == count
    # The leaves are the same dag-pb blocks under both versions.
    assert {c.digest for c in _leaves(store, CID.parse(v0))} == {
        c.digest for c in _leaves(store, CID.parse(v1))
    }


@pytest.mark.parametrize("which", ["root", "leaf", "inner"])
def test_flipped_byte_is_detected(store: EmbeddedStore, which: str) -> None:
    data = _data(1000)
    cid = CID.parse(store.put_bytes(data, SMALL))
    if which == "root":
        target = cid
    elif which == "leaf":
        target = _leaves(store, cid)[5]
    else:
        target = node_links(cid, store.get_block(cid))[1].cid
    path = _block_path(store, target)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptBlockError, match=f"block {target} is corrupt"):
        store.get_bytes(str(cid))
    assert store.verify().corrupt == (path,)


def test_corruption_is_found_before_bad_bytes_are_yielded(store: EmbeddedStore) -> None:
    data = _data(1000)
    cid = CID.parse(store.put_bytes(data, SMALL))
    bad = _leaves(store, cid)[3]
    path = _block_path(store, bad)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    received = b""
    with pytest.raises(CorruptBlockError, match=str(bad)):
        for piece in store.open(str(cid)):
            received += piece
    assert received == data[:300]


def test_truncated_block_is_detected(store: EmbeddedStore) -> None:
    cid = CID.parse(store.put_bytes(_data(1000), SMALL_V1))
    leaf = _leaves(store, cid)[2]
    path = _block_path(store, leaf)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptBlockError, match=f"block {leaf} is corrupt"):
        store.get_bytes(str(cid))
    assert not store.has(str(cid))


def test_missing_block_is_detected(store: EmbeddedStore) -> None:
    cid = CID.parse(store.put_bytes(_data(1000), SMALL))
    leaf = _leaves(store, cid)[7]
    _block_path(store, leaf).unlink()
    assert not store.has(str(cid))
    with pytest.raises(MissingBlockError, match=f"block {leaf} is not in the store"):
        store.get_bytes(str(cid))
    with pytest.raises(StoreError, match=f"cannot pin {cid}"):
        store.pin(str(cid))


def test_missing_root(store: EmbeddedStore) -> None:
    cid = cid_of_bytes(b"never added")
    assert not store.has(cid)
    with pytest.raises(MissingBlockError, match=f"block {cid} is not in the store"):
        store.open(cid)


def test_gc_keeps_pins_and_removes_the_rest(store: EmbeddedStore) -> None:
    kept = store.put_bytes(_data(1000, seed=1), SMALL)
    dropped = store.put_bytes(_data(1000, seed=2), SMALL, pin=False)
    shared = _data(1000, seed=1)[:500]
    partly_shared = store.put_bytes(shared + _data(500, seed=3), SMALL)
    store.unpin(partly_shared)
    report = store.gc()
    assert report.removed_blocks > 0 and report.removed_bytes > 0
    assert store.has(kept) and store.get_bytes(kept) == _data(1000, seed=1)
    assert not store.has(dropped)
    assert not store.has(partly_shared)
    assert store.pins() == [kept]
    assert store.gc().removed_blocks == 0


def test_gc_refuses_when_a_pin_is_incomplete(store: EmbeddedStore) -> None:
    cid = CID.parse(store.put_bytes(_data(1000), SMALL))
    store.put_bytes(b"garbage", pin=False)
    inner = node_links(cid, store.get_block(cid))[0].cid
    _block_path(store, inner).unlink()
    before = sorted((store.root / "blocks").rglob("*"))
    with pytest.raises(StoreError, match=f"nothing removed: pinned {cid} is incomplete"):
        store.gc()
    assert sorted((store.root / "blocks").rglob("*")) == before


def test_pin_unpin_pins(store: EmbeddedStore) -> None:
    cid = store.put_bytes(b"content", pin=False)
    assert store.pins() == []
    store.pin(cid)
    store.pin(cid)
    assert store.pins() == [cid]
    store.unpin(cid)
    assert store.pins() == []
    with pytest.raises(StoreError, match=f"{cid} is not pinned"):
        store.unpin(cid)


def test_verify_repair_removes_corrupt_blocks(store: EmbeddedStore) -> None:
    cid = CID.parse(store.put_bytes(_data(500), SMALL))
    path = _block_path(store, _leaves(store, cid)[0])
    path.write_bytes(b"junk")
    report = store.verify(repair=True)
    assert report.corrupt == (path,) and report.removed == 1
    assert not path.exists()
    store.put_bytes(_data(500), SMALL)
    assert store.get_bytes(str(cid)) == _data(500)


def test_truncated_copy_is_rewritten_by_a_later_add(store: EmbeddedStore) -> None:
    data = _data(500)
    cid = CID.parse(store.put_bytes(data, SMALL))
    path = _block_path(store, _leaves(store, cid)[1])
    path.write_bytes(path.read_bytes()[:10])
    store.put_bytes(data, SMALL)
    assert store.get_bytes(str(cid)) == data


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("", InvalidCIDError, "empty CID"),
        ("not-a-cid", InvalidCIDError, "multibase prefix 'n'"),
        ("Qm" + "0" * 44, InvalidCIDError, "invalid base58 character '0'"),
        ("bafy!!", InvalidCIDError, "bad 'b' encoding"),
        # "hello world" raw CID with its last characters cut off.
        ("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n", InvalidCIDError, "has 31"),
        # dag-cbor (0x71) and dag-json (0x0129) CIDs are well formed but not files.
        (
            "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
            UnsupportedCIDError,
            "names a dag-cbor block",
        ),
        (
            "baguqeerahdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
            UnsupportedCIDError,
            "names a dag-json block",
        ),
        # identity multihash (0x00) of 3 bytes: "abc"
        ("bafkqaaydmjrq", UnsupportedCIDError, "only sha2-256 is supported"),
    ],
)
def test_bad_cids(store: EmbeddedStore, text: str, error: type[Exception], message: str) -> None:
    for call in (store.open, store.has, store.pin, store.unpin):
        with pytest.raises(error, match=message):
            call(text)


def test_bad_input(store: EmbeddedStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no such file: .*missing\.bin"):
        store.put_file(tmp_path / "missing.bin")
    with pytest.raises(StoreError, match="is a directory"):
        store.put_file(tmp_path)
    with pytest.raises(StoreError, match="chunk_size must be an integer from 1 to 1048576"):
        AddOptions(chunk_size=0)
    with pytest.raises(StoreError, match="max_links must be an integer from 2"):
        AddOptions(max_links=1)
    with pytest.raises(StoreError, match="cid_version must be an integer from 0 to 1"):
        AddOptions(cid_version=2)
    assert store.pins() == []


def test_store_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="is not empty and is not a veritrain store"):
        EmbeddedStore(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="exists and is not a directory"):
        EmbeddedStore(tmp_path / "file")


def test_reopening_keeps_content(tmp_path: Path) -> None:
    cid = EmbeddedStore(tmp_path / "s").put_bytes(b"durable")
    assert EmbeddedStore(tmp_path / "s").get_bytes(cid) == b"durable"


def test_open_store_picks_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VERITRAIN_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    default = open_store()
    assert isinstance(default, EmbeddedStore)
    assert default.root == tmp_path / "xdg" / "veritrain" / "store"
    monkeypatch.setenv("VERITRAIN_STORE", str(tmp_path / "env"))
    from_env = open_store()
    assert isinstance(from_env, EmbeddedStore) and from_env.root == tmp_path / "env"
    explicit = open_store(tmp_path / "explicit")
    assert isinstance(explicit, EmbeddedStore) and explicit.root == tmp_path / "explicit"
    with pytest.raises(ConfigError, match="unsupported scheme 'ftp'"):
        open_store("ftp://example.org/store")


def test_get_file_into_a_missing_directory(store: EmbeddedStore, tmp_path: Path) -> None:
    cid = store.put_bytes(b"content")
    with pytest.raises(StoreError, match=r"cannot write .*nowhere"):
        store.get_file(cid, tmp_path / "nowhere" / "out")
    with pytest.raises(MissingBlockError):
        store.get_file(cid_of_bytes(b"absent"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_store_being_created_by_another_process_is_not_foreign(tmp_path: Path) -> None:
    # What another process leaves between creating the directory and its marker.
    root = tmp_path / "new"
    (root / "blocks").mkdir(parents=True)
    (root / f"{TEMP_PREFIX}veritrain-store.json.4242.1.cafe").write_text("{}")
    store = EmbeddedStore(root)
    assert store.get_bytes(store.put_bytes(b"x")) == b"x"
