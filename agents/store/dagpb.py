"""The dag-pb codec: IPFS's protobuf ``PBNode`` (links, then data) as Kubo writes it.

Canonical form (the dag-pb spec, and what Kubo hashes): every ``PBLink`` (field 2) comes
before ``Data`` (field 1); inside a link, ``Hash`` (1), ``Name`` (2), ``Tsize`` (3) in that
order. Kubo's file importer always writes ``Name`` (empty) and ``Tsize``. Decoding is
strict in the same way go-codec-dagpb is: wrong wire types, unknown fields, fields out of
order or a link without ``Hash`` make a block invalid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agents.store.cid import CID, decode_varint, encode_varint

_TAG_DATA = 0x0A  # field 1, length-delimited
_TAG_LINKS = 0x12  # field 2, length-delimited
_TAG_LINK_HASH = 0x0A
_TAG_LINK_NAME = 0x12
_TAG_LINK_TSIZE = 0x18  # field 3, varint


class DagPbError(ValueError):
    """Bytes that are not a valid dag-pb node."""


@dataclass(frozen=True)
class PBLink:
    """One link of a dag-pb node: the child's CID, a name, and the child DAG's total size."""

    cid: CID
    name: str | None
    tsize: int | None


@dataclass(frozen=True)
class PBNode:
    """A decoded dag-pb node. ``data`` is a view into the block (no copy)."""

    links: tuple[PBLink, ...]
    data: memoryview | None


def _length_delimited(buf: memoryview, pos: int) -> tuple[memoryview, int]:
    length, pos = decode_varint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise DagPbError(f"field of {length} bytes runs past the end of the block")
    return buf[pos:end], end


def _decode_link(buf: memoryview) -> PBLink:
    pos = 0
    cid: CID | None = None
    name: str | None = None
    tsize: int | None = None
    last = 0
    while pos < len(buf):
        tag = buf[pos]
        pos += 1
        if tag <= last:
            raise DagPbError("link fields out of order or repeated")
        last = tag
        if tag == _TAG_LINK_HASH:
            raw, pos = _length_delimited(buf, pos)
            try:
                cid = CID.from_bytes(bytes(raw))
            except ValueError as exc:
                raise DagPbError(f"link hash is not a CID: {exc}") from exc
        elif tag == _TAG_LINK_NAME:
            raw, pos = _length_delimited(buf, pos)
            try:
                name = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DagPbError("link name is not UTF-8") from exc
        elif tag == _TAG_LINK_TSIZE:
            tsize, pos = decode_varint(buf, pos)
        else:
            raise DagPbError(f"unknown link field tag 0x{tag:02x}")
    if cid is None:
        raise DagPbError("link without a hash")
    return PBLink(cid, name, tsize)


def decode_node(block: bytes | memoryview) -> PBNode:
    """Decode a dag-pb block; raises :class:`DagPbError` if it is not canonical dag-pb."""
    buf = memoryview(block)
    pos = 0
    links: list[PBLink] = []
    data: memoryview | None = None
    try:
        while pos < len(buf):
            tag = buf[pos]
            pos += 1
            if tag == _TAG_LINKS:
                if data is not None:
                    raise DagPbError("links after data (not canonical dag-pb)")
                raw, pos = _length_delimited(buf, pos)
                links.append(_decode_link(raw))
            elif tag == _TAG_DATA:
                if data is not None:
                    raise DagPbError("data field repeated")
                data, pos = _length_delimited(buf, pos)
            else:
                raise DagPbError(f"unknown node field tag 0x{tag:02x}")
    except (ValueError, IndexError) as exc:
        if isinstance(exc, DagPbError):
            raise
        raise DagPbError(str(exc)) from exc
    return PBNode(tuple(links), data)


def has_links(block: bytes | memoryview) -> bool:
    """Whether a canonical dag-pb block has links, from its first byte (links come first)."""
    return len(block) > 0 and block[0] == _TAG_LINKS


def encode_node(links: Sequence[tuple[bytes, int]], data: bytes) -> bytes:
    """Encode a node as Kubo's importer does: links ``(binary CID, tsize)`` with empty names."""
    out = bytearray()
    for cid_bytes, tsize in links:
        link = (
            bytes((_TAG_LINK_HASH,))
            + encode_varint(len(cid_bytes))
            + cid_bytes
            + bytes((_TAG_LINK_NAME, 0, _TAG_LINK_TSIZE))
            + encode_varint(tsize)
        )
        out.append(_TAG_LINKS)
        out += encode_varint(len(link))
        out += link
    out.append(_TAG_DATA)
    out += encode_varint(len(data))
    out += data
    return bytes(out)


def data_field_prefix(data_length: int) -> bytes:
    """The bytes that precede ``Data`` of ``data_length`` bytes in a node without links."""
    return bytes((_TAG_DATA,)) + encode_varint(data_length)
