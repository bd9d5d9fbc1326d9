"""The task PRNG: sha256 in counter mode, so every machine draws the same bits from a seed.

A stream is named by the task seed and a label (for example ``init/param/layers.0.weight``
or ``order/epoch/3``). Its block ``j`` is

    sha256("veritrain/prng/1" || u64be(seed) || u32be(len(label)) || label || u64be(j))

and each block gives four 64-bit words, big-endian, in order. A stream is read
word by word from block 0. Derived draws:

- ``below(n)``: an unbiased integer in ``[0, n)`` by rejection: take the next
  word ``x``; if ``x >= 2**64 − (2**64 mod n)`` discard it and take the next;
  otherwise the draw is ``x mod n``;
- ``symmetric_float32(count, bound)``: for each word, ``u = (x >> 40) − 2**23``
  (a 24-bit signed integer), ``t = u · 2**−23`` (exact in binary32, in ``[−1, 1)``),
  value ``= float32(bound) · t`` with one binary32 rounding.

Nothing here uses a platform RNG, libm or a library's init functions, so the
values are bit-identical everywhere.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from agents.commitment.tree import engine

DOMAIN = b"veritrain/prng/1"
WORDS_PER_BLOCK = 4
_TWO64 = 1 << 64


def stream_key(seed: int, label: str) -> bytes:
    """The bytes that precede the block counter in every block of stream (seed, label)."""
    encoded = label.encode()
    return DOMAIN + seed.to_bytes(8, "big") + len(encoded).to_bytes(4, "big") + encoded


def words(seed: int, label: str, count: int, first_block: int = 0) -> np.ndarray:
    """``count`` words of stream (seed, label) starting at block ``first_block``, as uint64."""
    return keyed_words(stream_key(seed, label), count, first_block)


# From this many blocks on, a stream's blocks are hashed in one call of the compiled sha256
# engine where there is one (a data order hashes about N / 4 blocks per epoch).
ENGINE_MIN_BLOCKS = 64


def keyed_words(prefix: bytes, count: int, first_block: int = 0) -> np.ndarray:
    """``count`` words of the stream whose blocks are ``sha256(prefix || u64be(j))``."""
    blocks = -(-count // WORDS_PER_BLOCK)
    compiled = engine() if blocks >= ENGINE_MIN_BLOCKS else None
    if compiled is not None:
        # Every block's message laid out in one buffer: the prefix, then the counter.
        size = len(prefix) + 8
        messages = np.empty((blocks, size), dtype=np.uint8)
        messages[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
        counters = np.arange(first_block, first_block + blocks, dtype=np.uint64)
        messages[:, len(prefix) :] = counters.astype(">u8").view(np.uint8).reshape(blocks, 8)
        offsets = np.arange(blocks, dtype=np.int64) * size
        lengths = np.full(blocks, size, dtype=np.int64)
        data = compiled.hash_messages(messages.reshape(-1), offsets, lengths).tobytes()
    else:
        data = b"".join(
            hashlib.sha256(prefix + j.to_bytes(8, "big")).digest()
            for j in range(first_block, first_block + blocks)
        )
    return np.frombuffer(data, dtype=">u8")[:count].astype(np.uint64)


class Stream:
    """A stream read word by word (for draws whose word count is not known in advance).

    ``Stream.keyed(prefix)`` reads the stream ``sha256(prefix || u64be(j))`` of any
    other domain (segment selection uses one).
    """

    def __init__(self, seed: int, label: str) -> None:
        self._prefix = stream_key(seed, label)
        self._block = 0
        self._buffer: list[int] = []
        self._position = 0

    @classmethod
    def keyed(cls, prefix: bytes) -> Stream:
        """The stream whose block ``j`` is ``sha256(prefix || u64be(j))``."""
        stream = cls.__new__(cls)
        stream._prefix = prefix
        stream._block = 0
        stream._buffer = []
        stream._position = 0
        return stream

    def take(self, count: int) -> list[int]:
        """The next ``count`` words, as Python integers."""
        while len(self._buffer) - self._position < count:
            need = count - (len(self._buffer) - self._position)
            blocks = max(64, -(-need // WORDS_PER_BLOCK))
            fresh = keyed_words(self._prefix, blocks * WORDS_PER_BLOCK, self._block)
            self._block += blocks
            self._buffer = self._buffer[self._position :] + fresh.tolist()
            self._position = 0
        out = self._buffer[self._position : self._position + count]
        self._position += count
        return out

    def below(self, n: int) -> int:
        """An unbiased integer in ``[0, n)`` (rejection sampling, see the module docstring)."""
        if not 1 <= n <= _TWO64:
            raise ValueError(f"below({n}): n must be in [1, 2**64]")
        limit = _TWO64 - _TWO64 % n
        while True:
            (x,) = self.take(1)
            if x < limit:
                return x % n


def many_words(seed: int, labels: Sequence[str], count: int) -> np.ndarray:
    """``words(seed, label, count)`` of each of ``labels``, as the rows of one uint64 array:
    the blocks of streams whose labels are as long are hashed in one call of the compiled
    engine where there is one (a data order's epochs are streams of one length or a few)."""
    out = np.empty((len(labels), count), dtype=np.uint64)
    blocks = -(-count // WORDS_PER_BLOCK)
    if not labels or not count:
        return out
    compiled = engine() if len(labels) * blocks >= ENGINE_MIN_BLOCKS else None
    if compiled is None:
        for row, label in enumerate(labels):
            out[row] = words(seed, label, count)
        return out
    prefixes = [stream_key(seed, label) for label in labels]
    counters = np.arange(blocks, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(blocks, 8)
    for length in sorted({len(prefix) for prefix in prefixes}):
        rows = [row for row, prefix in enumerate(prefixes) if len(prefix) == length]
        # Block j of every stream of this length: its prefix, then the counter j.
        size = length + 8
        messages = np.empty((len(rows), blocks, size), dtype=np.uint8)
        keys = np.frombuffer(b"".join(prefixes[row] for row in rows), dtype=np.uint8)
        messages[:, :, :length] = keys.reshape(len(rows), 1, length)
        messages[:, :, length:] = counters
        offsets = np.arange(len(rows) * blocks, dtype=np.int64) * size
        lengths = np.full(offsets.size, size, dtype=np.int64)
        digests = compiled.hash_messages(messages.reshape(-1), offsets, lengths)
        streams = digests.reshape(len(rows), blocks * 32).view(">u8")[:, :count]
        out[rows] = streams.astype(np.uint64)
    return out


def permutation(seed: int, label: str, n: int) -> np.ndarray:
    """A uniform permutation of ``range(n)`` by Fisher–Yates over stream (seed, label).

    For ``i`` from ``n − 1`` down to 1: ``j = below(i + 1)``, swap positions ``i`` and ``j``.
    """
    permuted: np.ndarray = permutations(seed, [label], n)[0]
    return permuted


def permutations(seed: int, labels: Sequence[str], n: int) -> np.ndarray:
    """``permutation(seed, label, n)`` of each of ``labels``, as the rows of one int64 array
    (the streams' words drawn at once, ``many_words``)."""
    out = np.empty((len(labels), n), dtype=np.int64)
    if n < 2:
        out[:] = np.arange(n, dtype=np.int64)
        return out
    # Fast path: the first n − 1 words of each stream, all accepted (a rejection has
    # probability below n / 2**64 per draw); the draws j are then computed at once.
    bounds = np.arange(n, 1, -1, dtype=np.uint64)  # i + 1 for i = n − 1 … 1
    draws = many_words(seed, labels, n - 1)
    remainders = (np.uint64(0) - bounds) % bounds  # 2**64 mod (i + 1)
    rejected = np.any(draws > np.uint64(_TWO64 - 1) - remainders, axis=1).tolist()
    picks = (draws % bounds).astype(np.int64)
    shuffle = _shuffler()
    for row, label in enumerate(labels):
        out[row] = _word_by_word(seed, label, n) if rejected[row] else shuffle(picks[row])
    return out


def _word_by_word(seed: int, label: str, n: int) -> np.ndarray:
    """``permutation`` drawing one word at a time, rejections included."""
    order = list(range(n))
    stream = Stream(seed, label)
    for i in range(n - 1, 0, -1):
        j = stream.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)


def _shuffle(picks: np.ndarray) -> np.ndarray:
    """Fisher–Yates over ``range(n)`` with the draws ``picks`` (``n − 1`` of them, for
    ``i = n − 1 … 1``): swap positions ``i`` and ``picks[n − 1 − i]``."""
    n = picks.size + 1
    order = np.arange(n)
    for k in range(n - 1):
        i = n - 1 - k
        j = picks[k]
        order[i], order[j] = order[j], order[i]
    return order


def _shuffle_list(picks: np.ndarray) -> np.ndarray:
    """``_shuffle`` on a Python list (faster than on an array, without a compiler)."""
    n = picks.size + 1
    order = list(range(n))
    for i, j in zip(range(n - 1, 0, -1), picks.tolist(), strict=True):
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)


@functools.cache
def _shuffler() -> Callable[[np.ndarray], np.ndarray]:
    """``_shuffle`` compiled by numba where it loads (integer swaps: the same order), else
    the list version."""
    try:
        from numba import njit
    except ImportError:
        return _shuffle_list
    compiled: Callable[[np.ndarray], np.ndarray] = njit(cache=True, nogil=True)(_shuffle)
    return compiled


def symmetric_float32(seed: int, label: str, count: int, bound: float) -> np.ndarray:
    """``count`` binary32 values ``float32(bound) · t``, ``t`` uniform on a grid of [−1, 1)."""
    raw = words(seed, label, count)
    grid = (raw >> np.uint64(40)).astype(np.int64) - (1 << 23)
    t = grid.astype(np.float32) * np.float32(2.0**-23)  # both steps exact
    return np.float32(bound) * t
