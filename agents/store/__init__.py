"""The artifact store: IPFS-exact CIDs, embedded by default, Kubo when configured."""

from agents.store.base import AddOptions, ArtifactStore, StoreError, canonical_json

__all__ = ["AddOptions", "ArtifactStore", "StoreError", "canonical_json"]
