"""binary32 bit patterns: the canonical NaN, bit views, the scalar codec, ulp distances, the
denormal check.

Everything the exact kernels promise is stated in terms of bit patterns, so the
tests and the accuracy measurements need a few exact tools on them. The chain
carries binary32 values (thresholds, distances) as their ``uint32`` bit patterns:
``to_bits``/``from_bits32`` are the one codec between those and Python floats.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from agents.exact.errors import ExactEnvironmentError

CANONICAL_NAN_BITS = 0x7FC00000
POSITIVE_INFINITY_BITS = 0x7F800000
NEGATIVE_INFINITY_BITS = 0xFF800000
SMALLEST_SUBNORMAL_BITS = 0x00000001
CANONICAL_NAN = np.uint32(CANONICAL_NAN_BITS).view(np.float32)
SMALLEST_SUBNORMAL = np.uint32(1).view(np.float32)
# The largest integer below which every integer is a float32: counters and
# indices committed as float32 tensors stay below it.
INTEGER_LIMIT = 1 << 24


def bits(values: np.ndarray) -> np.ndarray:
    """The uint32 bit patterns of a float32 array (a view, no copy)."""
    array = np.ascontiguousarray(values)
    if array.dtype != np.float32:
        raise TypeError(f"expected float32, got {array.dtype}")
    return array.view(np.uint32)


def from_bits(patterns: np.ndarray | int) -> np.ndarray:
    """float32 values with the given uint32 bit patterns."""
    return np.ascontiguousarray(np.asarray(patterns, dtype=np.uint32)).view(np.float32)


def to_bits(value: float) -> int:
    """The bit pattern of ``value`` rounded to binary32 (to nearest, ties to even); values
    beyond the binary32 range round to an infinity, every NaN to the canonical NaN."""
    if math.isnan(value):
        return CANONICAL_NAN_BITS
    try:
        packed = struct.pack("<f", value)
    except OverflowError:
        return POSITIVE_INFINITY_BITS if value > 0 else NEGATIVE_INFINITY_BITS
    return int.from_bytes(packed, "little")


def from_bits32(pattern: int) -> float:
    """The binary32 value of a ``uint32`` bit pattern, as a Python float (exact)."""
    if not 0 <= int(pattern) <= 0xFFFFFFFF:
        raise ValueError(f"{pattern} is not a 32-bit pattern")
    return float(struct.unpack("<f", int(pattern).to_bytes(4, "little"))[0])


def ulp_error(approx: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Error of float32 results against float64 references, in float32 ulps of the reference.

    One ulp is the gap between the two float32 values around the reference (the
    subnormal gap below the normal range). Both sides must be finite.
    """
    ref = np.asarray(exact, dtype=np.float64)
    got = np.asarray(approx, dtype=np.float32).astype(np.float64)
    magnitude = np.abs(ref)
    exponent = np.floor(np.log2(np.maximum(magnitude, np.float64(2.0**-126))))
    ulp = np.ldexp(1.0, (exponent - 23).astype(np.int64))
    return np.abs(got - ref) / ulp


def check_denormals_kept() -> None:
    """Raise if this thread flushes subnormal results or inputs to zero.

    Some libraries switch the floating-point unit to flush-to-zero when they
    load; the exact kernels would then silently compute other bits.
    """
    tiny = np.array([SMALLEST_SUBNORMAL, np.float32(2.0**-126)], dtype=np.float32)
    half = tiny[1] * np.float32(0.5)
    summed = tiny[0] + tiny[0]
    if half == 0 or summed != np.float32(2.0**-148):
        raise ExactEnvironmentError(
            "this process flushes subnormal floats to zero (FTZ/DAZ is set); "
            "exact kernels cannot run bit-exactly here"
        )
