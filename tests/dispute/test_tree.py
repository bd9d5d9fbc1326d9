"""Merkle levels: every level is the documented tree's (PROTOCOL.md §4), whether a level's pairs
are hashed by the compiled engine or by hashlib."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from agents.commitment import ZERO_LEAF_HASH
from agents.dispute import tree
from agents.dispute.tree import MerkleLevels


def documented_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """The leaf level padded to a power of two with the zero leaf's hash, then each level's
    pairs hashed, written independently."""
    width = 1
    while width < len(leaves):
        width *= 2
    levels = [leaves + [ZERO_LEAF_HASH] * (width - len(leaves))]
    while len(levels[-1]) > 1:
        level = levels[-1]
        levels.append(
            [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        )
    return levels


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("count", [1, 2, 3, 127, 128, 129, 1000])
def test_levels_are_the_documented_trees(
    monkeypatch: pytest.MonkeyPatch, compiled: bool, count: int
) -> None:
    if not compiled:
        monkeypatch.setattr(tree, "engine", lambda: None)
    rng = np.random.default_rng(count)
    leaves = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)) for _ in range(count)]
    want = documented_levels(leaves)
    for given in (leaves, np.frombuffer(b"".join(leaves), np.uint8).reshape(count, 32)):
        levels = MerkleLevels(given)
        assert levels.height == len(want) - 1 and levels.root == want[-1][0]
        for height, level in enumerate(want):
            assert [levels.node(height, i) for i in range(len(level))] == level, height
        assert levels.proof(count - 1) == [
            want[h][((count - 1) >> h) ^ 1] for h in range(len(want) - 1)
        ]
