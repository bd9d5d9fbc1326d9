"""A second, deliberately plain implementation of PROTOCOL.md §4, written from the
text alone (hashlib, struct, Python lists), to check agents.commitment against."""

from __future__ import annotations

import hashlib
import struct

import numpy as np


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaves(values: np.ndarray) -> list[bytes]:
    raw = np.asarray(values, dtype="<f4").tobytes()
    chunks = [raw[i : i + 1024] for i in range(0, len(raw), 1024)] or [b""]
    return [c + bytes(1024 - len(c)) for c in chunks]


def merkle(hashes: list[bytes]) -> bytes:
    level = list(hashes) or [sha(bytes(1024))]
    width = 1
    while width < len(level):
        width *= 2
    level += [sha(bytes(1024))] * (width - len(level))
    while len(level) > 1:
        level = [sha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def tensor_root(values: np.ndarray) -> bytes:
    shape = np.shape(values)
    header = struct.pack(">Q", int(np.prod(shape, dtype=np.int64)))
    header += struct.pack(">I", len(shape)) + b"".join(struct.pack(">Q", d) for d in shape)
    return sha(header + merkle([sha(leaf) for leaf in leaves(values)]))


def state_root(named: dict[str, np.ndarray]) -> bytes:
    return merkle([tensor_root(named[n]) for n in sorted(named, key=str.encode)])
