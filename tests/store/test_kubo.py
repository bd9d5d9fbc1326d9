"""The Kubo RPC client against ``store serve`` (real HTTP on loopback) and against servers
that misbehave: wrong CIDs, corrupt streams, transient errors, silence."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from agents.store import (
    AddOptions,
    BackendError,
    CorruptBlockError,
    InvalidCIDError,
    MissingBlockError,
    StoreError,
    cid_of_bytes,
    open_store,
)
from agents.store.cid import CID
from agents.store.embedded import EmbeddedStore
from agents.store.kubo import KuboStore
from agents.store.reader import node_links

FAST = {"retries": 1, "backoff": 0.01, "timeout": 5.0, "connect_timeout": 2.0}


def _data(size: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed + (i >> 10)) % 256 for i in range(size))


@pytest.fixture
def kubo(served: tuple[EmbeddedStore, str]) -> Iterator[tuple[EmbeddedStore, KuboStore]]:
    store, url = served
    client = KuboStore(url, **FAST)  # type: ignore[arg-type]
    yield store, client
    client.close()


@pytest.mark.parametrize(
    "options",
    [
        AddOptions(),
        AddOptions(cid_version=1),
        AddOptions(cid_version=1, raw_leaves=False, chunk_size=1000, max_links=4),
        AddOptions(chunk_size=1000, max_links=4, raw_leaves=True),
    ],
    ids=["v0", "v1", "v1-dagpb-small", "v0-raw-small"],
)
@pytest.mark.parametrize("size", [0, 11, 262_144, 700_001])
def test_add_and_cat(
    kubo: tuple[EmbeddedStore, KuboStore], options: AddOptions, size: int, tmp_path: Path
) -> None:
    store, client = kubo
    data = _data(size)
    cid = client.put_bytes(data, options)
    assert cid == cid_of_bytes(data, options)
    assert store.has(cid) and cid in store.pins()
    assert client.get_bytes(cid) == data
    assert client.has(cid)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    assert client.put_file(path, options) == cid
    out = tmp_path / "back.bin"
    client.get_file(cid, out)
    assert out.read_bytes() == data


def test_pins_through_the_client(kubo: tuple[EmbeddedStore, KuboStore]) -> None:
    store, client = kubo
    cid = client.put_bytes(b"unpinned", pin=False)
    assert client.pins() == []
    client.pin(cid)
    assert client.pins() == [cid] == store.pins()
    client.unpin(cid)
    assert client.pins() == []
    with pytest.raises(StoreError, match=f"{cid} is not pinned"):
        client.unpin(cid)
    assert client.version()["Server"] == "veritrain store serve"


def test_errors_through_the_client(kubo: tuple[EmbeddedStore, KuboStore], tmp_path: Path) -> None:
    store, client = kubo
    absent = cid_of_bytes(b"absent")
    assert not client.has(absent)
    with pytest.raises(MissingBlockError, match=f"block {absent} is not in the store"):
        client.open(absent)
    with pytest.raises(StoreError, match=f"cannot pin {absent}"):
        client.pin(absent)
    with pytest.raises(InvalidCIDError):
        client.open("Qm-not-a-cid")
    with pytest.raises(StoreError, match="no such file"):
        client.put_file(tmp_path / "missing")
    # A DAG with a missing leaf is not "had", and reading it fails at that leaf.
    cid = CID.parse(store.put_bytes(_data(5000), AddOptions(chunk_size=1000, max_links=3)))
    inner = node_links(cid, store.get_block(cid))[1].cid
    leaf = node_links(inner, store.get_block(inner))[0].cid
    (store.root / "blocks" / leaf.digest.hex()[:2] / leaf.digest.hex()).unlink()
    assert not client.has(str(cid))
    with pytest.raises(StoreError):
        client.get_bytes(str(cid))


def test_open_store_with_an_url(served: tuple[EmbeddedStore, str]) -> None:
    _, url = served
    client = open_store(url + "/api/v0/")
    assert isinstance(client, KuboStore) and client.url == url
    cid = client.put_json({"task": 1})
    assert client.get_json(cid) == {"task": 1}


# -- misbehaving servers ------------------------------------------------------------------

Query = dict[str, list[str]]
Answer = tuple[int, dict[str, str], bytes]
Respond = Callable[[str, Query, bytes], Answer]


@pytest.fixture
def scripted() -> Iterator[Callable[[Respond], str]]:
    """Start a loopback HTTP server whose answers a test scripts; returns its URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(respond: Respond) -> str:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = respond(url.path, parse_qs(url.query), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that hang up early are part of these tests

        server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _proxy(store: EmbeddedStore, cat: Callable[[bytes], bytes]) -> Respond:
    """Answers block/get honestly from ``store`` and cat through ``cat``."""

    def respond(
        path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        cid = query["arg"][0]
        if path.endswith("block/get"):
            return 200, {}, store.get_block(cid)
        if path.endswith("cat"):
            return 200, {}, cat(store.get_bytes(cid))
        return 404, {}, b"404 page not found"

    return respond


def test_corrupt_cat_stream_is_caught_before_bad_bytes(
    store: EmbeddedStore, scripted: Callable[[Respond], str]
) -> None:
    data = _data(5 * 262_144)
    cid = store.put_bytes(data)

    def flip(content: bytes) -> bytes:
        broken = bytearray(content)
        broken[3 * 262_144 + 10] ^= 0xFF
        return bytes(broken)

    client = KuboStore(scripted(_proxy(store, flip)), **FAST)  # type: ignore[arg-type]
    received = b""
    with pytest.raises(CorruptBlockError, match="do not match its CID"):
        for piece in client.open(cid):
            received += piece
    assert received == data[: 3 * 262_144]


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda content: content[:-1], "ended inside block"),
        (lambda content: content + b"!", "longer than its DAG"),
    ],
    ids=["short", "long"],
)
def test_cat_stream_of_wrong_length(
    store: EmbeddedStore,
    scripted: Callable[[Respond], str],
    mangle: Callable[[bytes], bytes],
    message: str,
) -> None:
    cid = store.put_bytes(_data(3000), AddOptions(cid_version=1, chunk_size=1000))
    client = KuboStore(scripted(_proxy(store, mangle)), **FAST)  # type: ignore[arg-type]
    with pytest.raises(CorruptBlockError, match=message):
        client.get_bytes(cid)


def test_wrong_block_is_refused(scripted: Callable[[Respond], str]) -> None:
    cid = cid_of_bytes(b"the real content")

    def respond(
        path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, b"some other block"

    client = KuboStore(scripted(respond), **FAST)  # type: ignore[arg-type]
    with pytest.raises(CorruptBlockError, match=f"bytes for block {cid} that do not match"):
        client.get_bytes(cid)


def test_add_answer_with_another_cid_is_refused(scripted: Callable[[Respond], str]) -> None:
    other = cid_of_bytes(b"something else")

    def respond(
        path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert query["chunker"] == ["size-262144"] and query["raw-leaves"] == ["false"]
        event = {"Name": "blob", "Hash": other, "Size": "22"}
        return 200, {"Content-Type": "application/json"}, json.dumps(event).encode() + b"\n"

    client = KuboStore(scripted(respond), **FAST)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match=f"as {other}, but its CID with these options is"):
        client.put_bytes(b"my content")


def test_transient_errors_are_retried(scripted: Callable[[Respond], str]) -> None:
    calls: list[str] = []

    def respond(
        path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        calls.append(path)
        if len(calls) <= 2:
            return 503, {}, b'{"Message":"busy","Code":0,"Type":"error"}'
        return 200, {}, b'{"Version":"0.39.0"}'

    url = scripted(respond)
    assert KuboStore(url, retries=3, backoff=0.01).version() == {"Version": "0.39.0"}
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(BackendError, match=r"HTTP 503\): busy"):
        KuboStore(url, retries=1, backoff=0.01).version()
    assert len(calls) == 2


def test_upload_is_sent_again_on_retry(scripted: Callable[[Respond], str]) -> None:
    bodies: list[bytes] = []
    data = _data(300_000)
    expected = cid_of_bytes(data)

    def respond(
        path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        bodies.append(body)
        if len(bodies) == 1:
            return 502, {}, b"bad gateway"
        event = {"Name": "blob", "Hash": expected, "Size": "1"}
        return 200, {}, json.dumps(event).encode()

    client = KuboStore(scripted(respond), retries=2, backoff=0.01)
    assert client.put_bytes(data) == expected
    assert len(bodies) == 2 and data in bodies[0] and data in bodies[1]


def test_client_errors_are_not_retried(scripted: Callable[[Respond], str]) -> None:
    calls: list[str] = []

    def respond(
        path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        calls.append(path)
        return 400, {}, b'{"Message":"argument \\"key\\" is required","Code":1,"Type":"error"}'

    with pytest.raises(StoreError, match='HTTP 400\\): argument "key" is required'):
        KuboStore(scripted(respond), retries=3, backoff=0.01).pin(cid_of_bytes(b"x"))
    assert len(calls) == 1


def test_silent_server_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        port = listener.getsockname()[1]
        client = KuboStore(f"http://127.0.0.1:{port}", timeout=0.3, retries=1, backoff=0.01)
        with pytest.raises(BackendError, match="unreachable for version after 2 attempts"):
            client.version()
    finally:
        listener.close()


def test_nobody_listening() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    client = KuboStore(f"http://127.0.0.1:{port}", retries=2, backoff=0.01)
    with pytest.raises(BackendError, match=f"Kubo RPC at http://127.0.0.1:{port} unreachable"):
        client.pins()


def test_bad_urls() -> None:
    with pytest.raises(StoreError, match="must start with http"):
        KuboStore("ftp://host")


def test_store_serve_command(tmp_path: Path) -> None:
    """``veritrain store serve`` as its own process: start, use over HTTP, stop with SIGTERM."""
    env = dict(os.environ, VERITRAIN_STORE=str(tmp_path / "served"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from agents.cli import main; main()",
            "store",
            "serve",
            "--port",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith(f"serving {tmp_path / 'served'} at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].strip()
        client = KuboStore(url, **FAST)  # type: ignore[arg-type]
        cid = client.put_bytes(b"served by a process")
        assert client.get_bytes(cid) == b"served by a process"
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0
    assert EmbeddedStore(tmp_path / "served").get_bytes(cid) == b"served by a process"


def _field(number: int, wire: int, payload: bytes) -> bytes:
    from agents.store.cid import encode_varint

    key = encode_varint(number << 3 | wire)
    if wire == 2:
        return key + encode_varint(len(payload)) + payload
    return key + payload


def _varint(value: int) -> bytes:
    from agents.store.cid import encode_varint

    return encode_varint(value)


def _foreign_dag(store: EmbeddedStore) -> tuple[CID, bytes]:
    """A file DAG as other importers write them: leaves typed Raw (old importers),
    UnixFS fields in another order, a leaf without filesize, a raw leaf among dag-pb
    ones, and an inner node with data of its own. Returns its root and content."""
    import hashlib

    from agents.store.blockstore import BlockBatch, Blockstore
    from agents.store.cid import DAG_PB, RAW
    from agents.store.dagpb import encode_node

    blocks = Blockstore(store.root / "blocks", fsync=False)
    batch = BlockBatch(blocks)

    def put(version: int, codec: int, block: bytes) -> CID:
        cid = CID(version, codec, hashlib.sha256(block).digest())
        batch.put_block(cid, [block])
        return cid

    pieces = [b"A" * 300, b"B" * 300, b"C" * 300, b"D" * 300]
    raw_typed = _field(1, 0, b"\x00") + _field(2, 2, pieces[0]) + _field(3, 0, _varint(300))
    reordered = _field(1, 0, b"\x02") + _field(3, 0, _varint(300)) + _field(2, 2, pieces[1])
    no_filesize = _field(1, 0, b"\x02") + _field(2, 2, pieces[2])
    leaves = [
        put(0, DAG_PB, _field(1, 2, raw_typed)),
        put(0, DAG_PB, _field(1, 2, reordered)),
        put(0, DAG_PB, _field(1, 2, no_filesize)),
        put(1, RAW, pieces[3]),
    ]
    own = b"inner data first "
    unixfs = (
        _field(1, 0, b"\x02")
        + _field(2, 2, own)
        + _field(3, 0, _varint(len(own) + 1200))
        + b"".join(_field(4, 0, _varint(300)) for _ in leaves)
    )
    links = [(cid.to_bytes(), blocks.size(cid) or 0) for cid in leaves]
    root = put(1, DAG_PB, encode_node(links, unixfs))
    store.pin(str(root))
    return root, own + b"".join(pieces)


def test_dags_of_other_importers_read_through_both_readers(
    kubo: tuple[EmbeddedStore, KuboStore],
) -> None:
    store, client = kubo
    root, expected = _foreign_dag(store)
    assert store.get_bytes(str(root)) == expected
    assert client.get_bytes(str(root)) == expected
    assert client.has(str(root))


@pytest.mark.parametrize("letter", [b"A", b"B", b"C", b"D"])
def test_altered_leaves_of_other_importers_are_caught(
    store: EmbeddedStore, scripted: Callable[[Respond], str], letter: bytes
) -> None:
    root, expected = _foreign_dag(store)

    def alter(content: bytes) -> bytes:
        return content.replace(letter * 300, letter * 299 + b"!")

    client = KuboStore(scripted(_proxy(store, alter)), **FAST)  # type: ignore[arg-type]
    received = b""
    with pytest.raises(CorruptBlockError):
        for piece in client.open(str(root)):
            received += piece
    assert expected.startswith(received) and letter * 300 not in received
