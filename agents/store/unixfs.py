"""UnixFS v1 ``Data`` messages, the payload of dag-pb nodes that make up a file.

Fields (protobuf, proto2): ``Type`` (1, varint, always written), ``Data`` (2, bytes),
``filesize`` (3, varint), ``blocksizes`` (4, repeated varint, unpacked), ``hashType`` (5),
``fanout`` (6), ``mode`` (7), ``mtime`` (8). Kubo's balanced importer writes, in field
order: for a leaf ``Type=File, Data=<chunk>, filesize=<chunk length>`` (no ``Data`` field
for an empty file); for an inner node ``Type=File, filesize=<sum>, blocksizes=<each child's
file size>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from agents.store.cid import decode_varint, encode_varint
from agents.store.dagpb import data_field_prefix

_TAG_TYPE = 0x08
_TAG_DATA = 0x12
_TAG_FILESIZE = 0x18
_TAG_BLOCKSIZE = 0x20
_TAG_BLOCKSIZES_PACKED = 0x22


class UnixFSError(ValueError):
    """Bytes that are not a UnixFS ``Data`` message."""


class DataType(IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True)
class UnixFSData:
    """A decoded UnixFS ``Data`` message (fields the store does not use are skipped)."""

    type: int
    data: memoryview | None
    filesize: int | None
    blocksizes: tuple[int, ...]


def decode_data(buf: bytes | memoryview) -> UnixFSData:
    """Decode a UnixFS ``Data`` message; raises :class:`UnixFSError` if malformed."""
    view = memoryview(buf)
    pos = 0
    kind: int | None = None
    data: memoryview | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    try:
        while pos < len(view):
            key, pos = decode_varint(view, pos)
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = decode_varint(view, pos)
                if field == 1:
                    kind = value
                elif field == 3:
                    filesize = value
                elif field == 4:
                    blocksizes.append(value)
                elif field not in (5, 6, 7):
                    raise UnixFSError(f"unknown varint field {field}")
            elif wire == 2:
                length, pos = decode_varint(view, pos)
                end = pos + length
                if end > len(view):
                    raise UnixFSError("field runs past the end of the message")
                if field == 2:
                    data = view[pos:end]
                elif field == 4:
                    inner = pos
                    while inner < end:
                        value, inner = decode_varint(view[:end], inner)
                        blocksizes.append(value)
                elif field != 8:
                    raise UnixFSError(f"unknown length-delimited field {field}")
                pos = end
            else:
                raise UnixFSError(f"unsupported wire type {wire} for field {field}")
    except ValueError as exc:
        if isinstance(exc, UnixFSError):
            raise
        raise UnixFSError(str(exc)) from exc
    if kind is None:
        raise UnixFSError("no Type field")
    return UnixFSData(kind, data, filesize, tuple(blocksizes))


def encode_inner(filesize: int, blocksizes: Sequence[int]) -> bytes:
    """The ``Data`` message of an inner file node."""
    out = bytearray((_TAG_TYPE, DataType.FILE, _TAG_FILESIZE))
    out += encode_varint(filesize)
    for size in blocksizes:
        out.append(_TAG_BLOCKSIZE)
        out += encode_varint(size)
    return bytes(out)


@dataclass(frozen=True)
class LeafFrame:
    """The bytes around a chunk in a dag-pb leaf block: ``prefix + chunk + suffix``."""

    prefix: bytes
    suffix: bytes

    @property
    def overhead(self) -> int:
        return len(self.prefix) + len(self.suffix)


def leaf_frame(length: int, kind: DataType = DataType.FILE) -> LeafFrame:
    """The frame of a dag-pb leaf holding ``length`` bytes, as Kubo's importer encodes it.

    Only the frame is built, so the chunk can be hashed and written in place without
    copying it into a new buffer.
    """
    size = encode_varint(length)
    if length == 0:
        message = bytes((_TAG_TYPE, kind, _TAG_FILESIZE)) + size
        return LeafFrame(data_field_prefix(len(message)) + message, b"")
    head = bytes((_TAG_TYPE, kind, _TAG_DATA)) + size
    tail = bytes((_TAG_FILESIZE,)) + size
    message_length = len(head) + length + len(tail)
    return LeafFrame(data_field_prefix(message_length) + head, tail)
