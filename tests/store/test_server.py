"""``store serve`` at the HTTP level: Kubo's response shapes, status codes and limits."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from agents.store import AddOptions, cid_of_bytes
from agents.store.embedded import EmbeddedStore
from agents.store.multipart import MultipartUpload
from agents.store.server import RpcServer, ServerLimits

HELLO = "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _multipart(files: list[tuple[str, bytes]], boundary: str = "b0undary") -> tuple[bytes, str]:
    body = b""
    for name, data in files:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
                "\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _post(url: str, endpoint: str, **kwargs: object) -> requests.Response:
    return requests.post(f"{url}/api/v0/{endpoint}", timeout=10, **kwargs)  # type: ignore[arg-type]


def _assert_error(response: requests.Response, status: int, code: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    payload = response.json()
    assert set(payload) == {"Message", "Code", "Type"}
    assert payload["Type"] == "error" and payload["Code"] == code
    assert message in payload["Message"]


def test_add_answers_like_kubo(served: tuple[EmbeddedStore, str]) -> None:
    store, url = served
    body, ctype = _multipart([("hello.txt", b"hello world"), ("b.bin", b"")])
    response = _post(url, "add", data=body, headers={"Content-Type": ctype})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Chunked-Output"] == "1"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines == [
        {"Name": "hello.txt", "Hash": HELLO, "Size": "19"},
        {"Name": "b.bin", "Hash": "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", "Size": "6"},
    ]
    assert set(store.pins()) == {HELLO, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"}


def test_add_options(served: tuple[EmbeddedStore, str]) -> None:
    store, url = served
    data = bytes(range(256)) * 40
    body, ctype = _multipart([("x", data)])
    params = {"cid-version": "1", "chunker": "size-1000", "max-file-links": "3", "pin": "false"}
    response = _post(url, "add", params=params, data=body, headers={"Content-Type": ctype})
    expected = cid_of_bytes(data, AddOptions(cid_version=1, chunk_size=1000, max_links=3))
    assert response.json()["Hash"] == expected
    assert store.pins() == [] and store.has(expected)
    params = {"cid-version": "1", "raw-leaves": "false", "only-hash": "true"}
    response = _post(url, "add", params=params, data=body, headers={"Content-Type": ctype})
    only = cid_of_bytes(data, AddOptions(cid_version=1, raw_leaves=False))
    assert response.json()["Hash"] == only
    assert not store.has(only)


def test_add_with_chunked_upload(served: tuple[EmbeddedStore, str]) -> None:
    store, url = served
    data = bytes(range(256)) * 3000
    body, ctype = _multipart([("big", data)])
    pieces = (body[i : i + 7777] for i in range(0, len(body), 7777))
    response = _post(url, "add", data=pieces, headers={"Content-Type": ctype})
    assert response.json()["Hash"] == cid_of_bytes(data)
    assert store.get_bytes(cid_of_bytes(data)) == data


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"chunker": "rabin-1-2-3"}, "only size-<bytes>"),
        ({"chunker": "size-0"}, "chunk_size must be an integer from 1"),
        ({"cid-version": "2"}, "cid_version must be an integer from 0 to 1"),
        ({"cid-version": "x"}, "is not an integer"),
        ({"raw-leaves": "maybe"}, "is not a boolean"),
        ({"hash": "blake3"}, "only sha2-256"),
        ({"trickle": "true"}, "'trickle' is not supported"),
        ({"wrap-with-directory": "true"}, "not supported"),
    ],
)
def test_add_rejects_bad_options(
    served: tuple[EmbeddedStore, str], params: dict[str, str], message: str
) -> None:
    store, url = served
    body, ctype = _multipart([("x", b"data")])
    response = _post(url, "add", params=params, data=body, headers={"Content-Type": ctype})
    _assert_error(response, 400, 1, message)
    assert store.pins() == []


@pytest.mark.parametrize(
    ("body", "ctype", "message"),
    [
        (b"not multipart", "text/plain", "expected a multipart/form-data body"),
        (b"--x\r\n\r\nunterminated", "multipart/form-data; boundary=x", "no closing boundary"),
        (b"--x--\r\n", "multipart/form-data; boundary=x", 'argument "path" is required'),
        (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="d"\r\n'
            b"Content-Type: application/x-directory\r\n\r\n\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
            "directories are not supported",
        ),
        (b"junk" * 30000, "multipart/form-data; boundary=x", "no multipart boundary"),
    ],
)
def test_add_rejects_bad_bodies(
    served: tuple[EmbeddedStore, str], body: bytes, ctype: str, message: str
) -> None:
    store, url = served
    response = _post(url, "add", data=body, headers={"Content-Type": ctype})
    _assert_error(response, 400, 1, message)
    assert store.pins() == []


def test_cat_and_block_endpoints(served: tuple[EmbeddedStore, str]) -> None:
    store, url = served
    data = bytes(range(256)) * 5000
    cid = store.put_bytes(data)
    response = _post(url, "cat", params={"arg": cid})
    assert response.status_code == 200
    assert response.headers["X-Stream-Output"] == "1"
    assert response.headers["X-Content-Length"] == str(len(data))
    assert response.content == data
    assert _post(url, "cat", params={"arg": f"/ipfs/{cid}"}).content == data
    block = _post(url, "block/get", params={"arg": cid})
    assert block.content == store.get_block(cid)
    stat = _post(url, "block/stat", params={"arg": cid}).json()
    assert stat == {"Key": cid, "Size": len(block.content)}


def test_pin_endpoints(served: tuple[EmbeddedStore, str]) -> None:
    store, url = served
    cid = store.put_bytes(b"pin me", pin=False)
    assert _post(url, "pin/ls").json() == {"Keys": {}}
    assert _post(url, "pin/add", params={"arg": cid}).json() == {"Pins": [cid]}
    assert _post(url, "pin/ls", params={"type": "recursive"}).json() == {
        "Keys": {cid: {"Type": "recursive"}}
    }
    assert _post(url, "pin/ls", params={"type": "direct"}).json() == {"Keys": {}}
    assert _post(url, "pin/rm", params={"arg": cid}).json() == {"Pins": [cid]}
    _assert_error(_post(url, "pin/rm", params={"arg": cid}), 500, 0, "not pinned")
    _assert_error(_post(url, "pin/ls", params={"arg": cid}), 500, 0, "is not pinned")
    _assert_error(
        _post(url, "pin/add", params={"arg": cid, "recursive": "false"}), 400, 1, "direct pins"
    )


def test_version(served: tuple[EmbeddedStore, str]) -> None:
    _, url = served
    answer = _post(url, "version").json()
    assert {"Version", "Commit", "Repo", "System"} <= set(answer)


@pytest.mark.parametrize(
    ("endpoint", "params", "status", "code", "message"),
    [
        ("cat", {}, 400, 1, 'argument "ipfs-path" is required'),
        ("cat", {"arg": "nonsense"}, 400, 1, "invalid CID 'nonsense'"),
        ("cat", {"arg": f"{HELLO}/inner/path"}, 400, 1, "paths inside content"),
        ("cat", {"arg": HELLO, "offset": "3"}, 400, 1, "'offset' is not supported"),
        ("cat", {"arg": HELLO}, 500, 0, f"block {HELLO} is not in the store"),
        ("block/get", {}, 400, 1, 'argument "cid" is required'),
        ("block/get", {"arg": HELLO}, 500, 0, "is not in the store"),
        (
            "block/get",
            {"arg": "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
            400,
            1,
            "names a dag-cbor block",
        ),
        ("block/stat", {"arg": HELLO}, 500, 0, "is not in the store"),
        ("pin/add", {"arg": HELLO}, 500, 0, f"cannot pin {HELLO}"),
        ("pin/ls", {"type": "sideways"}, 400, 1, "invalid type 'sideways'"),
    ],
)
def test_errors_have_kubo_shape(
    served: tuple[EmbeddedStore, str],
    endpoint: str,
    params: dict[str, str],
    status: int,
    code: int,
    message: str,
) -> None:
    _, url = served
    _assert_error(_post(url, endpoint, params=params), status, code, message)


def test_wrong_method_path_and_origin(served: tuple[EmbeddedStore, str]) -> None:
    _, url = served
    response = requests.get(f"{url}/api/v0/version", timeout=10)
    assert response.status_code == 405
    assert _post(url, "nonexistent").status_code == 404
    assert requests.post(f"{url}/other", timeout=10).status_code == 404
    response = _post(url, "version", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403


def test_upload_limit(store: EmbeddedStore) -> None:
    limits = ServerLimits(max_upload_bytes=100_000, request_timeout=10)
    with RpcServer(store, "127.0.0.1", 0, limits) as server:
        body, ctype = _multipart([("big", b"x" * 200_000)])
        response = _post(server.url, "add", data=body, headers={"Content-Type": ctype})
        _assert_error(response, 413, 1, "larger than this server accepts (100000 bytes)")
        pieces = (body[i : i + 10_000] for i in range(0, len(body), 10_000))
        response = _post(server.url, "add", data=pieces, headers={"Content-Type": ctype})
        _assert_error(response, 413, 1, "larger than this server accepts")
        # The server still works, and nothing was pinned.
        small, ctype = _multipart([("small", b"y" * 1000)])
        assert _post(server.url, "add", data=small, headers={"Content-Type": ctype}).ok
        assert store.pins() == [cid_of_bytes(b"y" * 1000)]
        response = _post(server.url, "version", data=b"z" * 100_000)
        _assert_error(response, 413, 1, "larger than this server accepts")


def test_too_many_clients(store: EmbeddedStore) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB: more than the socket buffers hold
    cid = store.put_bytes(data)
    limits = ServerLimits(max_clients=1, request_timeout=10)
    with RpcServer(store, "127.0.0.1", 0, limits) as server:
        slow = requests.post(
            f"{server.url}/api/v0/cat", params={"arg": cid}, stream=True, timeout=10
        )
        try:
            response = _post(server.url, "version")
            _assert_error(response, 503, 0, "too many concurrent requests")
        finally:
            assert slow.raw.read() == data
            slow.close()
        # The slot is freed when the server's handler returns, which may be a
        # moment after the client has read the last byte.
        deadline = time.monotonic() + 5
        while (response := _post(server.url, "version")).status_code == 503:
            assert time.monotonic() < deadline, "the slot was never freed"
            time.sleep(0.05)
        assert response.ok


def test_keep_alive_serves_several_requests_on_one_connection(
    served: tuple[EmbeddedStore, str],
) -> None:
    _, url = served
    connection = http.client.HTTPConnection(*_address(url), timeout=10)
    try:
        for _ in range(3):
            connection.request("POST", "/api/v0/version")
            response = connection.getresponse()
            assert response.status == 200
            json.loads(response.read())
    finally:
        connection.close()


def test_corrupt_block_mid_stream_ends_with_a_stream_error(
    served: tuple[EmbeddedStore, str],
) -> None:
    store, url = served
    data = bytes(range(256)) * 4000
    cid = store.put_bytes(data, AddOptions(chunk_size=100_000))
    from agents.store.cid import CID
    from agents.store.reader import node_links

    leaf = node_links(CID.parse(cid), store.get_block(cid))[2].cid
    path = store.root / "blocks" / leaf.digest.hex()[:2] / leaf.digest.hex()
    path.write_bytes(b"broken")
    connection = http.client.HTTPConnection(*_address(url), timeout=10)
    connection.request("POST", f"/api/v0/cat?arg={cid}")
    response = connection.getresponse()
    assert response.status == 200
    received = response.read()
    assert received == data[:200_000]
    connection.close()


def test_idle_connection_is_dropped(store: EmbeddedStore) -> None:
    with (
        RpcServer(store, "127.0.0.1", 0, ServerLimits(request_timeout=0.5)) as server,
        socket.create_connection(_address(server.url), timeout=5) as sock,
    ):
        sock.sendall(b"POST /api/v0/version HTTP/1.1\r\nHost: x\r\n")
        assert sock.recv(100) == b""


def test_upload_object_reports_every_byte(tmp_path: Path) -> None:
    seen = bytearray()
    data = bytes(range(256)) * 1000
    path = tmp_path / "f"
    path.write_bytes(data)
    with path.open("rb") as handle:
        upload = MultipartUpload(handle, len(data), "na me", seen.extend)
        body = b"".join(iter(upload))
    assert len(body) == len(upload) and bytes(seen) == data
    assert b'filename="na%20me"' in body


def test_server_threads_share_one_store(served: tuple[EmbeddedStore, str]) -> None:
    store, url = served
    results: list[str] = []

    def add(index: int) -> None:
        body, ctype = _multipart([(f"f{index}", bytes([index]) * 300_000)])
        results.append(_post(url, "add", data=body, headers={"Content-Type": ctype}).json()["Hash"])

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(cid_of_bytes(bytes([i]) * 300_000) for i in range(6))
    assert sorted(store.pins()) == sorted(results)
