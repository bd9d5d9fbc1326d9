"""A stand-in for a Kubo node peered with other nodes, on loopback, for tests where no Kubo
binary is installed.

It answers the RPC calls :class:`~agents.store.kubo.KuboStore` reads with (``block/get``,
``block/stat``, ``cat``, ``version``) the way Kubo does: with ``offline=true`` only from its own
blocks ("block was not found locally (offline)"); otherwise it fetches what it lacks from its
peers (stores it can reach, after ``delay`` seconds a block), keeps what it fetched, and, when
nobody has a block, keeps looking until the request's ``timeout`` option runs out and answers
"context deadline exceeded" (HTTP 500), as Kubo's commands do.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agents.store import MissingBlockError
from agents.store.cid import CID, parse_content_cid
from agents.store.embedded import EmbeddedStore
from agents.store.reader import DagReader

# How long a request without a ``timeout`` option looks for a missing block before it gives
# up (Kubo would look until the client goes away).
_HANG_S = 30.0


class _NotFoundError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PeeredNode:
    """A node holding ``blocks`` of its own, peered with ``peers``; serves on loopback."""

    def __init__(self, peers: list[EmbeddedStore], *, delay: float = 0.0) -> None:
        self.peers = peers
        self.delay = delay
        self.blocks: dict[CID, bytes] = {}
        self.fetched: list[CID] = []  # blocks fetched from peers, in order
        self._lock = threading.Lock()
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                length = int(self.headers.get("Content-Length", "0"))
                if length:
                    self.rfile.read(length)
                try:
                    node._dispatch(self, parts.path.removeprefix("/api/v0/"), query)
                except _NotFoundError as exc:
                    body = json.dumps({"Message": exc.message, "Code": 0, "Type": "error"})
                    self._send(500, body.encode(), "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> PeeredNode:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- the node -------------------------------------------------------------------------

    def block(self, cid: CID, *, offline: bool, deadline: float) -> bytes:
        """A block from this node, else (online) from a peer, looking until ``deadline``."""
        with self._lock:
            if cid in self.blocks:
                return self.blocks[cid]
        if offline:
            raise _NotFoundError(
                f"block was not found locally (offline): ipld: could not find {cid}"
            )
        while True:
            for peer in self.peers:
                try:
                    data = peer.get_block(cid)
                except MissingBlockError:
                    continue
                time.sleep(self.delay)
                with self._lock:
                    self.blocks[cid] = data
                    self.fetched.append(cid)
                return data
            if time.monotonic() >= deadline:
                raise _NotFoundError("context deadline exceeded")
            time.sleep(0.05)

    def _dispatch(
        self, handler: BaseHTTPRequestHandler, endpoint: str, query: dict[str, list[str]]
    ) -> None:
        send = handler._send  # type: ignore[attr-defined]
        offline = query.get("offline", ["false"])[-1] in ("", "true", "1")
        timeout = query.get("timeout", [""])[-1]
        deadline = time.monotonic() + (float(timeout.removesuffix("s")) if timeout else _HANG_S)
        if endpoint == "version":
            send(200, json.dumps({"Version": "peered-test-node"}).encode(), "application/json")
            return
        cid = parse_content_cid(query["arg"][-1])
        if endpoint == "block/get":
            send(200, self.block(cid, offline=offline, deadline=deadline), "text/plain")
        elif endpoint == "block/stat":
            data = self.block(cid, offline=offline, deadline=deadline)
            body = json.dumps({"Key": str(cid), "Size": len(data)}).encode()
            send(200, body, "application/json")
        elif endpoint == "cat":
            reader = DagReader(lambda c: self.block(c, offline=offline, deadline=deadline))
            send(200, b"".join(reader.content(cid)), "text/plain")
        else:
            send(404, b"unknown endpoint", "text/plain")
