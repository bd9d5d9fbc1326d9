"""Merkle trees kept level by level, for descents and proofs (PROTOCOL.md §4).

A descent of the pinpoint game reveals, at each round, the ``2^h`` nodes ``h`` levels
below a party's current node. ``MerkleLevels`` holds every level of one tree (the leaf
level padded to a power of two with ``ZERO_LEAF_HASH``) so both the nodes of any round
and a proof of any leaf are read off without hashing again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from agents.commitment import DIGEST_BYTES, ZERO_LEAF_HASH, engine


def depth(count: int) -> int:
    """Levels of a tree over ``count`` leaves: ``⌈log2 count⌉`` (0 for one leaf)."""
    levels = 0
    while (1 << levels) < count:
        levels += 1
    return levels


# From this many nodes on, a level's pairs are hashed in one call of the compiled engine
# (where there is one: the same digests, many pairs per call).
ENGINE_MIN_PAIRS = 64


def _pairs(level: np.ndarray) -> np.ndarray:
    pairs = len(level) // 2
    compiled = engine() if pairs >= ENGINE_MIN_PAIRS else None
    if compiled is not None:
        return compiled.hash_many(np.ascontiguousarray(level).reshape(-1), 2 * DIGEST_BYTES, pairs)
    out = np.empty((pairs, DIGEST_BYTES), dtype=np.uint8)
    for i in range(len(out)):
        out[i] = np.frombuffer(
            hashlib.sha256(level[2 * i].tobytes() + level[2 * i + 1].tobytes()).digest(), np.uint8
        )
    return out


class MerkleLevels:
    """Every level of a Merkle tree: ``level(0)`` the padded leaves, ``level(height)`` the root."""

    def __init__(self, leaves: Sequence[bytes] | np.ndarray) -> None:
        if isinstance(leaves, np.ndarray):
            array = np.ascontiguousarray(leaves, dtype=np.uint8).reshape(-1, DIGEST_BYTES)
        else:
            array = np.frombuffer(b"".join(bytes(x) for x in leaves), np.uint8).reshape(
                -1, DIGEST_BYTES
            )
        self.count = len(array)
        self.height = depth(max(self.count, 1))
        width = 1 << self.height
        padded = np.empty((width, DIGEST_BYTES), dtype=np.uint8)
        padded[: self.count] = array
        padded[self.count :] = np.frombuffer(ZERO_LEAF_HASH, np.uint8)
        self._levels = [padded]
        while len(self._levels[-1]) > 1:
            self._levels.append(_pairs(self._levels[-1]))

    @property
    def root(self) -> bytes:
        return bytes(self._levels[-1][0])

    def node(self, height: int, index: int) -> bytes:
        """The node ``height`` levels above the leaves at position ``index`` of its level."""
        return bytes(self._levels[height][index])

    def children(self, height: int, index: int, levels: int) -> list[bytes]:
        """The ``2^levels`` nodes ``levels`` below node (``height``, ``index``), left to right."""
        below = height - levels
        if below < 0:
            raise ValueError(f"a node at height {height} has no nodes {levels} levels below")
        first = index << levels
        return [self._levels[below][first + i].tobytes() for i in range(1 << levels)]

    def leaf(self, index: int) -> bytes:
        return bytes(self._levels[0][index])

    def proof(self, index: int) -> list[bytes]:
        """Siblings of leaf ``index`` from the leaf level up (the root excluded)."""
        out = []
        for level in self._levels[:-1]:
            out.append(level[index ^ 1].tobytes())
            index >>= 1
        return out


def subtree_root(nodes: Sequence[bytes]) -> bytes:
    """The root over ``nodes`` (a power of two of them), as the contract computes it."""
    level = [bytes(n) for n in nodes]
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]
