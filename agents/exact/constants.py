"""The binary32 constants of the exact operations, shared by every path.

The CPU path (numba) and the eager path (torch) read the same values from here,
so neither imports the other and the eager path loads no compiler. docs/exact.md
lists each constant with its bit pattern; the composites' tests check them.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
NAN = F32(np.nan)  # bits 0x7FC00000, checked in agents.exact.float32's tests
INF = F32(np.inf)
ZERO = F32(0.0)
ONE = F32(1.0)
TWO = F32(2.0)
HALF = F32(0.5)

# ldexp: x * 2**n is exact in binary64 for every binary32 x and |n| <= 300.
LDEXP_LIMIT = 300
POW2_F64 = np.ldexp(1.0, np.arange(-LDEXP_LIMIT, LDEXP_LIMIT + 1)).astype(np.float64)
F_LDEXP_LIMIT = F32(LDEXP_LIMIT)

# exp: clamp, round k = x/ln2 to an integer, reduce, degree-7 Taylor polynomial, scale.
EXP_LOW = F32(-104.0)
EXP_HIGH = F32(89.0)
LOG2E = F32(1.4426950408889634)
ROUND_MAGIC = F32(12582912.0)  # 1.5 * 2**23: adding and subtracting it rounds to an integer
LN2_HI = F32(0.693145751953125)  # 0x3F317200: 15 significant bits, so k * LN2_HI is exact
LN2_LO = F32(0.6931471805599453 - 0.693145751953125)
EXP_C2 = F32(1.0 / 2.0)
EXP_C3 = F32(1.0 / 6.0)
EXP_C4 = F32(1.0 / 24.0)
EXP_C5 = F32(1.0 / 120.0)
EXP_C6 = F32(1.0 / 720.0)
EXP_C7 = F32(1.0 / 5040.0)

# log: x = m * 2**e with m in (sqrt(1/2), sqrt(2)], log(m) = log1p(f) through s = f / (2 + f).
SQRT2 = F32(1.4142135623730951)
LOG_L1 = F32(2.0 / 3.0)
LOG_L2 = F32(2.0 / 5.0)
LOG_L3 = F32(2.0 / 7.0)
LOG_L4 = F32(2.0 / 9.0)
