"""32-byte values as types of their own: a ``Root`` is not a CID, a hash or any string.

The chain carries 32-byte values as ``bytes32`` (``0x``-prefixed hex in events and
call arguments); manifests write roots as bare hex. Both spellings parse to the
same value, and each value says which spelling a consumer gets:

- ``Digest``: any sha256 output or 32-byte word (a spec hash, a secret's hash,
  randomness);
- ``Root``: a Merkle root of PROTOCOL.md §4 (a state root, the checkpoint root, a
  trace root, the root over a report's trace roots).
"""

from __future__ import annotations

from typing import Self

DIGEST_SIZE = 32


class Digest(bytes):
    """Exactly 32 bytes; ``str()`` and ``chain`` give ``0x`` and 64 lowercase hex digits."""

    def __new__(cls, value: bytes | bytearray | memoryview) -> Self:
        raw = bytes(value)
        if len(raw) != DIGEST_SIZE:
            raise ValueError(f"a {cls.__name__.lower()} is {DIGEST_SIZE} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def parse(cls, text: str) -> Self:
        """From 64 hex digits, with or without ``0x``; ``ValueError`` otherwise."""
        body = text[2:] if text[:2].lower() == "0x" else text
        if len(body) != 2 * DIGEST_SIZE:
            raise ValueError(f"{text!r} is not {DIGEST_SIZE} bytes of hex")
        try:
            return cls(bytes.fromhex(body))
        except ValueError:
            raise ValueError(f"{text!r} is not {DIGEST_SIZE} bytes of hex") from None

    @property
    def chain(self) -> str:
        """``0x`` and the hex digits: how the chain's ABI and events spell it."""
        return "0x" + self.hex()

    def __str__(self) -> str:
        return self.chain

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.chain})"


class Root(Digest):
    """A Merkle root (PROTOCOL.md §4)."""
