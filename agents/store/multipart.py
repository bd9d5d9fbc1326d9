"""``multipart/form-data`` as Kubo's ``/api/v0/add`` uses it, streamed in both directions.

:class:`MultipartReader` splits a request body into parts without holding a part in
memory; :class:`MultipartUpload` is a request body of one file part that a client sends
with a known ``Content-Length`` while reading the file, handing every byte it sends to an
observer (the client computes the CID of what it uploads on the way).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from email.message import Message
from typing import BinaryIO, Protocol
from urllib.parse import quote, unquote

from agents.store.base import StoreError

_READ_SIZE = 256 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_PREAMBLE_BYTES = 64 * 1024


class MultipartError(StoreError):
    """A request body that is not well-formed ``multipart/form-data``."""


class ByteSource(Protocol):
    def read(self, size: int) -> bytes: ...


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a ``multipart/form-data`` Content-Type header."""
    message = Message()
    message["content-type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        raise MultipartError(f"expected a multipart/form-data body, got {content_type!r}")
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise MultipartError("multipart/form-data body without a valid boundary")
    return boundary.encode("latin-1")


class Part:
    """One part of a multipart body; read its content with :meth:`read` before the next."""

    def __init__(self, reader: MultipartReader, headers: dict[str, str]) -> None:
        self._reader = reader
        self.headers = headers
        self.done = False
        disposition = Message()
        disposition["content-disposition"] = headers.get("content-disposition", "")
        name = disposition.get_param("name", header="content-disposition")
        filename = disposition.get_param("filename", header="content-disposition")
        self.name = name if isinstance(name, str) else ""
        # Go's multipart writers percent-encode file names (go-ipfs-files does).
        self.filename = unquote(filename) if isinstance(filename, str) else ""
        self.content_type = headers.get("content-type", "application/octet-stream")

    def read(self, size: int = _READ_SIZE) -> bytes:
        """Up to ``size`` bytes of the part's content; ``b""`` at its end."""
        if self.done:
            return b""
        data = self._reader._read_part(size)
        if not data:
            self.done = True
        return data

    def __iter__(self) -> Iterator[bytes]:
        while piece := self.read():
            yield piece


class MultipartReader:
    """Iterates over the parts of a ``multipart/form-data`` body read from ``source``."""

    def __init__(self, source: ByteSource, boundary: bytes) -> None:
        self._source = source
        # A leading CRLF makes the first delimiter look like every other one.
        self._buffer = bytearray(b"\r\n")
        self._delimiter = b"\r\n--" + boundary
        self._eof = False
        self._scanned = 0
        self._current: Part | None = None
        self._finished = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._source.read(_READ_SIZE)
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def _find_delimiter(self) -> int:
        """Index of the next delimiter in the buffer, or -1; only new bytes are searched."""
        start = max(0, self._scanned - len(self._delimiter) + 1)
        index = self._buffer.find(self._delimiter, start)
        self._scanned = len(self._buffer) if index < 0 else index
        return index

    def _read_part(self, size: int) -> bytes:
        while True:
            index = self._find_delimiter()
            if index >= 0:
                take = min(size, index)
                if take == 0:
                    return b""
                break
            # Bytes that cannot be the start of a delimiter are part content.
            safe = len(self._buffer) - len(self._delimiter) + 1
            if safe >= size:
                take = size
                break
            if not self._fill():
                raise MultipartError("the body ended inside a part (no closing boundary)")
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        self._scanned = max(0, self._scanned - take)
        return data

    def _skip_to_delimiter(self, limit: int | None) -> None:
        skipped = 0
        while True:
            index = self._find_delimiter()
            if index >= 0:
                del self._buffer[:index]
                self._scanned = 0
                return
            keep = len(self._delimiter) - 1
            if len(self._buffer) > keep:
                skipped += len(self._buffer) - keep
                del self._buffer[: len(self._buffer) - keep]
                self._scanned = 0
            if limit is not None and skipped > limit:
                raise MultipartError("no multipart boundary where the body starts")
            if not self._fill():
                raise MultipartError("the body ended before its closing boundary")

    def _need(self, count: int) -> None:
        while len(self._buffer) < count:
            if not self._fill():
                raise MultipartError("the body ended inside a part's headers")

    def next_part(self) -> Part | None:
        """The next part (its headers read), or ``None`` after the closing boundary."""
        if self._finished:
            return None
        if self._current is None:
            self._skip_to_delimiter(MAX_PREAMBLE_BYTES)
        else:
            while self._current.read():
                pass
        # The buffer starts with the delimiter; "--" after it closes the body.
        self._need(len(self._delimiter) + 2)
        del self._buffer[: len(self._delimiter)]
        if self._buffer[:2] == b"--":
            self._finished = True
            return None
        end = -1
        while end < 0:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_PART_HEADER_BYTES:
                    raise MultipartError("a part's headers are too long")
                if not self._fill():
                    raise MultipartError("the body ended inside a part's headers")
        if end > MAX_PART_HEADER_BYTES:
            raise MultipartError("a part's headers are too long")
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        self._scanned = 0
        lines = head.split("\r\n")
        # Optional whitespace after the boundary ends the boundary line.
        if lines and lines[0].strip(" \t") == "":
            lines = lines[1:]
        else:
            raise MultipartError("garbage after a multipart boundary")
        headers: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise MultipartError(f"malformed part header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        self._current = Part(self, headers)
        return self._current

    def parts(self) -> Iterator[Part]:
        while (part := self.next_part()) is not None:
            yield part


class MultipartUpload:
    """A one-file ``multipart/form-data`` request body with a known length.

    ``requests`` streams it (it has ``read`` and ``__len__``); ``observe`` sees every byte
    of the file's content exactly once, in order, as it is sent.
    """

    def __init__(
        self,
        source: BinaryIO,
        size: int,
        filename: str,
        observe: Callable[[bytes], None] | None = None,
    ) -> None:
        self.boundary = secrets.token_hex(16)
        head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{quote(filename, safe="")}"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._source = source
        self._remaining = size
        self._observe = observe
        self._length = len(head) + size + len(self._tail)
        self._stage = 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        while piece := self.read(_READ_SIZE):
            yield piece

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = _READ_SIZE
        if self._stage == 0:
            self._stage = 1
            return self._head
        if self._stage == 1:
            if self._remaining > 0:
                data = self._source.read(min(size, self._remaining))
                if not data:
                    raise StoreError(
                        f"the file being uploaded shrank: {self._remaining} bytes missing"
                    )
                self._remaining -= len(data)
                if self._observe is not None:
                    self._observe(data)
                return data
            if self._source.read(1):
                raise StoreError("the file being uploaded grew while it was sent")
            self._stage = 2
            return self._tail
        return b""
