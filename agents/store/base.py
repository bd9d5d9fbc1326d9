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
from agents.files import write_atomically


class StoreError(VeritrainError):
    """An artifact could not be stored or read (missing, corrupt, unreachable backend, ...)."""


class MissingBlockError(StoreError):
    """A block the content needs is not in the store."""


class CorruptBlockError(StoreError):
    """A block's bytes do not hash to its CID (or do not decode as its codec says)."""


class BackendError(StoreError):
    """The configured backend (a Kubo node, ``veritrain store serve``) failed or is unreachable."""


class UnavailableError(MissingBlockError):
    """Content could not be retrieved, from the store or its peers, within a retrieval's bounds.

    Not the reader's own trouble: the store answered, and nobody it can reach gave the
    content in time (or the content is larger than the reader accepts).
    """


# How long a reader waits, by default, for content its node must fetch from peers (a
# store's own default; ``store.retrieval_timeout`` in an agent's configuration).
RETRIEVAL_TIMEOUT = 120.0


@dataclass(frozen=True)
class Retrieval:
    """The bounds of one availability check: content that cannot be had within them is
    unavailable.

    ``timeout``: seconds to wait for content the store must fetch (``None``: the store's
    own retrieval timeout). ``max_bytes`` is the most a reader will read of the content
    (``None``: everything).
    Content larger than that is not fetched beyond its root: the reader refuses it by its
    size, which is a different fault from its absence.
    """

    timeout: float | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise StoreError(f"a retrieval timeout must be positive, not {self.timeout!r}")
        if self.max_bytes is not None and self.max_bytes < 0:
            raise StoreError(f"max_bytes must be at least 0, not {self.max_bytes!r}")


# Kubo's chunker refuses chunks above 1 MiB; leaves stay within what every node exchanges.
MAX_CHUNK_SIZE = 1_048_576
# An inner node of 16384 links stays well under 1 MiB, the block size nodes accept.
MAX_LINKS = 16_384


@dataclass(frozen=True)
class AddOptions:
    """How content is chunked and addressed; the defaults are Kubo's ``ipfs add`` defaults."""

    cid_version: int = 0
    chunk_size: int = 262_144
    max_links: int = 174
    # None: Kubo's rule (raw leaves exactly when cid_version is 1).
    raw_leaves: bool | None = None

    def __post_init__(self) -> None:
        _require_int("cid_version", self.cid_version, 0, 1)
        _require_int("chunk_size", self.chunk_size, 1, MAX_CHUNK_SIZE)
        _require_int("max_links", self.max_links, 2, MAX_LINKS)
        if self.raw_leaves is not None and not isinstance(self.raw_leaves, bool):
            raise StoreError(f"raw_leaves must be true, false or unset, not {self.raw_leaves!r}")

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
        """Whether this store holds the whole content named by ``cid`` itself, asking nobody.

        A Kubo node answers from its own blockstore: content its peers hold is not "had".
        Callers that decide whether somebody *published* an artifact want
        :meth:`require_available` instead.
        """

    def require_available(self, cid: str, retrieval: Retrieval | None = None) -> None:
        """Make sure the whole content named by ``cid`` can be retrieved within ``retrieval``.

        A store with peers (a Kubo node) fetches what it lacks from them, within the
        timeout; afterwards the content reads without waiting on the network. Raises
        :class:`UnavailableError`, with the reason, when the content cannot be had within the
        bounds; :class:`BackendError` when the store itself fails (the caller's own trouble);
        ``InvalidCIDError`` for a CID that names no content. This default serves stores
        without peers: the content is available exactly when the store holds it.
        """
        if not self.has(cid):
            raise UnavailableError(f"{cid} is not in {self.location}")

    def available(self, cid: str, retrieval: Retrieval | None = None) -> bool:
        """Whether :meth:`require_available` succeeds (its other errors pass through)."""
        try:
            self.require_available(cid, retrieval)
        except UnavailableError:
            return False
        return True

    @property
    def location(self) -> str:
        """Where the store lives (a directory, a node's URL), for messages."""
        return repr(self)

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

    def get_file(self, cid: str, path: Path) -> None:
        """Write the content named by ``cid`` to ``path``, streaming.

        The file appears whole or not at all: the content goes to a temporary file in the
        same directory, which replaces ``path`` only once every block has been verified.
        """
        path = Path(path)
        try:
            write_atomically(path, self.open(cid))
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def put_json(self, value: Any, options: AddOptions | None = None) -> str:
        """Store ``value`` as canonical JSON (sorted keys, no spaces, UTF-8) and return its CID."""
        return self.put_bytes(canonical_json(value), options)

    def get_json(self, cid: str) -> Any:
        """The JSON value stored under ``cid``."""
        try:
            return json.loads(self.get_bytes(cid))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"artifact {cid} is not valid JSON: {exc}") from exc


def _require_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise StoreError(f"{name} must be an integer from {low} to {high}, not {value!r}")


def canonical_json(value: Any) -> bytes:
    """The canonical JSON encoding used for every hashed or stored JSON artifact."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
