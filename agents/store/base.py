"""The one interface every part of veritrain uses to keep and fetch artifacts.

Implementations: the embedded on-disk store (the default on a devnet) and the
Kubo HTTP RPC client. Both name content by the CID Kubo's ``ipfs add`` would
print for the same options, and both check every read against its CID.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.errors import VeritrainError


class StoreError(VeritrainError):
    """An artifact could not be stored or read (missing, corrupt, unreachable backend, ...)."""


@dataclass(frozen=True)
class AddOptions:
    """How content is chunked and addressed; the defaults are Kubo's ``ipfs add`` defaults."""

    cid_version: int = 0
    chunk_size: int = 262_144
    max_links: int = 174
    # None: Kubo's rule (raw leaves exactly when cid_version is 1).
    raw_leaves: bool | None = None

    @property
    def uses_raw_leaves(self) -> bool:
        return self.cid_version == 1 if self.raw_leaves is None else self.raw_leaves


class ArtifactStore(ABC):
    """Content-addressed storage of artifacts; CIDs are strings as ``ipfs add`` prints them."""

    @abstractmethod
    def put_bytes(self, data: bytes, options: AddOptions | None = None) -> str:
        """Store ``data`` and return its CID."""

    @abstractmethod
    def put_file(self, path: Path, options: AddOptions | None = None) -> str:
        """Store a file's content, streaming (bounded memory), and return its CID."""

    @abstractmethod
    def open(self, cid: str) -> Iterator[bytes]:
        """Stream the content named by ``cid`` in chunks, each checked against its hash."""

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the whole content named by ``cid`` is available."""

    @abstractmethod
    def pin(self, cid: str) -> None:
        """Keep ``cid`` (and everything it links to) through garbage collection."""

    @abstractmethod
    def unpin(self, cid: str) -> None:
        """Let garbage collection remove ``cid`` unless something else pins it."""

    @abstractmethod
    def pins(self) -> list[str]:
        """The CIDs pinned directly."""

    def get_bytes(self, cid: str) -> bytes:
        """The whole content named by ``cid``."""
        return b"".join(self.open(cid))

    def put_json(self, value: Any, options: AddOptions | None = None) -> str:
        """Store ``value`` as canonical JSON (sorted keys, no spaces, UTF-8) and return its CID."""
        return self.put_bytes(canonical_json(value), options)

    def get_json(self, cid: str) -> Any:
        """The JSON value stored under ``cid``."""
        try:
            return json.loads(self.get_bytes(cid))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"artifact {cid} is not valid JSON: {exc}") from exc


def canonical_json(value: Any) -> bytes:
    """The canonical JSON encoding used for every hashed or stored JSON artifact."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
