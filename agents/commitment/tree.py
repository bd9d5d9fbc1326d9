"""Merkle trees over tensors and states (PROTOCOL.md §4).

The rules, binding for every party and mirrored by the contracts:

- a tensor is flattened row-major as float32 little-endian bytes and cut into
  leaves of 256 values (1024 bytes); the last leaf is padded with zero bytes;
  a tensor with no elements has one all-zero leaf;
- ``leaf_hash = sha256(leaf)``, ``node = sha256(left || right)``; the leaf
  level is padded to a power of two with the hash of a zero leaf;
- ``tensor_root = sha256(u64be(numel) || u32be(ndim) || u64be(dim)... || merkle_root)``;
- a state root is the Merkle root, by the same rule, whose leaf hashes are the
  tensor roots of the state's tensors in name order (names compared as UTF-8
  bytes); a segment trace root and a step root are built the same way from
  step roots and op record hashes.

Everything here returns raw 32-byte digests; ``.hex()`` them for display.

Tensors are hashed by ``agents.commitment.hashing``: a whole tree in one
compiled call straight from the tensor's buffer, the leaves of large ones on
every core; machines without that engine (or without numba) use hashlib. Both
give the same bytes: the engine is checked against hashlib before it is used,
and the tests compare the two paths. docs/commitments.md has worked examples.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from agents.commitment.hashing import Sha256Engine

LEAF_VALUES = 256
LEAF_BYTES = LEAF_VALUES * 4
DIGEST_BYTES = 32
ZERO_LEAF_HASH = hashlib.sha256(bytes(LEAF_BYTES)).digest()
# From this many hashes on, a Merkle root over a list of hashes goes to the engine (below
# it the joining and the call cost more than hashlib's few node hashes).
FAST_MIN_HASHES = 8
# From this many full leaves on, a tensor's leaf hashes come from the engine's hash_many.
FAST_MIN_LEAVES = 64
_LITTLE_F32 = np.dtype("<f4")


def _sha256(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(data).digest()


def as_float32_array(tensor: Any) -> np.ndarray:
    """Return ``tensor`` (numpy array or torch tensor) as a C-contiguous float32 numpy array.

    No copy when the tensor already is one (on the CPU); the shape is kept as is,
    0-d included. Raises ``TypeError`` for any other dtype: a commitment never
    converts silently.
    """
    if hasattr(tensor, "detach"):  # torch.Tensor, without importing torch here
        tensor = tensor.detach().cpu().contiguous().numpy()
    array = np.asarray(tensor)
    if array.dtype != np.float32:
        raise TypeError(f"commitments are over float32 tensors, got {array.dtype}")
    # np.ascontiguousarray turns 0-d arrays into 1-d ones: restore the shape.
    return np.ascontiguousarray(array).astype("<f4", copy=False).reshape(array.shape)


@functools.cache
def engine() -> Sha256Engine | None:
    """The compiled sha256 engine in use here, or ``None`` (hashlib only).

    Loaded on first use, so importing the commitments loads no compiler: a process
    without numba (a GPU host, say) commits with hashlib and gets the same bytes.
    """
    try:
        from agents.commitment.hashing import engine as best_engine
    except ImportError:
        return None
    return best_engine()


def leaf_count(numel: int) -> int:
    """Number of (unpadded) leaves of a tensor with ``numel`` elements."""
    return max(1, -(-numel // LEAF_VALUES))


def leaf_hashes(array: Any, *, fast: bool = True) -> np.ndarray:
    """sha256 of every 1024-byte leaf of a float32 array, as a ``(leaves, 32)`` uint8 array.

    ``fast=False`` forces the hashlib reference path.
    """
    flat = as_float32_array(array).reshape(-1).view(np.uint8)
    count = leaf_count(flat.size // 4)
    full = flat.size // LEAF_BYTES
    compiled = engine() if fast and full >= FAST_MIN_LEAVES else None
    if compiled is not None:
        out = np.empty((count, DIGEST_BYTES), dtype=np.uint8)
        out[:full] = compiled.hash_many(flat, LEAF_BYTES, full)
    else:
        out = np.empty((count, DIGEST_BYTES), dtype=np.uint8)
        data = flat.data
        for i in range(full):
            out[i] = np.frombuffer(_sha256(data[i * LEAF_BYTES : (i + 1) * LEAF_BYTES]), np.uint8)
    if full < count:
        tail = flat[full * LEAF_BYTES :].tobytes()
        out[full] = np.frombuffer(_sha256(tail + bytes(LEAF_BYTES - len(tail))), np.uint8)
    return out


def _padded_width(count: int) -> int:
    width = 1
    while width < count:
        width *= 2
    return width


def merkle_root(hashes: Sequence[bytes] | np.ndarray, *, fast: bool = True) -> bytes:
    """Merkle root over leaf hashes, padding the leaf level with ``ZERO_LEAF_HASH``.

    ``hashes`` is a sequence of 32-byte digests or a ``(n, 32)`` uint8 array;
    ``fast=False`` forces the hashlib reference path.
    """
    count = len(hashes)
    compiled = engine() if fast and count >= FAST_MIN_HASHES else None
    if compiled is not None:
        if isinstance(hashes, np.ndarray):
            array = np.ascontiguousarray(hashes, dtype=np.uint8)
        else:
            array = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(count, DIGEST_BYTES)
        return compiled.tree_root(array)
    level = [bytes(h) for h in hashes]
    if not level:
        return ZERO_LEAF_HASH
    level += [ZERO_LEAF_HASH] * (_padded_width(len(level)) - len(level))
    while len(level) > 1:
        level = [_sha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def merkle_roots(
    hashes: np.ndarray, counts: Sequence[int] | np.ndarray, *, fast: bool = True
) -> np.ndarray:
    """``merkle_root`` of each of consecutive runs of the ``(n, 32)`` uint8 ``hashes``: run
    ``t`` is the next ``counts[t]`` rows (``counts`` summing to ``n``; an empty run's root
    is that of no hashes). Returns the roots as ``(len(counts), 32)`` uint8, computed in
    one engine call (``fast=False``: hashlib, root by root)."""
    given = np.asarray(counts)
    # Counts that are not whole numbers, or hashes of another type, would be cast silently
    # (a run of 1.7 read as 1, a float read modulo 256): refused instead.
    if given.ndim != 1 or (given.size and given.dtype.kind not in "iu"):
        raise ValueError("merkle_roots needs one axis of whole-number counts")
    sizes = given.astype(np.int64)
    if (
        hashes.ndim != 2
        or hashes.shape[1:] != (DIGEST_BYTES,)
        or hashes.dtype != np.uint8
        or (sizes < 0).any()
    ):
        raise ValueError("merkle_roots needs (n, 32) uint8 hashes and counts of at least 0")
    if int(sizes.sum()) != hashes.shape[0]:
        raise ValueError("merkle_roots: the counts do not add up to the hashes")
    compiled = engine() if fast else None
    if compiled is None or sizes.size == 0:
        ends = np.cumsum(sizes).tolist()
        roots = [
            merkle_root(hashes[end - size : end], fast=fast)
            for size, end in zip(sizes.tolist(), ends, strict=True)
        ]
        return np.frombuffer(b"".join(roots), dtype=np.uint8).reshape(-1, DIGEST_BYTES).copy()
    rows = np.ascontiguousarray(hashes, dtype=np.uint8)
    empty = np.flatnonzero(sizes == 0)
    if empty.size:
        # The root of no hashes is the zero leaf's hash: the root of that one leaf.
        firsts = np.cumsum(sizes) - sizes
        zero = np.frombuffer(ZERO_LEAF_HASH, dtype=np.uint8)
        rows = np.insert(rows, firsts[empty], zero, axis=0)
        sizes = np.maximum(sizes, 1)
    return compiled.tree_roots(rows, sizes)


def merkle_proof(hashes: Sequence[bytes] | np.ndarray, index: int) -> list[bytes]:
    """Sibling hashes from leaf ``index`` up to (not including) the root."""
    level = [bytes(h) for h in hashes]
    if not 0 <= index < max(len(level), 1):
        raise IndexError(f"leaf {index} out of range for {len(level)} leaves")
    if not level:
        level = [ZERO_LEAF_HASH]
    level += [ZERO_LEAF_HASH] * (_padded_width(len(level)) - len(level))
    proof: list[bytes] = []
    while len(level) > 1:
        proof.append(level[index ^ 1])
        level = [_sha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        index //= 2
    return proof


def verify_merkle_proof(leaf_hash: bytes, index: int, proof: Iterable[bytes], root: bytes) -> bool:
    """Whether ``proof`` links ``leaf_hash`` at position ``index`` to ``root``."""
    node = leaf_hash
    for sibling in proof:
        node = _sha256(sibling + node) if index & 1 else _sha256(node + sibling)
        index //= 2
    return index == 0 and node == root


def shape_header(shape: Sequence[int]) -> bytes:
    """``u64be(numel) || u32be(ndim) || u64be(dim)...``: the prefix of a tensor root."""
    numel = 1
    for dim in shape:
        numel *= int(dim)
    return struct.pack(">QI", numel, len(shape)) + b"".join(struct.pack(">Q", d) for d in shape)


@functools.lru_cache(maxsize=4096)
def _shape_header(shape: tuple[int, ...]) -> bytes:
    # A model's tensors come in a few shapes, hashed over and over.
    return shape_header(shape)


def root_from_merkle(shape: Sequence[int], tensor_merkle_root: bytes) -> bytes:
    """A tensor root from its shape and the Merkle root of its leaves."""
    return _sha256(_shape_header(tuple(shape)) + tensor_merkle_root)


def tensor_root(tensor: Any, *, fast: bool = True) -> bytes:
    """The tensor root of a float32 numpy array or torch tensor (PROTOCOL.md §4).

    With an engine (``agents.commitment.hashing``) the whole tree is one compiled call over
    the tensor's buffer; ``fast=False`` forces the hashlib reference path (same result).
    """
    if type(tensor) is np.ndarray and tensor.dtype == _LITTLE_F32 and tensor.flags.c_contiguous:
        array = tensor  # the common case, without as_float32_array's checks and copies
    else:
        array = as_float32_array(tensor)
    compiled = engine() if fast else None
    if compiled is not None:
        merkle = compiled.leaves_root(array.reshape(-1).view(np.uint8))
    else:
        merkle = merkle_root(leaf_hashes(array, fast=False), fast=False)
    return _sha256(_shape_header(array.shape) + merkle)


def row_roots(matrix: np.ndarray) -> list[bytes]:
    """``tensor_root`` of each row of a 2-D float32 array (a 1-D tensor each), the Merkle
    roots of all rows in one compiled call: for the thousands of batch index tensors of a
    task's steps."""
    array = as_float32_array(matrix)
    if array.ndim != 2:
        raise ValueError(f"row_roots takes a 2-D array, got {array.ndim}-D")
    count, width = array.shape
    header = _shape_header((width,))
    compiled = engine()
    if compiled is None or count == 0:
        return [_sha256(header + merkle_root(leaf_hashes(row, fast=False))) for row in array]
    stride = width * 4
    addresses = array.ctypes.data + stride * np.arange(count, dtype=np.int64)
    sizes = np.full(count, stride, dtype=np.int64)
    merkles = compiled.leaves_roots_at(addresses, sizes)
    return [_sha256(header + m.tobytes()) for m in merkles]


def state_root(named_tensors: Mapping[str, Any]) -> bytes:
    """The state root: Merkle root over tensor roots in name order (UTF-8 byte order)."""
    names = sorted(named_tensors, key=lambda name: name.encode())
    return merkle_root([tensor_root(named_tensors[name]) for name in names])


def state_tensors(named_tensors: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    """A state as the pool's ``publishState`` takes it: one ``(shape header, values)`` pair per
    tensor in name order, the values float32 little-endian, row-major, unpadded. The pool
    hashes these to ``state_root(named_tensors)``."""
    names = sorted(named_tensors, key=lambda name: name.encode())
    out = []
    for name in names:
        array = as_float32_array(named_tensors[name])
        out.append((shape_header(array.shape), array.astype("<f4").reshape(-1).tobytes()))
    return out


def tensor_leaf(tensor: Any, index: int) -> bytes:
    """The 1024 bytes of leaf ``index`` of a tensor, zero-padded."""
    data = as_float32_array(tensor).reshape(-1).view(np.uint8)
    if not 0 <= index < leaf_count(data.size // 4):
        raise IndexError(f"leaf {index} out of range")
    chunk = data[index * LEAF_BYTES : (index + 1) * LEAF_BYTES].tobytes()
    return chunk + bytes(LEAF_BYTES - len(chunk))


@dataclass(frozen=True)
class LeafProof:
    """A leaf of a tensor with everything needed to check it against the tensor root."""

    shape: tuple[int, ...]
    index: int
    leaf: bytes
    siblings: tuple[bytes, ...]

    def verify(self, root: bytes) -> bool:
        """Whether this leaf belongs, at its index, to the tensor with root ``root``."""
        merkle = self.leaf_merkle_root()
        return merkle is not None and root_from_merkle(self.shape, merkle) == root

    def leaf_merkle_root(self) -> bytes | None:
        """The Merkle root the proof implies, or ``None`` if the proof is malformed."""
        numel = 1
        for dim in self.shape:
            numel *= dim
        width = _padded_width(leaf_count(numel))
        if len(self.leaf) != LEAF_BYTES or len(self.siblings) != width.bit_length() - 1:
            return None
        if not 0 <= self.index < leaf_count(numel):
            return None
        node = _sha256(self.leaf)
        index = self.index
        for sibling in self.siblings:
            node = _sha256(sibling + node) if index & 1 else _sha256(node + sibling)
            index //= 2
        return node


def tensor_leaf_proof(tensor: Any, index: int) -> LeafProof:
    """A ``LeafProof`` for leaf ``index`` of ``tensor``."""
    array = as_float32_array(tensor)
    hashes = leaf_hashes(array)
    return LeafProof(
        shape=tuple(int(d) for d in array.shape),
        index=index,
        leaf=tensor_leaf(array, index),
        siblings=tuple(merkle_proof(hashes, index)),
    )
