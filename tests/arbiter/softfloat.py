"""Berkeley SoftFloat 3e (``softfloatpy``) as a third-party reference for the basic ops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import softfloatpy as sf

CANONICAL_NAN = 0x7FC00000
ONE = 0x3F800000

_ARITHMETIC: dict[str, Callable[..., Any]] = {
    "add": sf.f32_add,
    "sub": sf.f32_sub,
    "mul": sf.f32_mul,
    "div": sf.f32_div,
    "sqrt": sf.f32_sqrt,
}
_COMPARISONS: dict[str, Callable[..., bool]] = {
    "lt": sf.f32_lt_quiet,
    "le": sf.f32_le_quiet,
    "eq": sf.f32_eq,
}
SOFTFLOAT_OPS = frozenset(_ARITHMETIC) | frozenset(_COMPARISONS)


def softfloat(name: str, operands: np.ndarray) -> np.ndarray:
    """SoftFloat's results (round to nearest even) as uint32 patterns, NaNs made canonical."""
    sf.set_rounding_mode(sf.RoundingMode.NEAR_EVEN)
    rows = [
        [sf.Float32.from_bytes(int(v).to_bytes(4, "big")) for v in row] for row in operands.tolist()
    ]
    out = np.empty(len(rows), dtype=np.uint32)
    if name in _COMPARISONS:
        compare = _COMPARISONS[name]
        for i, row in enumerate(rows):
            out[i] = ONE if compare(*row) else 0
        return out
    fn = _ARITHMETIC[name]
    for i, row in enumerate(rows):
        bits = int.from_bytes(fn(*row).to_bytes(), "big")
        out[i] = CANONICAL_NAN if bits & 0x7FFFFFFF > 0x7F800000 else bits
    return out
