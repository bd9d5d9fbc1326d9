"""Inputs for the differential tests: random bit patterns, random ordinary values,
and the edge classes of binary32 (subnormals, ±0, ±inf, NaN payloads, ties,
overflow and underflow boundaries)."""

from __future__ import annotations

import numpy as np

from agents.exact.float32 import from_bits

# fmt: off
EDGE_BITS = [
    0x00000000, 0x80000000,  # ±0
    0x00000001, 0x80000001, 0x00000002, 0x00000003,  # smallest subnormals
    0x007FFFFF, 0x807FFFFF, 0x00400000,  # largest subnormal, half of min normal
    0x00800000, 0x80800000, 0x00800001,  # min normal and neighbours
    0x3F800000, 0xBF800000, 0x3F800001, 0x3F7FFFFF,  # ±1 and neighbours
    0x3F000000, 0x40000000, 0x40400000, 0x3EAAAAAB,  # 0.5, 2, 3, 1/3
    0x33800000, 0x34000000, 0x33C00000,  # 2^-24, 2^-23, 1.5*2^-24 (ties around 1)
    0x4B000000, 0x4B000001, 0x4B400000,  # 2^23, 2^23+1, 1.5*2^23
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F7FFFFE,  # ±max finite
    0x73000000, 0x73800000,  # 2^103, 2^104: FLT_MAX + these ties to / overflows
    0x1F800000, 0x1F000000, 0x20000000,  # 2^-64, 2^-65, 2^-63: products underflow
    0x7F800000, 0xFF800000,  # ±inf
    0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0x7FA00000,  # NaN payloads
    0x42B17218, 0x42B17217, 0xC2CFF1B5, 0xC2D00000,  # exp overflow / underflow edges
    0x3F3504F3, 0x3FB504F3, 0x3FB504F4,  # around sqrt(1/2), sqrt(2)
    0x40490FDB, 0xC0490FDB,  # ±pi
]
# fmt: on


def edge_values() -> np.ndarray:
    return from_bits(np.array(EDGE_BITS, dtype=np.uint32))


def edge_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair of edge values."""
    values = edge_values()
    a, b = np.meshgrid(values, values, indexing="ij")
    return a.reshape(-1).copy(), b.reshape(-1).copy()


def random_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform bit patterns: every class of float32, NaN payloads included."""
    return from_bits(rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32))


def random_ordinary(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ordinary magnitudes, where rounding (not range) decides the result."""
    return (rng.standard_normal(n) * np.exp2(rng.integers(-8, 8, n))).astype(np.float32)


def random_inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Half uniform bit patterns, half ordinary values, shuffled."""
    values = np.concatenate([random_bits(rng, n // 2), random_ordinary(rng, n - n // 2)])
    return values[rng.permutation(n)]


def tie_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Additions and multiplications whose exact result lies halfway between floats."""
    one = np.float32(1.0)
    small = np.ldexp(np.arange(1, 16, dtype=np.float64), -24).astype(np.float32)
    a = np.concatenate([np.full(small.size, one), np.full(small.size, -one)])
    b = np.concatenate([small, -small])
    # (1 + k*2^-12)^2 has bits below the last place for many k
    k = np.arange(1, 4096, dtype=np.float64)
    sq = (1 + k * 2.0**-12).astype(np.float32)
    return np.concatenate([a, sq]), np.concatenate([b, sq])
