"""sha256 of many equal-sized messages at once, on every core, without copies.

Commitments hash 1024-byte leaves and 64-byte node pairs by the million.
hashlib keeps the GIL for buffers under 2 KiB, so Python threads cannot share
that work, and one sha256 stream is bound by the latency of its rounds. Three
engines, all run by numba threads straight from the tensor's buffer:

- ``VectorEngine``: sixteen messages at once, one per 32-bit lane of a
  16-wide integer vector (SHA-256 written in LLVM vector IR: funnel-shift
  rotates, a shuffle network that transposes sixteen message blocks, byte
  swaps). With AVX-512 it beats the SHA extensions of one stream.
- ``LibcryptoEngine``: libcrypto's ``SHA256_Init/Update/Final`` (the library
  Python's own ``_hashlib`` links), one message per call, on every thread.
- ``ShaNiEngine`` (``agents.commitment.shani``): the CPU's SHA extensions, two
  messages interleaved, where the CPU has them.

``engine()`` times the engines this CPU offers and takes the fastest; each
engine checks itself against hashlib when it is created and is only used if it
agrees. ``agents.commitment`` falls back to hashlib otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import cfunc, njit, prange
from numba.core import types as nbtypes
from numba.extending import intrinsic
from numba.np.numpy_support import carray

from agents.kernel_threads import LAUNCH_LOCK, parallel_clone

# OpenSSL's SHA256_CTX is 112 bytes; a little room to spare.
_CONTEXT_BYTES = 256
# Messages per work item: large enough to amortize the context, small enough to balance.
_CHUNK = 64
# The scalar hash's entry points where there is none (see ``Sha256Engine.leaves_root``).
_NO_SCALAR = np.zeros(3, dtype=np.int64)


def _call1_typer(typingctx: Any, fn: Any, a: Any) -> Any:
    sig = nbtypes.intc(nbtypes.intp, nbtypes.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(8).as_pointer()])
        target = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(target, [builder.inttoptr(args[1], ir.IntType(8).as_pointer())])

    return sig, codegen


def _call2_typer(typingctx: Any, fn: Any, a: Any, b: Any) -> Any:
    sig = nbtypes.intc(nbtypes.intp, nbtypes.intp, nbtypes.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [ptr, ptr])
        target = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(target, [builder.inttoptr(a, ptr) for a in args[1:]])

    return sig, codegen


def _call3_typer(typingctx: Any, fn: Any, a: Any, b: Any, c: Any) -> Any:
    sig = nbtypes.intc(nbtypes.intp, nbtypes.intp, nbtypes.intp, nbtypes.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [ptr, ptr, ir.IntType(64)])
        target = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(
            target, [builder.inttoptr(args[1], ptr), builder.inttoptr(args[2], ptr), args[3]]
        )

    return sig, codegen


_call1: Any = intrinsic(_call1_typer)
_call2: Any = intrinsic(_call2_typer)
_call3: Any = intrinsic(_call3_typer)


@njit(cache=True, parallel=True, nogil=True)
def _hash_many(
    init: int, update: int, final: int, base: int, size: int, count: int, out: int
) -> None:
    chunks = (count + _CHUNK - 1) // _CHUNK
    for c in prange(chunks):
        context = np.empty(_CONTEXT_BYTES, dtype=np.uint8)
        ctx = context.ctypes.data
        for i in range(c * _CHUNK, min(count, (c + 1) * _CHUNK)):
            _call1(init, ctx)
            _call3(update, ctx, base + i * size, size)
            _call2(final, out + i * 32, ctx)


def _libcrypto_candidates() -> list[str]:
    import _hashlib  # noqa: F401  (loads the libcrypto Python itself uses)

    found: list[str] = []
    maps = Path("/proc/self/maps")
    if maps.exists():
        for line in maps.read_text().splitlines():
            path = line.split()[-1] if line.split() else ""
            if "libcrypto" in os.path.basename(path) and path not in found:
                found.append(path)
    name = ctypes.util.find_library("crypto")
    if name and name not in found:
        found.append(name)
    return found


class Sha256Engine:
    """Hashes ``count`` consecutive messages of ``size`` bytes from a buffer, in parallel."""

    name: str

    def hash_many(self, buffer: np.ndarray, size: int, count: int) -> np.ndarray:
        """``(count, 32)`` digests of ``buffer[i*size:(i+1)*size]``; ``buffer`` is contiguous."""
        raise NotImplementedError

    # Whole trees: the vector rounds for full groups (engines that have them), and the
    # scalar hash (libcrypto's three entry points; zeros where there is none).
    _vector = False
    _scalar = _NO_SCALAR

    def leaves_root(self, data: np.ndarray) -> bytes:
        """The Merkle root over the 1024-byte leaves of ``data`` (1-D uint8, contiguous): the
        last leaf zero-padded, no bytes at all one zero leaf (PROTOCOL.md §4).

        Large buffers hash their leaves with ``hash_many`` (on every core); the rest of the
        tree, and everything for smaller ones, is one call on the calling thread.
        """
        _check_buffer(data, 1, data.size)
        full = data.size // 1024
        if full * 1024 >= PARALLEL_MIN_BYTES:
            leaves = (data.size + 1023) // 1024
            level = np.empty((leaves + 1, 32), dtype=np.uint8)
            level[:full] = self.hash_many(data, 1024, full)
            if leaves > full:
                tail = np.zeros(1024, dtype=np.uint8)
                tail[: data.size - full * 1024] = data[full * 1024 :]
                level[full] = np.frombuffer(hashlib.sha256(tail.tobytes()).digest(), np.uint8)
            return bytes(_tree_root(level, leaves, self._vector, self._scalar))
        return bytes(_leaves_root(data, self._vector, self._scalar))

    def thread_kernel(self) -> tuple[int, bool, np.ndarray]:
        """What ``leaves_roots_at`` runs, for threads without the GIL
        (``agents.commitment.threads``): the address of a compiled ``void (int64 addresses,
        int64 sizes, int64 count, int64 out, int64 vector, int64 scalar)`` (pointers to the
        int64 tables of ``count`` buffers, to the ``(count, 32)`` roots, to the three scalar
        entry points), and its vector flag and scalar entry points."""
        return _compiled_table_roots().address, self._vector, self._scalar

    def many_leaves_roots(self, buffers: list[np.ndarray]) -> np.ndarray:
        """``leaves_root`` of each buffer (1-D uint8, contiguous), as ``(n, 32)`` uint8, in
        one call on the calling thread without the GIL (for batches of small tensors)."""
        return self.leaves_roots_at(*_buffer_table(buffers))

    def leaves_roots_at(self, addresses: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """``many_leaves_roots`` of the buffers of ``sizes[i]`` bytes at ``addresses[i]``
        (int64 arrays of one length): the caller keeps those buffers alive and unchanged
        until this returns. Nothing here runs Python per buffer, so a hashing thread given a
        table made elsewhere takes the GIL only to start and to return."""
        _check_table(addresses, sizes)
        out = np.empty((addresses.size, 32), dtype=np.uint8)
        _many_leaves_roots(addresses, sizes, out, self._vector, self._scalar)
        return out

    def hash_messages(
        self, buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        """``(n, 32)`` digests of the messages ``buffer[offsets[i]:offsets[i] + lengths[i]]``
        (any lengths; ``buffer`` 1-D uint8, ``offsets`` and ``lengths`` int64), without the
        GIL where the engine has vector rounds (sixteen messages of one padded length at a
        time) or a scalar hash."""
        _check_messages(buffer, offsets, lengths)
        out = np.empty((offsets.size, 32), dtype=np.uint8)
        if self._vector:
            _vector_messages(self._scalar, buffer, offsets, lengths, out)
            return out
        if self._scalar[0] != 0:
            _scalar_messages(self._scalar, buffer, offsets, lengths, out)
            return out
        for i in range(offsets.size):
            start = int(offsets[i])
            message = buffer[start : start + int(lengths[i])].tobytes()
            out[i] = np.frombuffer(hashlib.sha256(message).digest(), np.uint8)
        return out

    def tree_root(self, hashes: np.ndarray) -> bytes:
        """The Merkle root over ``(n, 32)`` uint8 leaf hashes, ``n >= 1`` (the leaf level
        padded to a power of two with the hash of a zero leaf)."""
        count = hashes.shape[0]
        if count < 1 or hashes.shape[1:] != (32,):
            raise ValueError("tree_root needs an (n, 32) array of hashes, n >= 1")
        level = np.empty((count + 1, 32), dtype=np.uint8)
        level[:count] = hashes
        return bytes(_tree_root(level, count, self._vector, self._scalar))

    def tree_roots(self, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``tree_root`` of each of consecutive runs of the ``(n, 32)`` uint8 ``hashes``, run
        ``t`` the next ``counts[t] >= 1`` rows (``counts`` int64, summing to ``n``), as
        ``(len(counts), 32)`` uint8, in one call: every tree's pairs of one height are
        hashed together."""
        _check_forest(hashes, counts)
        trees = counts.size
        # Tree t's rows, then a spare row for the padding of an odd level: row i of the
        # hashes, in tree t, goes to row i + t.
        trees_before = np.arange(trees, dtype=np.int64)
        starts = trees_before.copy()
        starts[1:] += np.cumsum(counts[:-1])
        level = np.empty((hashes.shape[0] + trees, 32), dtype=np.uint8)
        level[np.arange(hashes.shape[0]) + np.repeat(trees_before, counts)] = hashes
        out = np.empty((trees, 32), dtype=np.uint8)
        _forest(level, starts, counts, out, self._vector, self._scalar)
        return out

    def agrees_with_hashlib(self) -> bool:
        """Whether this engine reproduces hashlib on messages of the sizes commitments use,
        and on whole trees of sizes around its group and level boundaries."""
        rng = np.random.default_rng(0)
        for size in (64, 1024):
            for count in (1, 15, 16, 17, 300):
                data = rng.integers(0, 256, size * count, dtype=np.uint8)
                got = self.hash_many(data, size, count)
                for i in sorted({0, count // 2, count - 1}):
                    want = hashlib.sha256(data[i * size : (i + 1) * size].tobytes()).digest()
                    if bytes(got[i]) != want:
                        return False
        for nbytes in (0, 3, 1024, 1025, 8 * 1024 + 5, 9 * 1024, 16 * 1024, 33 * 1024 - 1):
            data = rng.integers(0, 256, nbytes, dtype=np.uint8)
            if self.leaves_root(data) != _reference_leaves_root(data.tobytes()):
                return False
        for count in (1, 2, 3, 8, 9, 17, 40):
            hashes = rng.integers(0, 256, (count, 32), dtype=np.uint8)
            if self.tree_root(hashes) != _reference_tree_root([bytes(h) for h in hashes]):
                return False
        # A table of buffers whose leaves and node pairs fill groups across buffers.
        sizes = np.array([0, 1, 1023, 1024, 1025, 2048, 5000, 17 * 1024 + 3] * 3, dtype=np.int64)
        data = rng.integers(0, 256, int(sizes.sum()) + 2, dtype=np.uint8)
        offsets = np.cumsum(sizes) - sizes + 1
        got = self.leaves_roots_at(data.ctypes.data + offsets, sizes)
        for i, (start, size) in enumerate(zip(offsets, sizes, strict=True)):
            if bytes(got[i]) != _reference_leaves_root(data[start : start + size].tobytes()):
                return False
        # Messages of every length class around the padding boundaries, at odd offsets.
        lengths = np.array([0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 300], dtype=np.int64)
        offsets = np.cumsum(lengths + 3) - lengths - 2
        data = rng.integers(0, 256, int(offsets[-1] + lengths[-1] + 5), dtype=np.uint8)
        got = self.hash_messages(data, offsets, lengths)
        for i, (start, length) in enumerate(zip(offsets, lengths, strict=True)):
            want = hashlib.sha256(data[start : start + length].tobytes()).digest()
            if bytes(got[i]) != want:
                return False
        return True


def _reference_tree_root(level: list[bytes]) -> bytes:
    """PROTOCOL.md §4's Merkle root with hashlib, for the engines' self-check."""
    width = 1
    while width < len(level):
        width *= 2
    level = level + [_ZERO_ROOTS[0].tobytes()] * (width - len(level))
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def _reference_leaves_root(data: bytes) -> bytes:
    chunks = [data[i : i + 1024] for i in range(0, len(data), 1024)] or [b""]
    return _reference_tree_root([hashlib.sha256(c + bytes(1024 - len(c))).digest() for c in chunks])


class LibcryptoEngine(Sha256Engine):
    """libcrypto's sha256, one message per call, messages spread over numba threads."""

    name = "libcrypto"

    def __init__(self, library: str) -> None:
        lib = ctypes.CDLL(library)
        self.library = library
        self._fns = tuple(
            int(ctypes.cast(getattr(lib, name), ctypes.c_void_p).value or 0)
            for name in ("SHA256_Init", "SHA256_Update", "SHA256_Final")
        )
        self._lib = lib  # keeps the library loaded while the addresses are in use
        self._scalar = np.array(self._fns, dtype=np.int64)

    def hash_many(self, buffer: np.ndarray, size: int, count: int) -> np.ndarray:
        _check_buffer(buffer, size, count)
        out = np.empty((count, 32), dtype=np.uint8)
        if count:
            init, update, final = self._fns
            with LAUNCH_LOCK:
                _hash_many(init, update, final, buffer.ctypes.data, size, count, out.ctypes.data)
        return out


def _check_buffer(buffer: np.ndarray, size: int, count: int) -> None:
    if not buffer.flags.c_contiguous or buffer.nbytes < size * count:
        raise ValueError("hash_many needs a contiguous buffer holding every message")


def _buffer_table(buffers: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Addresses and sizes of 1-D uint8 buffers, checked, for the compiled batch kernels."""
    count = len(buffers)
    addresses = np.empty(count, dtype=np.int64)
    sizes = np.empty(count, dtype=np.int64)
    for i, buffer in enumerate(buffers):
        if buffer.dtype != np.uint8 or buffer.ndim != 1:
            raise ValueError("tensor buffers are 1-D uint8 views")
        _check_buffer(buffer, 1, buffer.size)
        addresses[i] = buffer.ctypes.data
        sizes[i] = buffer.size
    return addresses, sizes


def _check_forest(hashes: np.ndarray, counts: np.ndarray) -> None:
    if hashes.ndim != 2 or hashes.shape[1:] != (32,) or hashes.dtype != np.uint8:
        raise ValueError("tree_roots needs an (n, 32) uint8 array of hashes")
    if counts.ndim != 1 or counts.dtype != np.int64 or (counts < 1).any():
        raise ValueError("tree_roots needs one axis of int64 counts, each at least 1")
    if int(counts.sum()) != hashes.shape[0]:
        raise ValueError("tree_roots: the counts do not add up to the hashes")


def _check_table(addresses: np.ndarray, sizes: np.ndarray) -> None:
    if addresses.dtype != np.int64 or sizes.dtype != np.int64 or addresses.shape != sizes.shape:
        raise ValueError("buffer addresses and sizes are int64 arrays of one shape")
    if addresses.ndim != 1 or (sizes.size and sizes.min() < 0):
        raise ValueError("buffer addresses and sizes are 1-D, sizes not negative")


def _check_messages(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> None:
    if buffer.dtype != np.uint8 or buffer.ndim != 1 or not buffer.flags.c_contiguous:
        raise ValueError("messages come from a contiguous 1-D uint8 buffer")
    if offsets.dtype != np.int64 or lengths.dtype != np.int64 or offsets.shape != lengths.shape:
        raise ValueError("message offsets and lengths are int64 arrays of one shape")
    if offsets.ndim != 1:
        raise ValueError("message offsets and lengths are 1-D")
    if offsets.size and (
        offsets.min() < 0 or lengths.min() < 0 or (offsets + lengths).max() > buffer.size
    ):
        raise ValueError("a message lies outside the buffer")


# --- the 16-lane vector engine ----------------------------------------------------


def _primes(count: int) -> list[int]:
    found: list[int] = []
    candidate = 2
    while len(found) < count:
        if all(candidate % p for p in found):
            found.append(candidate)
        candidate += 1
    return found


def _integer_root(value: int, k: int) -> int:
    low, high = 0, 1 << (value.bit_length() // k + 2)
    while low < high:
        mid = (low + high + 1) // 2
        if mid**k <= value:
            low = mid
        else:
            high = mid - 1
    return low


# FIPS 180-4: fractional parts of the cube roots of the first 64 primes, and of the
# square roots of the first 8 (computed exactly with integer roots).
_K = [_integer_root(p << 96, 3) & 0xFFFFFFFF for p in _primes(64)]
_H0 = np.array([_integer_root(p << 64, 2) & 0xFFFFFFFF for p in _primes(8)], dtype=np.uint32)
_MASK = 0xFFFFFFFF
_LANES = 16
_VEC = ir.VectorType(ir.IntType(32), _LANES)
_I64 = ir.IntType(64)


def _splat(value: int) -> ir.Constant:
    return ir.Constant(_VEC, [value & _MASK] * _LANES)


def _llvm_function(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    existing = module.globals.get(name)
    return existing if existing is not None else ir.Function(module, fnty, name=name)


def _rotr(builder: ir.IRBuilder, x: ir.Value, n: int) -> ir.Value:
    fshr = _llvm_function(builder.module, "llvm.fshr.v16i32", ir.FunctionType(_VEC, [_VEC] * 3))
    return builder.call(fshr, [x, x, _splat(n)])


def _padding_schedule(message_bytes: int) -> list[int]:
    """W[t] + K[t] of the final block of a message whose length is a multiple of 64."""
    block = bytearray(64)
    block[0] = 0x80
    block[56:] = (message_bytes * 8).to_bytes(8, "big")
    w = [int.from_bytes(block[4 * i : 4 * i + 4], "big") for i in range(16)]

    def rotr(x: int, n: int) -> int:
        return ((x >> n) | (x << (32 - n))) & _MASK

    for t in range(16, 64):
        s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
        s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & _MASK)
    return [(w[t] + _K[t]) & _MASK for t in range(64)]


def _rounds(
    b: ir.IRBuilder, state: list[ir.Value], w: list[ir.Value] | None, kw: list[int] | None
) -> list[ir.Value]:
    """The 64 rounds of the compression function on 16 lanes (message ``w`` or constant ``kw``)."""
    a, bb, c, d, e, f, g, h = state
    schedule = list(w) if w is not None else []
    for t in range(64):
        if kw is None:
            if t >= 16:
                w15, w2 = schedule[t - 15], schedule[t - 2]
                s0 = b.xor(b.xor(_rotr(b, w15, 7), _rotr(b, w15, 18)), b.lshr(w15, _splat(3)))
                s1 = b.xor(b.xor(_rotr(b, w2, 17), _rotr(b, w2, 19)), b.lshr(w2, _splat(10)))
                schedule.append(b.add(b.add(schedule[t - 16], s0), b.add(schedule[t - 7], s1)))
            k_plus_w = b.add(schedule[t], _splat(_K[t]))
        else:
            k_plus_w = _splat(kw[t])
        big_s1 = b.xor(b.xor(_rotr(b, e, 6), _rotr(b, e, 11)), _rotr(b, e, 25))
        choose = b.xor(g, b.and_(e, b.xor(f, g)))
        t1 = b.add(b.add(h, big_s1), b.add(choose, k_plus_w))
        big_s0 = b.xor(b.xor(_rotr(b, a, 2), _rotr(b, a, 13)), _rotr(b, a, 22))
        majority = b.or_(b.and_(a, bb), b.and_(c, b.or_(a, bb)))
        t2 = b.add(big_s0, majority)
        h, g, f, e, d, c, bb, a = g, f, e, b.add(d, t1), c, bb, a, b.add(t1, t2)
    return [a, bb, c, d, e, f, g, h]


def _transpose(b: ir.IRBuilder, rows: list[ir.Value]) -> list[ir.Value]:
    """16x16 transpose of 32-bit words: four stages, each swapping one bit of row and column."""
    for k in range(4):
        bit = 1 << k
        out = list(rows)
        low_mask = [t if not t & bit else 16 + t - bit for t in range(16)]
        high_mask = [t + bit if not t & bit else 16 + t for t in range(16)]
        for low in range(16):
            if low & bit:
                continue
            high = low | bit
            mask_type = ir.VectorType(ir.IntType(32), 16)
            out[low] = b.shuffle_vector(rows[low], rows[high], ir.Constant(mask_type, low_mask))
            out[high] = b.shuffle_vector(rows[low], rows[high], ir.Constant(mask_type, high_mask))
        rows = out
    return rows


def _state_pointers(b: ir.IRBuilder, address: ir.Value) -> tuple[list[ir.Value], list[ir.Value]]:
    base = b.inttoptr(address, _VEC.as_pointer())
    pointers = [b.gep(base, [ir.Constant(_I64, i)]) for i in range(8)]
    return pointers, [b.load(p, align=4) for p in pointers]


def _compress16_typer(typingctx: Any, state: Any, base: Any, stride: Any) -> Any:
    """state[8][16] += rounds(one 64-byte block of each of 16 messages at base + lane*stride)."""
    sig = nbtypes.void(nbtypes.intp, nbtypes.intp, nbtypes.intp)

    def codegen(context: Any, b: Any, signature: Any, args: Any) -> Any:
        pointers, old = _state_pointers(b, args[0])
        rows = []
        ahead = b.mul(args[2], ir.Constant(_I64, _LANES))  # the same block of the next group
        prefetch = _llvm_function(
            b.module,
            "llvm.prefetch.p0",
            ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()] + [ir.IntType(32)] * 3),
        )
        for lane in range(_LANES):
            address = b.add(args[1], b.mul(args[2], ir.Constant(_I64, lane)))
            rows.append(b.load(b.inttoptr(address, _VEC.as_pointer()), align=1))
            upcoming = b.inttoptr(b.add(address, ahead), ir.IntType(8).as_pointer())
            flags = [ir.Constant(ir.IntType(32), v) for v in (0, 3, 1)]
            b.call(prefetch, [upcoming, *flags])
        bswap = _llvm_function(b.module, "llvm.bswap.v16i32", ir.FunctionType(_VEC, [_VEC]))
        words = [b.call(bswap, [column]) for column in _transpose(b, rows)]
        for pointer, before, after in zip(pointers, old, _rounds(b, old, words, None), strict=True):
            b.store(b.add(before, after), pointer, align=4)
        return context.get_dummy_value()

    return sig, codegen


_compress16: Any = intrinsic(_compress16_typer)


def _compress16_at_typer(typingctx: Any, state: Any, table: Any, offset: Any) -> Any:
    """state[8][16] += rounds(the 64-byte block at table[lane] + offset of each lane), where
    ``table`` is the address of sixteen int64 message addresses."""
    sig = nbtypes.void(nbtypes.intp, nbtypes.intp, nbtypes.intp)

    def codegen(context: Any, b: Any, signature: Any, args: Any) -> Any:
        pointers, old = _state_pointers(b, args[0])
        lanes = b.inttoptr(args[1], _I64.as_pointer())
        rows = []
        for lane in range(_LANES):
            start = b.load(b.gep(lanes, [ir.Constant(_I64, lane)]), align=8)
            address = b.add(start, args[2])
            rows.append(b.load(b.inttoptr(address, _VEC.as_pointer()), align=1))
        bswap = _llvm_function(b.module, "llvm.bswap.v16i32", ir.FunctionType(_VEC, [_VEC]))
        words = [b.call(bswap, [column]) for column in _transpose(b, rows)]
        for pointer, before, after in zip(pointers, old, _rounds(b, old, words, None), strict=True):
            b.store(b.add(before, after), pointer, align=4)
        return context.get_dummy_value()

    return sig, codegen


_compress16_at: Any = intrinsic(_compress16_at_typer)


def _padding_intrinsic(message_bytes: int) -> Any:
    kw = _padding_schedule(message_bytes)

    @intrinsic
    def pad(typingctx: Any, state: Any) -> Any:
        sig = nbtypes.void(nbtypes.intp)

        def codegen(context: Any, b: Any, signature: Any, args: Any) -> Any:
            pointers, old = _state_pointers(b, args[0])
            for pointer, before, after in zip(
                pointers, old, _rounds(b, old, None, kw), strict=True
            ):
                b.store(b.add(before, after), pointer, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return pad


_pad_1024 = _padding_intrinsic(1024)
_pad_64 = _padding_intrinsic(64)


def _hash_groups_kernel(base: int, size: int, groups: int, out: np.ndarray) -> None:
    # Each group is 16 consecutive messages; lane l hashes message 16*g + l.
    for g in prange(groups):
        _vector_group(base + g * _LANES * size, size, out, g * _LANES, _LANES)


_hash_groups_serial = njit(cache=True, nogil=True)(_hash_groups_kernel)
_hash_groups_parallel = njit(cache=True, nogil=True, parallel=True)(
    parallel_clone(_hash_groups_kernel)
)
# Below this many bytes a hashing job stays on the calling thread (no pool wake-up).
PARALLEL_MIN_BYTES = 1 << 20


class VectorEngine(Sha256Engine):
    """Sixteen messages per vector, groups of sixteen spread over numba threads.

    Handles the message sizes commitments use: 1024-byte leaves and 64-byte node pairs.
    """

    name = "vector16"
    sizes = (64, 1024)
    _vector = True

    def __init__(self) -> None:
        # Partial groups of a tree go through libcrypto where it loads (see leaves_root).
        self._scalar_engine = _make_engine("libcrypto")
        if self._scalar_engine is not None:
            self._scalar = self._scalar_engine._scalar

    def hash_many(self, buffer: np.ndarray, size: int, count: int) -> np.ndarray:
        _check_buffer(buffer, size, count)
        if size not in self.sizes:
            raise ValueError(f"the vector engine hashes messages of {self.sizes} bytes")
        out = np.empty((count, 32), dtype=np.uint8)
        full = count // _LANES
        if full and full * _LANES * size >= PARALLEL_MIN_BYTES:
            with LAUNCH_LOCK:
                _hash_groups_parallel(buffer.ctypes.data, size, full, out)
        elif full:
            _hash_groups_serial(buffer.ctypes.data, size, full, out)
        rest = count - full * _LANES
        if rest:
            # The last partial group goes through a zero-filled scratch group.
            scratch = np.zeros(_LANES * size, dtype=np.uint8)
            flat = buffer.reshape(-1).view(np.uint8)
            scratch[: rest * size] = flat[full * _LANES * size : count * size]
            tail = np.empty((_LANES, 32), dtype=np.uint8)
            _hash_groups_serial(scratch.ctypes.data, size, 1, tail)
            out[full * _LANES :] = tail[:rest]
        return out


# --- whole Merkle trees in one call -------------------------------------------------
#
# A tensor's Merkle root (PROTOCOL.md §4) from its bytes, every level in one compiled
# call: full groups of sixteen messages go through the vector rounds; a last partial
# group of fewer than ``_SCALAR_BELOW`` messages goes through libcrypto one message at
# a time where it is loaded (sixteen lanes cost about as much as nine messages through
# the CPU's SHA instructions, measured here), else through the vector rounds with the
# unused lanes zero. An odd level is padded with the root of an all-zero subtree of its
# height, which is the same as padding the leaf level with zero-leaf hashes.

_SCALAR_BELOW = 9
# Roots of all-zero-leaf subtrees of height 0..64 (row h: height h).
_ZERO_ROOTS = np.zeros((65, 32), dtype=np.uint8)
_ZERO_ROOTS[0] = np.frombuffer(hashlib.sha256(bytes(1024)).digest(), dtype=np.uint8)
for _h in range(1, 65):
    _ZERO_ROOTS[_h] = np.frombuffer(
        hashlib.sha256(_ZERO_ROOTS[_h - 1].tobytes() * 2).digest(), dtype=np.uint8
    )


@njit(cache=True, nogil=True)
def _vector_group(base: int, size: int, out: np.ndarray, row: int, lanes: int) -> None:
    # Digests of the 16 messages of ``size`` bytes at ``base``; the first ``lanes`` go to
    # out[row:row + lanes].
    state = np.empty((8, _LANES), dtype=np.uint32)
    for word in range(8):
        for lane in range(_LANES):
            state[word, lane] = _H0[word]
    for block in range(size // 64):
        _compress16(state.ctypes.data, base + block * 64, size)
    _finish_group(state, size, out, row, lanes)


@njit(cache=True, nogil=True)
def _finish_group(state: np.ndarray, size: int, out: np.ndarray, row: int, lanes: int) -> None:
    # The padding block of 16 messages of ``size`` bytes, then the first ``lanes`` digests
    # to out[row:row + lanes].
    if size == 1024:
        _pad_1024(state.ctypes.data)
    else:
        _pad_64(state.ctypes.data)
    for lane in range(lanes):
        for word in range(8):
            v = state[word, lane]
            out[row + lane, 4 * word] = v >> 24
            out[row + lane, 4 * word + 1] = (v >> 16) & 0xFF
            out[row + lane, 4 * word + 2] = (v >> 8) & 0xFF
            out[row + lane, 4 * word + 3] = v & 0xFF


@njit(cache=True, nogil=True)
def _scalar_hash(scalar: np.ndarray, base: int, size: int, destination: int) -> None:
    context = np.empty(_CONTEXT_BYTES, dtype=np.uint8)
    ctx = context.ctypes.data
    _call1(scalar[0], ctx)
    _call3(scalar[1], ctx, base, size)
    _call2(scalar[2], destination, ctx)


@njit(cache=True, nogil=True)
def _scalar_messages(
    scalar: np.ndarray,
    buffer: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    out: np.ndarray,
) -> None:
    base = buffer.ctypes.data
    for i in range(offsets.size):
        _scalar_hash(scalar, base + offsets[i], lengths[i], out.ctypes.data + i * 32)


# Messages of any length, sixteen at a time (``hash_messages`` on the vector engine): the
# messages of one padded block count share a group, each padded in its lane of a scratch
# group. A group of fewer than ``_SCALAR_MESSAGES_BELOW`` messages, or of messages longer
# than ``_VECTOR_MESSAGE_BLOCKS`` blocks (a lane's copy and padding would cost more than
# the rounds it shares), goes through the scalar hash where there is one (measured here:
# sixteen lanes of two blocks cost about three calls of libcrypto).
_SCALAR_MESSAGES_BELOW = 3
_VECTOR_MESSAGE_BLOCKS = 32


@njit(cache=True, nogil=True)
def _vector_messages(
    scalar: np.ndarray,
    buffer: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    out: np.ndarray,
) -> None:
    # out[i] = sha256(buffer[offsets[i]:offsets[i] + lengths[i]]).
    count = offsets.size
    if count == 0:
        return
    blocks = (lengths + 72) // 64  # the message, 0x80, zeros, the 64-bit bit length
    # The messages in order of their block count (a counting sort), those longer than
    # _VECTOR_MESSAGE_BLOCKS in one bucket at the end, in their own order.
    keys = np.minimum(blocks, _VECTOR_MESSAGE_BLOCKS + 1)
    starts = np.zeros(_VECTOR_MESSAGE_BLOCKS + 3, dtype=np.int64)
    for i in range(count):
        starts[keys[i] + 1] += 1
    for key in range(1, starts.size):
        starts[key] += starts[key - 1]
    order = np.empty(count, dtype=np.int64)
    for i in range(count):
        order[starts[keys[i]]] = i
        starts[keys[i]] += 1
    state = np.empty((8, _LANES), dtype=np.uint32)
    scratch = np.empty(_LANES * keys.max() * 64, dtype=np.uint8)
    base = buffer.ctypes.data
    first = 0
    while first < count:
        width = blocks[order[first]]
        end = first + 1
        while end < count and end - first < _LANES and blocks[order[end]] == width:
            end += 1
        lanes = end - first
        if scalar[0] != 0 and (lanes < _SCALAR_MESSAGES_BELOW or width > _VECTOR_MESSAGE_BLOCKS):
            for k in range(first, end):
                i = order[k]
                _scalar_hash(scalar, base + offsets[i], lengths[i], out.ctypes.data + i * 32)
            first = end
            continue
        stride = width * 64
        if scratch.size < _LANES * stride:
            scratch = np.empty(_LANES * stride, dtype=np.uint8)
        # Each used lane: the message, 0x80, zeros, the bit length (big-endian); the bytes
        # of unused lanes are hashed as they are and their digests dropped.
        # (Through pointers: plain loops the compiler turns into memcpy and memset.)
        for lane in range(lanes):
            i = order[first + lane]
            length = lengths[i]
            source = _byte_pointer(base + offsets[i])
            lane_bytes = _byte_pointer(scratch.ctypes.data + lane * stride)
            for j in range(length):
                lane_bytes[j] = source[j]
            lane_bytes[length] = 0x80
            for j in range(length + 1, stride - 8):
                lane_bytes[j] = 0
            bits = length * 8
            for k in range(8):
                lane_bytes[stride - 1 - k] = (bits >> (8 * k)) & 0xFF
        for word in range(8):
            for lane in range(_LANES):
                state[word, lane] = _H0[word]
        for block in range(width):
            _compress16(state.ctypes.data, scratch.ctypes.data + block * 64, stride)
        for lane in range(lanes):
            row = order[first + lane]
            for word in range(8):
                v = state[word, lane]
                out[row, 4 * word] = v >> 24
                out[row, 4 * word + 1] = (v >> 16) & 0xFF
                out[row, 4 * word + 2] = (v >> 8) & 0xFF
                out[row, 4 * word + 3] = v & 0xFF
        first = end


@njit(cache=True, nogil=True)
def _hash_run(
    source: np.ndarray, size: int, count: int, out: np.ndarray, vector: bool, scalar: np.ndarray
) -> None:
    # out[i] = sha256(source[i*size:(i+1)*size]) for i < count, where ``source`` (uint8)
    # may end early: missing bytes of the last message are zero.
    base = source.ctypes.data
    # Messages wholly inside ``source`` are hashed in place; a cut one from a zeroed copy.
    whole = min(count, source.size // size)
    full = whole // _LANES if vector else 0
    for g in range(full):
        _vector_group(base + g * _LANES * size, size, out, g * _LANES, _LANES)
    start = full * _LANES
    rest = count - start
    if rest == 0:
        return
    if scalar[0] != 0 and (not vector or rest < _SCALAR_BELOW):
        for i in range(start, whole):
            _scalar_hash(scalar, base + i * size, size, out.ctypes.data + i * 32)
        if whole < count:
            last = np.zeros(size, dtype=np.uint8)
            tail = source[whole * size :]
            last[: tail.size] = tail
            _scalar_hash(scalar, last.ctypes.data, size, out.ctypes.data + whole * 32)
        return
    scratch = np.zeros(_LANES * size, dtype=np.uint8)
    tail = source[start * size : min(source.size, count * size)]
    scratch[: tail.size] = tail
    _vector_group(scratch.ctypes.data, size, out, start, rest)


@njit(cache=True, nogil=True)
def _tree_root(level: np.ndarray, count: int, vector: bool, scalar: np.ndarray) -> np.ndarray:
    # The Merkle root over the first ``count`` rows of ``level`` (count >= 1; ``level``
    # has a spare row for the padding of an odd level; it is overwritten).
    other = np.empty_like(level)
    height = 0
    while count > 1:
        if count % 2:
            level[count] = _ZERO_ROOTS[height]
            count += 1
        pairs = count // 2
        _hash_run(level.reshape(-1)[: count * 32], 64, pairs, other, vector, scalar)
        level, other = other, level
        count = pairs
        height += 1
    root: np.ndarray = level[0].copy()
    return root


@njit(cache=True, nogil=True)
def _leaves_root(data: np.ndarray, vector: bool, scalar: np.ndarray) -> np.ndarray:
    # The Merkle root over the 1024-byte leaves of ``data`` (the last one zero-padded;
    # no bytes at all: one zero leaf).
    leaves = max(1, (data.size + 1023) // 1024)
    level = np.empty((leaves + 1, 32), dtype=np.uint8)
    _hash_run(data, 1024, leaves, level, vector, scalar)
    root: np.ndarray = _tree_root(level, leaves, vector, scalar)
    return root


def _pointer_intrinsic(name: str, element: Any, bits: int) -> Any:
    """A numba intrinsic giving a pointer to ``element`` values (integers ``bits`` wide) at an
    integer address (for ``numba.carray``)."""

    def typer(typingctx: Any, address: Any) -> Any:
        sig = nbtypes.CPointer(element)(nbtypes.intp)  # type: ignore[no-untyped-call]

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.inttoptr(args[0], ir.IntType(bits).as_pointer())

        return sig, codegen

    typer.__name__ = typer.__qualname__ = name
    return intrinsic(typer)


_byte_pointer: Any = _pointer_intrinsic("_byte_pointer", nbtypes.uint8, 8)
# An ``int64*`` at an address: a word read from memory numpy does not describe as an array.
word_pointer: Any = _pointer_intrinsic("word_pointer", nbtypes.int64, 64)


# --- the trees of many buffers together ----------------------------------------------
#
# A batch of small tensors has few leaves each: hashed tree by tree, most leaves and
# nodes would fall into partial groups. Here every leaf of every buffer is one message of
# a single list, hashed sixteen at a time wherever it lies (the lanes read from sixteen
# addresses), and so is every node pair of one height across all trees; only the last
# group of a list is partial.

# Buffers of at least this many leaves keep a tree of their own (``_leaves_root``): about
# where the batch stops being faster, measured here.
_ALONE_LEAVES = 256


@njit(cache=True, nogil=True)
def _vector_at(table: np.ndarray, first: int, size: int, out: np.ndarray, lanes: int) -> None:
    # out[first + l] = sha256 of the ``size``-byte message at table[first + l], l < lanes;
    # table[first:first + 16] are sixteen readable addresses.
    state = np.empty((8, _LANES), dtype=np.uint32)
    for word in range(8):
        for lane in range(_LANES):
            state[word, lane] = _H0[word]
    lanes_at = table.ctypes.data + first * 8
    for block in range(size // 64):
        _compress16_at(state.ctypes.data, lanes_at, block * 64)
    _finish_group(state, size, out, first, lanes)


@njit(cache=True, nogil=True)
def _hash_at(
    addresses: np.ndarray,
    size: int,
    out: np.ndarray,
    owner: np.ndarray,
    vector: bool,
    scalar: np.ndarray,
) -> None:
    # out[i] = sha256 of the ``size``-byte message (64 or 1024) at addresses[i]. ``owner``
    # is an array some addresses point into: an argument stays alive for the call, where
    # numba could free an array of the caller's after its last use by name. Full groups of
    # sixteen through the vector rounds; the last partial group as ``_hash_run``'s.
    count = addresses.size
    full = count // _LANES if vector else 0
    for g in range(full):
        _vector_at(addresses, g * _LANES, size, out, _LANES)
    start = full * _LANES
    rest = count - start
    if rest == 0:
        return
    if scalar[0] != 0 and (not vector or rest < _SCALAR_BELOW):
        for i in range(start, count):
            _scalar_hash(scalar, addresses[i], size, out.ctypes.data + i * 32)
        return
    # The unused lanes hash the group's first message again; their digests are dropped.
    table = np.empty(_LANES, dtype=np.int64)
    table[:] = addresses[start]
    table[:rest] = addresses[start:]
    group = np.empty((_LANES, 32), dtype=np.uint8)
    _vector_at(table, 0, size, group, rest)
    out[start:] = group[:rest]


@njit(cache=True, nogil=True)
def forest_pairs(
    level: np.ndarray, starts: np.ndarray, counts: np.ndarray, height: int
) -> np.ndarray:
    # The addresses of the node pairs of every tree t over rows starts[t] .. starts[t] +
    # counts[t] - 1 of ``level`` at ``height`` (none once every tree is down to its root);
    # an odd level is first padded in its spare row with the root of an all-zero subtree of
    # the level's height.
    nodes = 0
    for t in range(counts.size):
        if counts[t] > 1:
            nodes += (counts[t] + 1) // 2
    addresses = np.empty(nodes, dtype=np.int64)
    base = level.ctypes.data
    k = 0
    for t in range(counts.size):
        c = counts[t]
        if c > 1:
            if c % 2:
                level[starts[t] + c] = _ZERO_ROOTS[height]
                c += 1
            for j in range(c // 2):
                addresses[k] = base + (starts[t] + 2 * j) * 32
                k += 1
    return addresses


@njit(cache=True, nogil=True)
def forest_up(
    level: np.ndarray, starts: np.ndarray, counts: np.ndarray, hashed: np.ndarray
) -> None:
    # Each tree's next level: its pairs' hashes (``hashed``, in ``forest_pairs``'s order)
    # written over its first rows, its count halved (rounded up).
    k = 0
    for t in range(counts.size):
        if counts[t] > 1:
            c = (counts[t] + 1) // 2
            level[starts[t] : starts[t] + c] = hashed[k : k + c]
            k += c
            counts[t] = c


@njit(cache=True, nogil=True)
def _forest(
    level: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    roots: np.ndarray,
    vector: bool,
    scalar: np.ndarray,
) -> None:
    # The Merkle root of each tree t over rows starts[t] .. starts[t] + counts[t] - 1 of
    # ``level`` (each tree has one spare row after its hashes, for an odd level's padding;
    # rows are overwritten). The node pairs of every tree at one height are hashed together.
    counts = counts.copy()
    height = 0
    addresses = forest_pairs(level, starts, counts, height)
    while addresses.size:
        hashed = np.empty((addresses.size, 32), dtype=np.uint8)
        _hash_at(addresses, 64, hashed, level, vector, scalar)
        forest_up(level, starts, counts, hashed)
        height += 1
        addresses = forest_pairs(level, starts, counts, height)
    for t in range(counts.size):
        roots[t] = level[starts[t]]


@njit(cache=True, nogil=True)
def _many_leaves_roots(
    addresses: np.ndarray, sizes: np.ndarray, out: np.ndarray, vector: bool, scalar: np.ndarray
) -> None:
    # The Merkle root over the 1024-byte leaves of each buffer (the last leaf zero-padded,
    # an empty buffer one zero leaf). A large buffer's tree is hashed on its own (its
    # partial groups are a small part of it); in the others, groups of sixteen whole leaves
    # are hashed in place (as ``_hash_run`` does) and the other leaves, fewer than sixteen a
    # buffer, join one list with every other buffer's; then the levels of all trees
    # together.
    trees = addresses.size
    counts = np.empty(trees, dtype=np.int64)
    starts = np.empty(trees, dtype=np.int64)
    total = 0
    partial = 0
    listed = 0
    for t in range(trees):
        leaves_t = max(1, (sizes[t] + 1023) // 1024)
        if leaves_t >= _ALONE_LEAVES:
            counts[t] = 1  # its root, put in place below
        else:
            counts[t] = leaves_t
            listed += leaves_t - ((sizes[t] // 1024) // _LANES * _LANES if vector else 0)
            if sizes[t] % 1024 or sizes[t] == 0:
                partial += 1
        starts[t] = total + t
        total += counts[t]
    level = np.empty((total + trees, 32), dtype=np.uint8)
    # Cut last leaves (and the zero leaf of an empty buffer), zero-padded.
    scratch = np.zeros(max(partial, 1) * 1024, dtype=np.uint8)
    leaves = np.empty(listed, dtype=np.int64)
    rows = np.empty(listed, dtype=np.int64)
    k = 0
    p = 0
    for t in range(trees):
        if (sizes[t] + 1023) // 1024 >= _ALONE_LEAVES:
            data = carray(_byte_pointer(addresses[t]), (sizes[t],))
            level[starts[t]] = _leaves_root(data, vector, scalar)
            continue
        full = sizes[t] // 1024
        groups = full // _LANES if vector else 0
        for g in range(groups):
            _vector_group(
                addresses[t] + g * _LANES * 1024, 1024, level, starts[t] + g * _LANES, _LANES
            )
        for j in range(groups * _LANES, full):
            leaves[k] = addresses[t] + j * 1024
            rows[k] = starts[t] + j
            k += 1
        if full < counts[t]:
            rest = sizes[t] - full * 1024
            scratch[p * 1024 : p * 1024 + rest] = carray(
                _byte_pointer(addresses[t] + full * 1024), (rest,)
            )
            leaves[k] = scratch.ctypes.data + p * 1024
            rows[k] = starts[t] + full
            k += 1
            p += 1
    hashed = np.empty((leaves.size, 32), dtype=np.uint8)
    _hash_at(leaves, 1024, hashed, scratch, vector, scalar)
    for i in range(rows.size):
        level[rows[i]] = hashed[i]
    _forest(level, starts, counts, out, vector, scalar)


def _has_feature(name: str) -> bool:
    return bool(llvm.get_host_cpu_features().get(name, False))


# Bytes each candidate hashes when ``engine`` times the engines a CPU offers, and how many
# times (the shortest time counts: other work on the machine only ever adds time).
_TRIAL_BYTES = 1 << 19
_TRIAL_ROUNDS = 5
# A candidate this many times slower than the best after a round cannot win on noise: it
# is not timed again (an engine slowed a hundredfold costs one trial, not five).
_TRIAL_HOPELESS = 10.0


@functools.cache
def engine() -> Sha256Engine | None:
    """The fastest engine that agrees with hashlib here, or ``None`` (use hashlib).

    The candidates are libcrypto, the SHA-extension engine where the CPU has those
    instructions and the vector engine where it has AVX-512; of those that agree with
    hashlib, the fastest on a short trial (one thread, interleaved rounds). Without any of
    them, the vector engine as it runs on this CPU. ``VERITRAIN_HASH_ENGINE`` forces one:
    ``shani``, ``vector16``, ``libcrypto`` or ``hashlib``.
    """
    forced = os.environ.get("VERITRAIN_HASH_ENGINE", "")
    if forced == "hashlib":
        return None
    if forced:
        return _checked(forced)
    names = [name for name, feature in _CANDIDATES if not feature or _has_feature(feature)]
    found = [candidate for candidate in map(_checked, names) if candidate is not None]
    if found:
        return fastest(found)
    return _checked("vector16")


# The engines ``engine`` weighs, each with the CPU feature it needs (none: any CPU).
_CANDIDATES = (("shani", "sha"), ("vector16", "avx512f"), ("libcrypto", ""))
ENGINE_NAMES = ("shani", "vector16", "libcrypto")


def runnable_engines() -> list[Sha256Engine]:
    """Every engine this CPU runs that agrees with hashlib, in ``ENGINE_NAMES`` order (the
    vector engine too where the CPU lacks AVX-512: it runs, only slower)."""
    found = [_checked(name) for name in ENGINE_NAMES]
    return [candidate for candidate in found if candidate is not None]


def _checked(name: str) -> Sha256Engine | None:
    candidate = _make_engine(name)
    return candidate if candidate is not None and candidate.agrees_with_hashlib() else None


def fastest(candidates: list[Sha256Engine]) -> Sha256Engine:
    """The candidate with the shortest ``leaves_root`` of ``_TRIAL_BYTES`` on this thread:
    the best of ``_TRIAL_ROUNDS`` interleaved rounds, a hopeless one timed only once."""
    if len(candidates) == 1:
        return candidates[0]
    data = np.zeros(_TRIAL_BYTES, dtype=np.uint8)
    for candidate in candidates:
        candidate.leaves_root(data)  # loads the kernels, touches the buffers
    best = [float("inf")] * len(candidates)
    timed = list(range(len(candidates)))
    for _ in range(_TRIAL_ROUNDS):
        for i in timed:
            started = time.perf_counter()
            candidates[i].leaves_root(data)
            best[i] = min(best[i], time.perf_counter() - started)
        timed = [i for i in timed if best[i] < _TRIAL_HOPELESS * min(best)]
    return candidates[best.index(min(best))]


def _make_engine(name: str) -> Sha256Engine | None:
    if name == "shani":
        if not _has_feature("sha"):
            return None
        from agents.commitment.shani import ShaNiEngine

        return ShaNiEngine()
    if name == "vector16":
        return VectorEngine()
    if name == "libcrypto":
        for library in _libcrypto_candidates():
            try:
                return LibcryptoEngine(library)
            except (OSError, AttributeError):
                continue
    return None


@njit(cache=True, nogil=True)
def table_arrays(addresses: int, sizes: int, count: int, out: int) -> Any:
    """The arrays ``leaves_roots_at`` takes and fills, from the pointers a thread of
    ``agents.commitment.threads`` is given: ``count`` addresses and sizes, ``(count, 32)``
    roots."""
    return (
        carray(word_pointer(addresses), (count,)),
        carray(word_pointer(sizes), (count,)),
        carray(_byte_pointer(out), (count, 32)),
    )


def _table_roots(
    addresses: int, sizes: int, count: int, out: int, vector: int, scalar: int
) -> None:
    # ``leaves_roots_at`` from raw pointers (``Sha256Engine.thread_kernel``).
    found, lengths, roots = table_arrays(addresses, sizes, count, out)
    _many_leaves_roots(found, lengths, roots, vector != 0, carray(word_pointer(scalar), (3,)))


def table_kernel(function: Any) -> Any:
    """``function`` (``_table_roots``'s arguments) compiled as the ``cfunc`` a thread calls."""
    return cfunc(nbtypes.void(*[nbtypes.int64] * 6), cache=True)(function)


@functools.cache
def _compiled_table_roots() -> Any:
    # Compiled on first use: a process that never hashes on the threads does not load it.
    return table_kernel(_table_roots)
