"""sha256 of many equal-sized messages at once, on every core, without copies.

Commitments hash 1024-byte leaves and 64-byte node pairs by the million.
hashlib keeps the GIL for buffers under 2 KiB, so Python threads cannot share
that work, and one sha256 stream is bound by the latency of its rounds. Two
engines, both run by numba threads straight from the tensor's buffer:

- ``VectorEngine``: sixteen messages at once, one per 32-bit lane of a
  16-wide integer vector (SHA-256 written in LLVM vector IR: funnel-shift
  rotates, a shuffle network that transposes sixteen message blocks, byte
  swaps). With AVX-512 it beats the SHA extensions of one stream.
- ``LibcryptoEngine``: libcrypto's ``SHA256_Init/Update/Final`` (the library
  Python's own ``_hashlib`` links), one message per call, on every thread.

``engine()`` picks the vector engine where the CPU has AVX-512, else
libcrypto; each engine checks itself against hashlib when it is created and is
only used if it agrees. ``agents.commitment`` falls back to hashlib otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
import types
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types as nbtypes
from numba.extending import intrinsic

from agents.exact.parallel import LAUNCH_LOCK

# OpenSSL's SHA256_CTX is 112 bytes; a little room to spare.
_CONTEXT_BYTES = 256
# Messages per work item: large enough to amortize the context, small enough to balance.
_CHUNK = 64


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

    def agrees_with_hashlib(self) -> bool:
        """Whether this engine reproduces hashlib on messages of the sizes commitments use."""
        rng = np.random.default_rng(0)
        for size in (64, 1024):
            for count in (1, 15, 16, 17, 300):
                data = rng.integers(0, 256, size * count, dtype=np.uint8)
                got = self.hash_many(data, size, count)
                for i in sorted({0, count // 2, count - 1}):
                    want = hashlib.sha256(data[i * size : (i + 1) * size].tobytes()).digest()
                    if bytes(got[i]) != want:
                        return False
        return True


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


def _hash_groups_kernel(base: int, size: int, groups: int, out: np.ndarray, h0: np.ndarray) -> None:
    # Each group is 16 consecutive messages; lane l hashes message 16*g + l.
    blocks = size // 64
    for g in prange(groups):
        state = np.empty((8, _LANES), dtype=np.uint32)
        for word in range(8):
            for lane in range(_LANES):
                state[word, lane] = h0[word]
        group_base = base + g * _LANES * size
        for block in range(blocks):
            _compress16(state.ctypes.data, group_base + block * 64, size)
        if size == 1024:
            _pad_1024(state.ctypes.data)
        else:
            _pad_64(state.ctypes.data)
        for lane in range(_LANES):
            row = g * _LANES + lane
            for word in range(8):
                v = state[word, lane]
                out[row, 4 * word] = v >> 24
                out[row, 4 * word + 1] = (v >> 16) & 0xFF
                out[row, 4 * word + 2] = (v >> 8) & 0xFF
                out[row, 4 * word + 3] = v & 0xFF


def _parallel_clone(fn: Any) -> Any:
    """A copy of ``fn`` under its own name: numba caches compiled code by qualified
    name, and the parallel build must not be loaded for the serial one (or back)."""
    clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_parallel")
    clone.__qualname__ = fn.__qualname__ + "_parallel"
    return clone


_hash_groups_serial = njit(cache=True, nogil=True)(_hash_groups_kernel)
_hash_groups_parallel = njit(cache=True, nogil=True, parallel=True)(
    _parallel_clone(_hash_groups_kernel)
)
# Below this many bytes a hashing job stays on the calling thread (no pool wake-up).
PARALLEL_MIN_BYTES = 1 << 20


class VectorEngine(Sha256Engine):
    """Sixteen messages per vector, groups of sixteen spread over numba threads.

    Handles the message sizes commitments use: 1024-byte leaves and 64-byte node pairs.
    """

    name = "vector16"
    sizes = (64, 1024)

    def hash_many(self, buffer: np.ndarray, size: int, count: int) -> np.ndarray:
        _check_buffer(buffer, size, count)
        if size not in self.sizes:
            raise ValueError(f"the vector engine hashes messages of {self.sizes} bytes")
        out = np.empty((count, 32), dtype=np.uint8)
        full = count // _LANES
        if full and full * _LANES * size >= PARALLEL_MIN_BYTES:
            with LAUNCH_LOCK:
                _hash_groups_parallel(buffer.ctypes.data, size, full, out, _H0)
        elif full:
            _hash_groups_serial(buffer.ctypes.data, size, full, out, _H0)
        rest = count - full * _LANES
        if rest:
            # The last partial group goes through a zero-filled scratch group.
            scratch = np.zeros(_LANES * size, dtype=np.uint8)
            flat = buffer.reshape(-1).view(np.uint8)
            scratch[: rest * size] = flat[full * _LANES * size : count * size]
            tail = np.empty((_LANES, 32), dtype=np.uint8)
            _hash_groups_serial(scratch.ctypes.data, size, 1, tail, _H0)
            out[full * _LANES :] = tail[:rest]
        return out


def _has_avx512() -> bool:
    features = llvm.get_host_cpu_features()
    return bool(features.get("avx512f", False))


@functools.cache
def engine() -> Sha256Engine | None:
    """The fastest engine that agrees with hashlib here, or ``None`` (use hashlib).

    ``VERITRAIN_HASH_ENGINE`` forces one: ``vector16``, ``libcrypto`` or ``hashlib``.
    """
    forced = os.environ.get("VERITRAIN_HASH_ENGINE", "")
    if forced == "hashlib":
        return None
    order = ["vector16", "libcrypto"] if _has_avx512() else ["libcrypto", "vector16"]
    if forced:
        order = [forced]
    for name in order:
        candidate = _make_engine(name)
        if candidate is not None and candidate.agrees_with_hashlib():
            return candidate
    return None


def _make_engine(name: str) -> Sha256Engine | None:
    if name == "vector16":
        return VectorEngine()
    if name == "libcrypto":
        for library in _libcrypto_candidates():
            try:
                return LibcryptoEngine(library)
            except (OSError, AttributeError):
                continue
    return None
