"""``veritrain store serve``: an embedded store behind the Kubo RPC API subset it needs.

Endpoints (all ``POST``, under ``/api/v0/``): ``add``, ``cat``, ``block/get``,
``block/stat``, ``pin/add``, ``pin/rm``, ``pin/ls``, ``version``. Responses have Kubo's
shapes: ``add`` answers one JSON object per file (``{"Name","Hash","Size"}``, one per
line), ``cat`` and ``block/get`` stream bytes, errors are ``{"Message","Code","Type":
"error"}`` with HTTP 400 for a bad request (``Code`` 1) and 500 for a failure (``Code``
0). Other methods get 405, other paths 404, requests from web pages (an ``Origin``
header not explicitly allowed) 403, bodies over the limit 413, and more concurrent
requests than allowed 503.

The server binds 127.0.0.1 unless told otherwise: like Kubo's RPC API it has no
authentication, so it must only be reachable by parties that may write to the store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agents import __version__
from agents.store.base import (
    AddOptions,
    CorruptBlockError,
    MissingBlockError,
    StoreError,
)
from agents.store.cid import CID, InvalidCIDError, UnsupportedCIDError, parse_content_cid
from agents.store.embedded import EmbeddedStore
from agents.store.importer import BlockSink, FileImporter, ImportResult
from agents.store.multipart import MultipartError, MultipartReader, Part, boundary_of

log = logging.getLogger("veritrain.store.serve")

API_PREFIX = "/api/v0/"
DEFAULT_PORT = 5001
DEFAULT_MAX_UPLOAD = 4 * 1024**3
MAX_SMALL_BODY = 64 * 1024
MAX_QUERY_FIELDS = 64
# After refusing a body, read at most this much of it so the client sees the answer.
_DRAIN_LIMIT = 64 * 1024 * 1024

CODE_NORMAL = 0
CODE_CLIENT = 1


class RpcError(Exception):
    """An error answered as Kubo does: HTTP status plus ``{"Message","Code","Type"}``."""

    def __init__(self, status: int, message: str, code: int = CODE_NORMAL) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def bad_request(message: str) -> RpcError:
    return RpcError(HTTPStatus.BAD_REQUEST, message, CODE_CLIENT)


class BodyTooLargeError(RpcError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"request body larger than this server accepts ({limit} bytes)",
            CODE_CLIENT,
        )


class _LengthBody:
    """A body with a Content-Length."""

    def __init__(self, rfile: Any, length: int) -> None:
        self._rfile = rfile
        self.remaining = length

    def read(self, size: int) -> bytes:
        if self.remaining <= 0:
            return b""
        data: bytes = self._rfile.read(min(size, self.remaining))
        if not data:
            raise bad_request("the request body ended before its Content-Length")
        self.remaining -= len(data)
        return data


class _ChunkedBody:
    """A body in HTTP/1.1 chunked transfer encoding, with a size limit."""

    def __init__(self, rfile: Any, limit: int) -> None:
        self._rfile = rfile
        self._limit = limit
        self._left_in_chunk = 0
        self._total = 0
        self.done = False

    def _line(self) -> bytes:
        line: bytes = self._rfile.readline(1026)
        if not line.endswith(b"\r\n"):
            raise bad_request("malformed chunked request body")
        return line[:-2]

    def read(self, size: int) -> bytes:
        if self.done:
            return b""
        if self._left_in_chunk == 0:
            head = self._line().split(b";", 1)[0].strip()
            try:
                self._left_in_chunk = int(head, 16)
            except ValueError as exc:
                raise bad_request("malformed chunk size in request body") from exc
            if self._left_in_chunk == 0:
                while self._line():  # trailers
                    pass
                self.done = True
                return b""
            self._total += self._left_in_chunk
            if self._total > self._limit:
                raise BodyTooLargeError(self._limit)
        data: bytes = self._rfile.read(min(size, self._left_in_chunk))
        if not data:
            raise bad_request("the request body ended inside a chunk")
        self._left_in_chunk -= len(data)
        if self._left_in_chunk == 0 and self._line():
            raise bad_request("malformed chunked request body")
        return data


def _bool(query: dict[str, list[str]], name: str, default: bool) -> bool:
    values = query.get(name)
    if not values:
        return default
    value = values[-1].strip().lower()
    # Go's strconv.ParseBool, which Kubo uses; a bare flag means true.
    if value in ("", "1", "t", "true"):
        return True
    if value in ("0", "f", "false"):
        return False
    raise bad_request(f"option {name!r}: {values[-1]!r} is not a boolean")


def _int(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values:
        return None
    try:
        return int(values[-1])
    except ValueError as exc:
        raise bad_request(f"option {name!r}: {values[-1]!r} is not an integer") from exc


def _args(query: dict[str, list[str]], *, required: bool, name: str = "ipfs-path") -> list[str]:
    args = query.get("arg", [])
    if required and not args:
        raise bad_request(f'argument "{name}" is required')
    return args


def _cid_arg(text: str) -> CID:
    path = text.strip()
    if path.startswith("/ipfs/"):
        path = path[len("/ipfs/") :]
    if "/" in path.strip("/"):
        raise bad_request(f"{text!r}: paths inside content are not supported, name a CID")
    try:
        return parse_content_cid(path.strip("/"))
    except (InvalidCIDError, UnsupportedCIDError) as exc:
        raise bad_request(str(exc)) from exc


def add_options(query: dict[str, list[str]]) -> AddOptions:
    """The import options of an ``add`` request, Kubo's rules for defaults included."""
    for unsupported in ("trickle", "wrap-with-directory", "recursive", "nocopy", "inline"):
        if _bool(query, unsupported, False):
            raise bad_request(f"option {unsupported!r} is not supported by this server")
    hash_name = query.get("hash", ["sha2-256"])[-1].lower()
    if hash_name != "sha2-256":
        raise bad_request(f"hash function {hash_name!r} is not supported; only sha2-256")
    chunker = query.get("chunker", ["size-262144"])[-1]
    if not chunker.startswith("size-"):
        raise bad_request(f"chunker {chunker!r} is not supported; only size-<bytes>")
    try:
        chunk_size = int(chunker[len("size-") :])
    except ValueError as exc:
        raise bad_request(f"chunker {chunker!r}: the size is not an integer") from exc
    raw = query.get("raw-leaves")
    cid_version = _int(query, "cid-version")
    max_links = _int(query, "max-file-links")
    try:
        return AddOptions(
            cid_version=0 if cid_version is None else cid_version,
            chunk_size=chunk_size,
            max_links=174 if max_links is None else max_links,
            raw_leaves=None if raw is None else _bool(query, "raw-leaves", False),
        )
    except StoreError as exc:
        raise bad_request(str(exc)) from exc


def _feed(part: Part, importer: FileImporter) -> ImportResult:
    for piece in part:
        importer.write(piece)
    return importer.finish()


@dataclass
class ServerLimits:
    """What one ``serve`` accepts."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    max_clients: int = 32
    # Seconds a connection may sit idle inside a request before it is dropped.
    request_timeout: float = 60.0
    allowed_origins: tuple[str, ...] = ()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"veritrain/{__version__}"
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.limits.request_timeout)
        # Headers and body go out in separate writes; without this, Nagle's algorithm
        # and the client's delayed ACK stall every small answer by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    # -- plumbing -------------------------------------------------------------------------

    def _send_plain(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, value: Any, status: int = HTTPStatus.OK) -> None:
        body = (json.dumps(value) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == HTTPStatus.OK:
            self.send_header("Trailer", "X-Stream-Error")
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, error: RpcError) -> None:
        self._send_json(
            {"Message": error.message, "Code": error.code, "Type": "error"}, error.status
        )

    def _send_stream(self, pieces: Iterable[bytes], headers: dict[str, str]) -> None:
        """Stream ``pieces`` chunked; a failure midway ends the body with X-Stream-Error."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Stream-Output", "1")
        self.send_header("Trailer", "X-Stream-Error")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for piece in pieces:
                if piece:
                    self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
        except StoreError as exc:
            log.warning("stream failed: %s", exc)
            message = str(exc).replace("\r", " ").replace("\n", " ")
            self.wfile.write(f"0\r\nX-Stream-Error: {message}\r\n\r\n".encode())
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")

    def _body(self, limit: int) -> _LengthBody | _ChunkedBody:
        encoding = self.headers.get("Transfer-Encoding", "").lower()
        if encoding:
            if encoding != "chunked":
                self.close_connection = True
                raise bad_request(f"unsupported Transfer-Encoding {encoding!r}")
            return _ChunkedBody(self.rfile, limit)
        length_text = self.headers.get("Content-Length", "0")
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise bad_request(f"invalid Content-Length {length_text!r}")
        return _LengthBody(self.rfile, length)

    def _drain(self, body: _LengthBody | _ChunkedBody | None, limit: int) -> bool:
        """Read what is left of a body (up to ``limit``); whether it was all read."""
        if body is None:
            return True
        read = 0
        try:
            while read <= limit:
                piece = body.read(256 * 1024)
                if not piece:
                    return True
                read += len(piece)
        except (RpcError, OSError):
            return False
        return False

    # -- dispatch -------------------------------------------------------------------------

    def do_POST(self) -> None:
        if not self.server.slots.acquire(blocking=False):
            self.close_connection = True
            self._send_error(
                RpcError(HTTPStatus.SERVICE_UNAVAILABLE, "too many concurrent requests; retry")
            )
            return
        body: _LengthBody | _ChunkedBody | None = None
        try:
            url = urlsplit(self.path)
            endpoint = self.server.endpoints.get(url.path.rstrip("/"))
            if not url.path.startswith(API_PREFIX) or endpoint is None:
                self.close_connection = True
                self._send_plain(HTTPStatus.NOT_FOUND, "404 page not found")
                return
            origin = self.headers.get("Origin")
            if origin is not None and origin not in self.server.limits.allowed_origins:
                self.close_connection = True
                self._send_plain(HTTPStatus.FORBIDDEN, "403 - Forbidden")
                return
            try:
                query = parse_qs(
                    url.query,
                    keep_blank_values=True,
                    strict_parsing=False,
                    max_num_fields=MAX_QUERY_FIELDS,
                )
            except ValueError as exc:
                raise bad_request(f"malformed query: {exc}") from exc
            is_add = endpoint is _Handler._add
            limit = self.server.limits.max_upload_bytes if is_add else MAX_SMALL_BODY
            body = self._body(limit)
            if isinstance(body, _LengthBody) and body.remaining > limit:
                raise BodyTooLargeError(limit)
            if not is_add:
                if not self._drain(body, MAX_SMALL_BODY):
                    raise BodyTooLargeError(MAX_SMALL_BODY)
                body = None
            endpoint(self, query, body)
            if not self._drain(body, 0):
                self.close_connection = True
        except RpcError as exc:
            self._refuse(exc, body)
        except MultipartError as exc:
            self._refuse(bad_request(str(exc)), body)
        except (MissingBlockError, CorruptBlockError, StoreError) as exc:
            self._refuse(RpcError(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc)), body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        finally:
            self.server.slots.release()

    def _refuse(self, error: RpcError, body: _LengthBody | _ChunkedBody | None) -> None:
        log.info("refused %s: %s", self.path, error.message)
        # Read (some of) the rest of the body first, so the client gets to see the answer.
        if not self._drain(body, _DRAIN_LIMIT):
            self.close_connection = True
        try:
            self._send_error(error)
        except OSError:
            self.close_connection = True

    def _method_not_allowed(self) -> None:
        self.close_connection = True
        self._send_plain(HTTPStatus.METHOD_NOT_ALLOWED, "405 - Method Not Allowed")

    def do_GET(self) -> None:
        self._method_not_allowed()

    def do_PUT(self) -> None:
        self._method_not_allowed()

    def do_DELETE(self) -> None:
        self._method_not_allowed()

    def do_HEAD(self) -> None:
        self._method_not_allowed()

    # -- endpoints ------------------------------------------------------------------------

    def _add(self, query: dict[str, list[str]], body: Any) -> None:
        options = add_options(query)
        pin = _bool(query, "pin", True)
        only_hash = _bool(query, "only-hash", False)
        reader = MultipartReader(body, boundary_of(self.headers.get("Content-Type", "")))
        events = []
        store = self.server.store
        for part in reader.parts():
            if part.content_type == "application/x-directory":
                raise bad_request("directories are not supported by this server; add files")
            if only_hash:
                result = _feed(part, FileImporter(options))
            else:

                def run(sink: BlockSink, part: Part = part) -> ImportResult:
                    return _feed(part, FileImporter(options, sink))

                result = store.import_with(run, pin=pin)
            name = part.filename or str(result.cid)
            events.append({"Name": name, "Hash": str(result.cid), "Size": str(result.dag_size)})
        if not events:
            raise bad_request('argument "path" is required')
        payload = "".join(json.dumps(e) + "\n" for e in events).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Chunked-Output", "1")
        self.send_header("Trailer", "X-Stream-Error")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _cat(self, query: dict[str, list[str]], body: Any) -> None:
        for option in ("offset", "length"):
            if query.get(option):
                raise bad_request(f"option {option!r} is not supported by this server")
        args = _args(query, required=True)
        roots = [_cid_arg(a) for a in args]
        store = self.server.store
        streams = [(store.open(str(root)), store.content_size(root)) for root in roots]

        def pieces() -> Iterable[bytes]:
            for stream, _size in streams:
                yield from stream

        total = sum(size for _, size in streams)
        self._send_stream(pieces(), {"X-Content-Length": str(total)})

    def _block_get(self, query: dict[str, list[str]], body: Any) -> None:
        cid = _cid_arg(_args(query, required=True, name="cid")[0])
        block = self.server.store.get_block(cid)
        self._send_stream([block], {"X-Content-Length": str(len(block))})

    def _block_stat(self, query: dict[str, list[str]], body: Any) -> None:
        cid = _cid_arg(_args(query, required=True, name="cid")[0])
        self._send_json({"Key": str(cid), "Size": self.server.store.block_size(cid)})

    def _pin_add(self, query: dict[str, list[str]], body: Any) -> None:
        if not _bool(query, "recursive", True):
            raise bad_request("direct pins are not supported by this server; pins are recursive")
        cids = [_cid_arg(a) for a in _args(query, required=True)]
        for cid in cids:
            self.server.store.pin(str(cid))
        self._send_json({"Pins": [str(c) for c in cids]})

    def _pin_rm(self, query: dict[str, list[str]], body: Any) -> None:
        cids = [_cid_arg(a) for a in _args(query, required=True)]
        pinned = set(self.server.store.pins())
        for cid in cids:
            if str(cid) not in pinned:
                raise RpcError(HTTPStatus.INTERNAL_SERVER_ERROR, "not pinned or pinned indirectly")
        for cid in cids:
            with contextlib.suppress(StoreError):
                self.server.store.unpin(str(cid))
        self._send_json({"Pins": [str(c) for c in cids]})

    def _pin_ls(self, query: dict[str, list[str]], body: Any) -> None:
        kind = query.get("type", ["all"])[-1]
        if kind not in ("all", "recursive", "direct", "indirect"):
            raise bad_request(
                f"invalid type {kind!r}, must be one of {{direct, indirect, recursive, all}}"
            )
        pinned = self.server.store.pins() if kind in ("all", "recursive") else []
        wanted = [str(_cid_arg(a)) for a in _args(query, required=False)]
        for cid in wanted:
            if cid not in pinned:
                raise RpcError(HTTPStatus.INTERNAL_SERVER_ERROR, f"path '{cid}' is not pinned")
        keys = wanted or pinned
        self._send_json({"Keys": {cid: {"Type": "recursive"} for cid in keys}})

    def _version(self, query: dict[str, list[str]], body: Any) -> None:
        self._send_json(
            {
                "Version": __version__,
                "Commit": "",
                "Repo": "veritrain-blockstore-1",
                "System": f"{platform.machine()}/{platform.system().lower()}",
                "Golang": "",
                "Server": "veritrain store serve",
            }
        )


Endpoint = Callable[[_Handler, dict[str, list[str]], Any], None]


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], store: EmbeddedStore, limits: ServerLimits):
        self.store = store
        self.limits = limits
        self.slots = threading.BoundedSemaphore(limits.max_clients)
        self.endpoints: dict[str, Endpoint] = {
            API_PREFIX + "add": _Handler._add,
            API_PREFIX + "cat": _Handler._cat,
            API_PREFIX + "block/get": _Handler._block_get,
            API_PREFIX + "block/stat": _Handler._block_stat,
            API_PREFIX + "pin/add": _Handler._pin_add,
            API_PREFIX + "pin/rm": _Handler._pin_rm,
            API_PREFIX + "pin/ls": _Handler._pin_ls,
            API_PREFIX + "version": _Handler._version,
        }
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request is routine; anything else is logged with
        # its traceback instead of being printed to stderr.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.info("connection from %s dropped: %s", client_address, error)
        else:
            log.exception("request from %s failed", client_address)


class RpcServer:
    """Serves an :class:`EmbeddedStore` over HTTP; use as a context manager or call
    :meth:`serve_forever`."""

    def __init__(
        self,
        store: EmbeddedStore,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        limits: ServerLimits | None = None,
    ) -> None:
        try:
            self._http = _HttpServer((host, port), store, limits or ServerLimits())
        except OSError as exc:
            raise StoreError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        address = self._http.server_address
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        port = address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def serve_forever(self) -> None:
        """Serve until :meth:`stop` is called (from another thread) or interrupted."""
        self._http.serve_forever(poll_interval=0.2)

    def start(self) -> RpcServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="store-serve", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> RpcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
