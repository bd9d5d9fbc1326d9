"""Commitments to tensors and states (PROTOCOL.md §4): the bottom layer every party shares.

- ``tree``: leaves, Merkle trees and proofs, tensor roots, state roots;
- ``digests``: ``Digest`` and ``Root``, 32-byte values as types of their own;
- ``hashing``: the compiled sha256 engines behind them (numba), loaded on first use;
  without them (no numba, or an engine that disagrees with hashlib) hashlib does the work.

Nothing here knows training, kernels, chains or stores; ``agents.exact`` builds its trace
roots on these functions.
"""

from agents.commitment.digests import Digest, Root
from agents.commitment.tree import (
    DIGEST_BYTES,
    FAST_MIN_HASHES,
    FAST_MIN_LEAVES,
    LEAF_BYTES,
    LEAF_VALUES,
    ZERO_LEAF_HASH,
    LeafProof,
    as_float32_array,
    engine,
    leaf_count,
    leaf_hashes,
    merkle_proof,
    merkle_root,
    merkle_roots,
    root_from_merkle,
    row_roots,
    shape_header,
    state_root,
    state_tensors,
    tensor_leaf,
    tensor_leaf_proof,
    tensor_root,
    verify_merkle_proof,
)

__all__ = [
    "DIGEST_BYTES",
    "FAST_MIN_HASHES",
    "FAST_MIN_LEAVES",
    "LEAF_BYTES",
    "LEAF_VALUES",
    "ZERO_LEAF_HASH",
    "Digest",
    "LeafProof",
    "Root",
    "as_float32_array",
    "engine",
    "leaf_count",
    "leaf_hashes",
    "merkle_proof",
    "merkle_root",
    "merkle_roots",
    "root_from_merkle",
    "row_roots",
    "shape_header",
    "state_root",
    "state_tensors",
    "tensor_leaf",
    "tensor_leaf_proof",
    "tensor_root",
    "verify_merkle_proof",
]
