"""The artifact store: IPFS-exact CIDs, embedded by default, Kubo when configured.

Everything else in veritrain opens its store with :func:`open_store` and codes against
:class:`ArtifactStore`.
"""

from agents.store.base import (
    AddOptions,
    ArtifactStore,
    BackendError,
    CorruptBlockError,
    MissingBlockError,
    Retrieval,
    StoreError,
    UnavailableError,
    canonical_json,
)
from agents.store.cid import CID, InvalidCIDError, UnsupportedCIDError
from agents.store.config import STORE_ENV, default_store_path, open_store
from agents.store.importer import cid_of_bytes, cid_of_file

__all__ = [
    "CID",
    "STORE_ENV",
    "AddOptions",
    "ArtifactStore",
    "BackendError",
    "CorruptBlockError",
    "InvalidCIDError",
    "MissingBlockError",
    "Retrieval",
    "StoreError",
    "UnavailableError",
    "UnsupportedCIDError",
    "canonical_json",
    "cid_of_bytes",
    "cid_of_file",
    "default_store_path",
    "open_store",
]
