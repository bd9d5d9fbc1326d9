"""sha256 with the CPU's SHA extensions, two messages interleaved on one core.

``sha256rnds2`` (two rounds of the compression function) has a latency of several
cycles but can start again sooner, so one message at a time leaves the SHA unit idle
most of the time: this engine runs the rounds of two independent messages
interleaved, about 1.7 times the speed of one stream (libcrypto's) on the same core
of an AMD Zen 3, 1.3-1.4 times one stream of its own on an Intel Xeon with AVX-512.
The rounds, the message schedule (``sha256msg1``/``sha256msg2``) and the constant
padding blocks of 1024-byte leaves and 64-byte nodes are written in LLVM IR and
inlined into numba kernels that hash whole Merkle trees, batches of tensors and
lists of variable-length messages without the GIL. The SHA instructions are
legacy-SSE encoded, so each block's rounds begin with a ``vzeroupper`` (see
``_clean_upper_state``).

Only imported where the CPU has the SHA extensions (``agents.commitment.hashing``
checks), because the instructions cannot be compiled for a CPU without them.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types as nbtypes
from numba.extending import intrinsic
from numba.np.numpy_support import carray

# FIPS 180-4 constants, the padding schedules and the Merkle forest's steps from one level
# to the next are shared with the other engines (one definition of each).
from agents.commitment.hashing import (
    _H0,
    _K,
    PARALLEL_MIN_BYTES,
    Sha256Engine,
    _byte_pointer,
    _check_buffer,
    _check_forest,
    _check_messages,
    _check_table,
    _has_feature,
    _padding_schedule,
    forest_pairs,
    forest_up,
    table_arrays,
    table_kernel,
)
from agents.kernel_threads import LAUNCH_LOCK, parallel_clone

_STREAMS = 2
_V4 = ir.VectorType(ir.IntType(32), 4)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)

# The state of one stream as the SHA instructions keep it: (F, E, B, A) and (H, G, D, C)
# in lanes 0..3 ("ABEF" and "CDGH" read from the high lane down).
_INITIAL = np.array(
    [[_H0[5], _H0[4], _H0[1], _H0[0]], [_H0[7], _H0[6], _H0[3], _H0[2]]], dtype=np.uint32
)


def _declare(module: ir.Module, name: str, arguments: int) -> ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(_V4, [_V4] * arguments), name=name)


def _words(values: list[int]) -> ir.Constant:
    return ir.Constant(_V4, [v & 0xFFFFFFFF for v in values])


def _shuffle(b: ir.IRBuilder, x: ir.Value, y: ir.Value, mask: list[int]) -> ir.Value:
    return b.shuffle_vector(x, y, ir.Constant(ir.VectorType(_I32, 4), mask))


def _rounds(
    b: ir.IRBuilder,
    states: list[tuple[ir.Value, ir.Value]],
    messages: list[list[ir.Value]] | None,
    constant: list[int] | None,
) -> list[tuple[ir.Value, ir.Value]]:
    """64 rounds for each stream, interleaved four rounds at a time: the message words of
    each stream (four vectors of four big-endian words), or one constant schedule W + K."""
    rnds2 = _declare(b.module, "llvm.x86.sha256rnds2", 3)
    msg1 = _declare(b.module, "llvm.x86.sha256msg1", 2)
    msg2 = _declare(b.module, "llvm.x86.sha256msg2", 2)
    schedules = [list(m) for m in messages] if messages is not None else None
    current = list(states)
    for group in range(16):
        for s, (abef, cdgh) in enumerate(current):
            if schedules is not None:
                w = schedules[s]
                if group >= 4:
                    # W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], four at a time.
                    partial = b.call(msg1, [w[group - 4], w[group - 3]])
                    seventh = _shuffle(b, w[group - 2], w[group - 1], [1, 2, 3, 4])
                    w.append(b.call(msg2, [b.add(partial, seventh), w[group - 1]]))
                k_plus_w = b.add(w[group], _words(_K[4 * group : 4 * group + 4]))
            else:
                assert constant is not None
                k_plus_w = _words(constant[4 * group : 4 * group + 4])
            # Two rounds with words 0 and 1, then two with words 2 and 3 (moved down).
            after_two = b.call(rnds2, [cdgh, abef, k_plus_w])
            upper = _shuffle(b, k_plus_w, k_plus_w, [2, 3, 0, 1])
            after_four = b.call(rnds2, [abef, after_two, upper])
            current[s] = (after_four, after_two)
    return current


# A CPU without AVX has no upper halves to clean (and no ``vzeroupper`` to compile).
_HAS_UPPER_STATE = _has_feature("avx")


def _clean_upper_state(b: ir.IRBuilder) -> None:
    """A ``vzeroupper`` where the CPU has AVX. The SHA instructions have only legacy-SSE
    encodings, and one run while the upper halves of the vector registers are dirty (after
    256- or 512-bit code, ours or numba's) can pay a state-transition penalty each time:
    about 100 times slower, measured on an Intel Xeon with AVX-512 under KVM. LLVM puts
    ``vzeroupper`` only before calls and returns, so each block's SHA sequence starts with
    one."""
    if not _HAS_UPPER_STATE:
        return
    vzeroupper = b.module.globals.get("llvm.x86.avx.vzeroupper") or ir.Function(
        b.module, ir.FunctionType(ir.VoidType(), []), name="llvm.x86.avx.vzeroupper"
    )
    b.call(vzeroupper, [])


def _state_slots(
    b: ir.IRBuilder, address: ir.Value, streams: int
) -> tuple[list[ir.Value], list[tuple[ir.Value, ir.Value]]]:
    # First of all, so that no value loaded for the SHA sequence lives across it.
    _clean_upper_state(b)
    base = b.inttoptr(address, _V4.as_pointer())
    pointers = [b.gep(base, [ir.Constant(_I64, i)]) for i in range(2 * streams)]
    values = [b.load(p, align=16) for p in pointers]
    return pointers, [(values[2 * s], values[2 * s + 1]) for s in range(streams)]


def _store_sum(
    b: ir.IRBuilder,
    pointers: list[ir.Value],
    before: list[tuple[ir.Value, ir.Value]],
    after: list[tuple[ir.Value, ir.Value]],
) -> None:
    for s, (old, new) in enumerate(zip(before, after, strict=True)):
        b.store(b.add(old[0], new[0]), pointers[2 * s], align=16)
        b.store(b.add(old[1], new[1]), pointers[2 * s + 1], align=16)


def _block_intrinsic(streams: int) -> Any:
    """state[streams][2] += rounds(the 64-byte block at base + s·stride of each stream)."""

    def typer(typingctx: Any, state: Any, base: Any, stride: Any) -> Any:
        sig = nbtypes.void(nbtypes.intp, nbtypes.intp, nbtypes.intp)

        def codegen(context: Any, b: Any, signature: Any, args: Any) -> Any:
            pointers, before = _state_slots(b, args[0], streams)
            bswap = b.module.globals.get("llvm.bswap.v4i32") or ir.Function(
                b.module, ir.FunctionType(_V4, [_V4]), name="llvm.bswap.v4i32"
            )
            messages = []
            for s in range(streams):
                address = b.add(args[1], b.mul(args[2], ir.Constant(_I64, s)))
                block = b.inttoptr(address, _V4.as_pointer())
                messages.append(
                    [
                        b.call(bswap, [b.load(b.gep(block, [ir.Constant(_I64, j)]), align=1)])
                        for j in range(4)
                    ]
                )
            _store_sum(b, pointers, before, _rounds(b, before, messages, None))
            return context.get_dummy_value()

        return sig, codegen

    return intrinsic(typer)


def _padding_intrinsic(streams: int, message_bytes: int) -> Any:
    """state[streams][2] += rounds(the last block of a ``message_bytes``-long message)."""
    schedule = _padding_schedule(message_bytes)

    def typer(typingctx: Any, state: Any) -> Any:
        sig = nbtypes.void(nbtypes.intp)

        def codegen(context: Any, b: Any, signature: Any, args: Any) -> Any:
            pointers, before = _state_slots(b, args[0], streams)
            _store_sum(b, pointers, before, _rounds(b, before, None, schedule))
            return context.get_dummy_value()

        return sig, codegen

    return intrinsic(typer)


_block1 = _block_intrinsic(1)
_block2 = _block_intrinsic(_STREAMS)
_pad1_1024 = _padding_intrinsic(1, 1024)
_pad2_1024 = _padding_intrinsic(_STREAMS, 1024)
_pad1_64 = _padding_intrinsic(1, 64)
_pad2_64 = _padding_intrinsic(_STREAMS, 64)


@njit(cache=True, nogil=True)
def _digest(state: np.ndarray, stream: int, destination: np.ndarray) -> None:
    # The big-endian digest A B C D E F G H of one stream's (F E B A), (H G D C).
    abef = state[stream, 0]
    cdgh = state[stream, 1]
    words = (abef[3], abef[2], cdgh[3], cdgh[2], abef[1], abef[0], cdgh[1], cdgh[0])
    for i in range(8):
        v = words[i]
        destination[4 * i] = v >> 24
        destination[4 * i + 1] = (v >> 16) & 0xFF
        destination[4 * i + 2] = (v >> 8) & 0xFF
        destination[4 * i + 3] = v & 0xFF


@njit(cache=True, nogil=True)
def _pair(first: int, second: int, size: int, out: np.ndarray, row: int) -> None:
    # out[row], out[row + 1] = sha256 of the ``size``-byte messages (64 or 1024) at the two
    # addresses.
    state = np.empty((_STREAMS, 2, 4), dtype=np.uint32)
    for s in range(_STREAMS):
        state[s] = _INITIAL
    address = state.ctypes.data
    for block in range(size // 64):
        _block2(address, first + block * 64, second - first)
    if size == 1024:
        _pad2_1024(address)
    else:
        _pad2_64(address)
    for s in range(_STREAMS):
        _digest(state, s, out[row + s])


@njit(cache=True, nogil=True)
def _single(base: int, size: int, out: np.ndarray, row: int) -> None:
    # out[row] = sha256 of the ``size``-byte message (64 or 1024) at base.
    state = np.empty((1, 2, 4), dtype=np.uint32)
    state[0] = _INITIAL
    address = state.ctypes.data
    for block in range(size // 64):
        _block1(address, base + block * 64, 0)
    if size == 1024:
        _pad1_1024(address)
    else:
        _pad1_64(address)
    _digest(state, 0, out[row])


@njit(cache=True, nogil=True)
def _hash_at(addresses: np.ndarray, size: int, out: np.ndarray, owner: np.ndarray) -> None:
    # out[i] = sha256 of the ``size``-byte message at addresses[i], two at a time. ``owner``
    # is an array some addresses point into: an argument stays alive for the call, where
    # numba could free an array of the caller's after its last use by name.
    count = addresses.size
    for p in range(count // 2):
        _pair(addresses[2 * p], addresses[2 * p + 1], size, out, 2 * p)
    if count % 2:
        _single(addresses[count - 1], size, out, count - 1)


def _pairs_kernel(base: int, size: int, pairs: int, out: np.ndarray) -> None:
    for p in prange(pairs):
        first = base + 2 * p * size
        _pair(first, first + size, size, out, 2 * p)


_pairs_serial = njit(cache=True, nogil=True)(_pairs_kernel)
_pairs_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_clone(_pairs_kernel))


@njit(cache=True, nogil=True)
def _forest(level: np.ndarray, starts: np.ndarray, counts: np.ndarray, roots: np.ndarray) -> None:
    # The Merkle root of each tree t over rows starts[t] .. starts[t] + counts[t] - 1 of
    # ``level`` (each tree has one spare row after its hashes, for an odd level's padding;
    # rows are overwritten). The node pairs of every tree at one height are hashed
    # together, two at a time.
    counts = counts.copy()
    height = 0
    addresses = forest_pairs(level, starts, counts, height)
    while addresses.size:
        hashed = np.empty((addresses.size, 32), dtype=np.uint8)
        _hash_at(addresses, 64, hashed, level)
        forest_up(level, starts, counts, hashed)
        height += 1
        addresses = forest_pairs(level, starts, counts, height)
    for t in range(counts.size):
        roots[t] = level[starts[t]]


@njit(cache=True, nogil=True)
def _many_leaves_roots(addresses: np.ndarray, sizes: np.ndarray, roots: np.ndarray) -> None:
    # The Merkle root over the 1024-byte leaves of each buffer (the last leaf zero-padded,
    # an empty buffer one zero leaf): every leaf of every buffer hashed two at a time,
    # then the levels of all trees together.
    trees = addresses.size
    counts = np.empty(trees, dtype=np.int64)
    starts = np.empty(trees, dtype=np.int64)
    total = 0
    partial = 0
    for t in range(trees):
        counts[t] = max(1, (sizes[t] + 1023) // 1024)
        starts[t] = total + t
        total += counts[t]
        if sizes[t] % 1024 or sizes[t] == 0:
            partial += 1
    scratch = np.zeros(max(partial, 1) * 1024, dtype=np.uint8)
    leaves = np.empty(total, dtype=np.int64)
    k = 0
    p = 0
    for t in range(trees):
        full = sizes[t] // 1024
        for j in range(full):
            leaves[k] = addresses[t] + j * 1024
            k += 1
        if full < counts[t]:
            rest = sizes[t] - full * 1024
            scratch[p * 1024 : p * 1024 + rest] = carray(
                _byte_pointer(addresses[t] + full * 1024), (rest,)
            )
            leaves[k] = scratch.ctypes.data + p * 1024
            k += 1
            p += 1
    hashed = np.empty((total, 32), dtype=np.uint8)
    _hash_at(leaves, 1024, hashed, scratch)
    level = np.empty((total + trees, 32), dtype=np.uint8)
    for t in range(trees):
        level[starts[t] : starts[t] + counts[t]] = hashed[starts[t] - t : starts[t] - t + counts[t]]
    _forest(level, starts, counts, roots)


def _table_roots(
    addresses: int, sizes: int, count: int, out: int, vector: int, scalar: int
) -> None:
    # ``leaves_roots_at`` from raw pointers (``Sha256Engine.thread_kernel``).
    found, lengths, roots = table_arrays(addresses, sizes, count, out)
    _many_leaves_roots(found, lengths, roots)


@njit(cache=True, nogil=True)
def _tree_root(hashes: np.ndarray) -> np.ndarray:
    # The Merkle root over the rows of ``hashes`` (at least one).
    count = hashes.shape[0]
    level = np.empty((count + 1, 32), dtype=np.uint8)
    level[:count] = hashes
    roots = np.empty((1, 32), dtype=np.uint8)
    _forest(level, np.zeros(1, dtype=np.int64), np.full(1, count, dtype=np.int64), roots)
    root: np.ndarray = roots[0].copy()
    return root


@njit(cache=True, nogil=True)
def _message(base: int, length: int, destination: np.ndarray) -> None:
    # destination = sha256 of the ``length`` bytes at ``base`` (any length).
    state = np.empty((1, 2, 4), dtype=np.uint32)
    state[0] = _INITIAL
    address = state.ctypes.data
    full = length // 64
    for block in range(full):
        _block1(address, base + block * 64, 0)
    # The rest of the message, 0x80, zeros and the length in bits: one or two blocks.
    rest = length - full * 64
    tail = np.zeros(128, dtype=np.uint8)
    source = carray(_byte_pointer(base + full * 64), (rest,))
    tail[:rest] = source
    tail[rest] = 0x80
    blocks = 1 if rest < 56 else 2
    bits = length * 8
    for i in range(8):
        tail[blocks * 64 - 1 - i] = (bits >> (8 * i)) & 0xFF
    for block in range(blocks):
        _block1(address, tail.ctypes.data + block * 64, 0)
    _digest(state, 0, destination)


@njit(cache=True, nogil=True)
def _messages(
    buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, out: np.ndarray
) -> None:
    base = buffer.ctypes.data
    for i in range(offsets.size):
        _message(base + offsets[i], lengths[i], out[i])


class ShaNiEngine(Sha256Engine):
    """Two messages at a time through the SHA extensions; pairs spread over numba threads
    for large buffers (``hash_many``, the leaves of large trees)."""

    name = "shani"

    def hash_many(self, buffer: np.ndarray, size: int, count: int) -> np.ndarray:
        _check_buffer(buffer, size, count)
        if size not in (64, 1024):
            raise ValueError("the shani engine hashes messages of 64 or 1024 bytes")
        out = np.empty((count, 32), dtype=np.uint8)
        base = buffer.ctypes.data
        pairs = count // 2
        if pairs and 2 * pairs * size >= PARALLEL_MIN_BYTES:
            with LAUNCH_LOCK:
                _pairs_parallel(base, size, pairs, out)
        elif pairs:
            _pairs_serial(base, size, pairs, out)
        if count % 2:
            _hash_at(np.array([base + (count - 1) * size]), size, out[count - 1 :], out)
        return out

    def leaves_root(self, data: np.ndarray) -> bytes:
        _check_buffer(data, 1, data.size)
        full = data.size // 1024
        if full * 1024 < PARALLEL_MIN_BYTES:
            return bytes(self.many_leaves_roots([data])[0])
        # Large: the full leaves on every core, the tail leaf and the tree here.
        leaves = (data.size + 1023) // 1024
        level = np.empty((leaves, 32), dtype=np.uint8)
        level[:full] = self.hash_many(data, 1024, full)
        if leaves > full:
            level[full] = self.many_leaves_roots([data[full * 1024 :]])[0]
        return bytes(_tree_root(level))

    def leaves_roots_at(self, addresses: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        _check_table(addresses, sizes)
        out = np.empty((addresses.size, 32), dtype=np.uint8)
        _many_leaves_roots(addresses, sizes, out)
        return out

    def thread_kernel(self) -> tuple[int, bool, np.ndarray]:
        return _compiled_table_roots().address, False, np.zeros(3, dtype=np.int64)

    def tree_root(self, hashes: np.ndarray) -> bytes:
        if hashes.ndim != 2 or hashes.shape[0] < 1 or hashes.shape[1:] != (32,):
            raise ValueError("tree_root needs an (n, 32) array of hashes, n >= 1")
        return bytes(_tree_root(np.ascontiguousarray(hashes, dtype=np.uint8)))

    def tree_roots(self, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        _check_forest(hashes, counts)
        ends = np.cumsum(counts).tolist()
        out = np.empty((counts.size, 32), dtype=np.uint8)
        for t, (count, end) in enumerate(zip(counts.tolist(), ends, strict=True)):
            out[t] = np.frombuffer(self.tree_root(hashes[end - count : end]), dtype=np.uint8)
        return out

    def hash_messages(
        self, buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        _check_messages(buffer, offsets, lengths)
        out = np.empty((offsets.size, 32), dtype=np.uint8)
        _messages(buffer, offsets, lengths, out)
        return out


@functools.cache
def _compiled_table_roots() -> Any:
    # Compiled on first use: a process that never hashes on the threads does not load it.
    return table_kernel(_table_roots)
