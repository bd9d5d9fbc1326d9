"""Content identifiers as IPFS writes them: CIDv0 (base58btc multihash) and CIDv1 (multibase).

Only what the store needs is supported: sha2-256 multihashes, the dag-pb and raw
codecs for content, and the common multibase prefixes when parsing (base32 ``b``/``B``,
base58btc ``z``, base16 ``f``/``F``). CIDv1 strings are written in base32, like Kubo.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from agents.store.base import StoreError

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
SHA2_256_LENGTH = 32

# Codec names for error messages (the multicodec table's names).
CODEC_NAMES = {
    0x55: "raw",
    0x70: "dag-pb",
    0x71: "dag-cbor",
    0x0129: "dag-json",
    0x0200: "json",
    0x51: "cbor",
    0x78: "git-raw",
    0x0202: "car",
}

_B58_ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
# Varints in multiformats are at most 9 bytes (63 bits).
_MAX_VARINT_BYTES = 9


class InvalidCIDError(StoreError):
    """A string or byte sequence is not a well-formed CID."""


class UnsupportedCIDError(StoreError):
    """A well-formed CID the store cannot hold (another codec or hash function)."""


def encode_varint(value: int) -> bytes:
    """The unsigned LEB128 encoding of ``value`` (protobuf and multiformats varint)."""
    if value < 0:
        raise ValueError(f"varint of a negative number: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a minimal unsigned varint at ``pos``; return ``(value, next position)``.

    Raises ``ValueError`` for a truncated, overlong or non-minimal varint.
    """
    value = 0
    shift = 0
    for i in range(_MAX_VARINT_BYTES + 1):
        if pos + i >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if i > 0 and byte == 0:
                raise ValueError("non-minimal varint")
            return value, pos + i + 1
        shift += 7
    raise ValueError("varint longer than 9 bytes")


def b58encode(data: bytes) -> str:
    """Bitcoin base58 (multibase base58btc without its ``z`` prefix)."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    out = bytearray()
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58_ALPHABET[rem])
    return (b"1" * zeros + bytes(reversed(out))).decode("ascii")


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises ``ValueError`` on a character outside the alphabet."""
    raw = text.encode("ascii", errors="strict") if text.isascii() else None
    if raw is None:
        raise ValueError("non-ASCII character in base58 text")
    number = 0
    for char in raw:
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"invalid base58 character {chr(char)!r}")
        number = number * 58 + digit
    zeros = len(raw) - len(raw.lstrip(b"1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def _b32decode(text: str) -> bytes:
    padded = text.upper() + "=" * (-len(text) % 8)
    return base64.b32decode(padded)


@dataclass(frozen=True)
class CID:
    """A content identifier: version, codec and the sha2-256 digest of the block it names."""

    version: int
    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise InvalidCIDError(f"CID version {self.version} does not exist (0 or 1)")
        if self.version == 0 and self.codec != DAG_PB:
            raise InvalidCIDError("a CIDv0 always names a dag-pb block")
        if len(self.digest) != SHA2_256_LENGTH:
            raise InvalidCIDError(f"a sha2-256 digest has 32 bytes, not {len(self.digest)}")

    @property
    def multihash(self) -> bytes:
        """The multihash: hash function code, digest length, digest."""
        return bytes((SHA2_256, SHA2_256_LENGTH)) + self.digest

    def to_bytes(self) -> bytes:
        """The binary CID, as dag-pb links carry it."""
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + base64.b32encode(self.to_bytes()).decode("ascii").lower().rstrip("=")

    def __repr__(self) -> str:
        return f"CID({self})"

    @property
    def codec_name(self) -> str:
        return CODEC_NAMES.get(self.codec, f"0x{self.codec:x}")

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse a CID string (v0, or v1 in base32, base58btc or base16).

        Raises :class:`InvalidCIDError` for malformed text and :class:`UnsupportedCIDError`
        for a CID whose hash function is not sha2-256.
        """
        if not isinstance(text, str):
            raise InvalidCIDError(f"a CID is a string, not {type(text).__name__}")
        stripped = text.strip()
        if not stripped:
            raise InvalidCIDError("empty CID")
        shown = stripped if len(stripped) <= 100 else stripped[:100] + "..."
        if len(stripped) == 46 and stripped.startswith("Qm"):
            try:
                raw = b58decode(stripped)
            except ValueError as exc:
                raise InvalidCIDError(f"invalid CID {shown!r}: {exc}") from exc
            return cls._from_multihash(raw, 0, DAG_PB, shown)
        prefix, body = stripped[0], stripped[1:]
        try:
            if prefix in "bB":
                raw = _b32decode(body)
            elif prefix == "z":
                raw = b58decode(body)
            elif prefix in "fF":
                raw = bytes.fromhex(body)
            else:
                raise InvalidCIDError(
                    f"invalid CID {shown!r}: not a CIDv0 (Qm..., 46 characters) and "
                    f"multibase prefix {prefix!r} is not one of b, B, z, f, F"
                )
        except (ValueError, binascii.Error) as exc:
            raise InvalidCIDError(f"invalid CID {shown!r}: bad {prefix!r} encoding: {exc}") from exc
        return cls.from_bytes(raw, shown=shown)

    @classmethod
    def from_bytes(cls, raw: bytes, *, shown: str | None = None) -> CID:
        """Parse a binary CID (a CIDv0 multihash or a CIDv1)."""
        label = shown if shown is not None else raw.hex()
        if len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == SHA2_256_LENGTH:
            return cls._from_multihash(raw, 0, DAG_PB, label)
        try:
            version, pos = decode_varint(raw, 0)
            if version != 1:
                raise InvalidCIDError(f"invalid CID {label!r}: version {version} (expected 1)")
            codec, pos = decode_varint(raw, pos)
        except ValueError as exc:
            raise InvalidCIDError(f"invalid CID {label!r}: {exc}") from exc
        return cls._from_multihash(raw[pos:], 1, codec, label)

    @classmethod
    def _from_multihash(cls, mh: bytes, version: int, codec: int, label: str) -> CID:
        try:
            code, pos = decode_varint(mh, 0)
            length, pos = decode_varint(mh, pos)
        except ValueError as exc:
            raise InvalidCIDError(f"invalid CID {label!r}: bad multihash: {exc}") from exc
        if len(mh) - pos != length:
            raise InvalidCIDError(
                f"invalid CID {label!r}: multihash announces {length} digest bytes, "
                f"has {len(mh) - pos}"
            )
        if code != SHA2_256 or length != SHA2_256_LENGTH:
            raise UnsupportedCIDError(
                f"CID {label!r} uses hash function 0x{code:x} with {length} bytes; "
                "only sha2-256 is supported"
            )
        return cls(version, codec, bytes(mh[pos:]))

    def require_content(self) -> CID:
        """Return ``self`` if the store can hold the block it names (dag-pb or raw)."""
        if self.codec not in (DAG_PB, RAW):
            raise UnsupportedCIDError(
                f"CID {self} names a {self.codec_name} block; the store holds UnixFS files "
                "(dag-pb and raw blocks) only"
            )
        return self


def parse_content_cid(text: str) -> CID:
    """Parse ``text`` as a CID of content the store can hold (dag-pb or raw, sha2-256)."""
    return CID.parse(text).require_content()
