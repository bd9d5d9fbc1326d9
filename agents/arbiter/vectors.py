"""Operands for differential tests of the binary32 library: random bit patterns and the
edge classes of each operation, generated systematically.

Every class is a function ``(rng, n) -> (n, arity)`` uint32 bit patterns. ``vectors`` mixes
them: first every ordered pair (or triple) of the fixed edge values, then equal shares of
each class of the op until ``count`` rows. The classes follow where implementations of
IEEE-754 arithmetic go wrong: ±0, subnormals and their boundaries, infinities, NaNs of every
payload, halfway cases, overflow and underflow boundaries, cancellation, and, for addition,
every exponent gap (the alignment shortcut near gaps of 24 to 26 above all).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from agents.arbiter.batch import ElementwiseOp, elementwise

Rng = np.random.Generator
Generator = Callable[[Rng, int], np.ndarray]

SIGN = np.uint32(0x80000000)

# fmt: off
EDGE_BITS = np.array([
    0x00000000, 0x80000000,  # ±0
    0x00000001, 0x80000001, 0x00000002, 0x00000003,  # smallest subnormals
    0x007FFFFF, 0x807FFFFF, 0x00400000, 0x00400001,  # largest subnormal, half of min normal
    0x00800000, 0x80800000, 0x00800001, 0x00FFFFFF,  # min normal and neighbours
    0x3F800000, 0xBF800000, 0x3F800001, 0x3F7FFFFF,  # ±1 and neighbours
    0x3F000000, 0x40000000, 0x40400000, 0x3EAAAAAB,  # 0.5, 2, 3, 1/3
    0x33800000, 0x34000000, 0x33C00000, 0x33000000,  # 2^-24, 2^-23, 1.5*2^-24, 2^-25
    0x4B000000, 0x4B000001, 0x4B400000, 0x4B7FFFFF,  # 2^23, 2^23+1, 1.5*2^23, 2^24-1
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F7FFFFE, 0x7F000000,  # ±max finite, 2^127
    0x73000000, 0x73800000, 0x72800000,  # 2^103, 2^104: FLT_MAX + these ties / overflows
    0x1F800000, 0x1F000000, 0x20000000, 0x1A800000,  # products near the underflow boundary
    0x7F800000, 0xFF800000,  # ±inf
    0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0x7FA00000,  # NaN payloads
    0x42B17218, 0x42B17217, 0xC2CFF1B5, 0xC2D00000, 0x42B20000,  # exp's edges and clamps
    0x3F3504F3, 0x3FB504F3, 0x3FB504F4,  # around sqrt(1/2), sqrt(2)
    0x40490FDB, 0xC0490FDB,  # ±pi
    0x43960000, 0xC3960000, 0x43968000, 0x3FC00000,  # ±300, 301, 1.5 (ldexp exponents)
], dtype=np.uint32)
# fmt: on


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


def _pattern(sign: np.ndarray, field: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    out: np.ndarray = (
        (sign.astype(np.uint32) << np.uint32(31))
        | (np.clip(field, 0, 255).astype(np.uint32) << np.uint32(23))
        | (fraction.astype(np.uint32) & np.uint32(0x7FFFFF))
    )
    return out


def _signs(rng: Rng, n: int) -> np.ndarray:
    return rng.integers(0, 2, n)


def _fractions(rng: Rng, n: int) -> np.ndarray:
    return rng.integers(0, 1 << 23, n)


def random_bits(rng: Rng, n: int, arity: int) -> np.ndarray:
    """Uniform bit patterns: every class, NaN payloads included."""
    return rng.integers(0, 1 << 32, size=(n, arity), dtype=np.uint64).astype(np.uint32)


def ordinary(rng: Rng, n: int, arity: int) -> np.ndarray:
    """Ordinary magnitudes, where rounding (not range) decides the result."""
    values = rng.standard_normal((n, arity)) * np.exp2(rng.integers(-8, 8, (n, arity)))
    return _bits(values.astype(np.float32))


def edge_random(rng: Rng, n: int, arity: int) -> np.ndarray:
    """Edge values mixed with random bit patterns, operand by operand."""
    rows = random_bits(rng, n, arity)
    pick = rng.integers(0, 2, (n, arity)).astype(bool)
    rows[pick] = rng.choice(EDGE_BITS, size=int(pick.sum()))
    return rows


def subnormals(rng: Rng, n: int, arity: int) -> np.ndarray:
    """Subnormals and the smallest normals, both signs."""
    field = rng.integers(0, 3, (n, arity))
    return _pattern(
        _signs(rng, n * arity).reshape(n, arity),
        field,
        _fractions(rng, n * arity).reshape(n, arity),
    )


def exponent_gaps(rng: Rng, n: int) -> np.ndarray:
    """Pairs whose exponents differ by 0 to 40 (subnormal second operands included), any signs."""
    gap = rng.integers(0, 41, n)
    field_a = rng.integers(1, 255, n)
    field_b = np.maximum(field_a - gap, 0)
    a = _pattern(_signs(rng, n), field_a, _fractions(rng, n))
    b = _pattern(_signs(rng, n), field_b, _fractions(rng, n))
    swap = rng.integers(0, 2, n).astype(bool)
    a[swap], b[swap] = b[swap], a[swap].copy()
    return np.stack([a, b], axis=1)


def addition_ties(rng: Rng, n: int) -> np.ndarray:
    """a ± (2k+1)·2^(e-151): the exact sum lies halfway between two floats (or nearly)."""
    field = rng.integers(2, 255, n)
    a = _pattern(_signs(rng, n), field, _fractions(rng, n))
    width = rng.integers(0, 24, n)
    odd = (rng.integers(0, 1 << 23, n) & ((1 << width) - 1)) * 2 + 1
    # b = odd * 2^(field - 151 - extra); extra = 0 is an exact tie, 1-2 are near ties.
    extra = rng.integers(0, 3, n)
    b = _bits(np.ldexp(odd.astype(np.float64), field - 151 - extra).astype(np.float32))
    b = b ^ (_signs(rng, n).astype(np.uint32) << np.uint32(31))
    return np.stack([a, b], axis=1)


def cancellation(rng: Rng, n: int) -> np.ndarray:
    """a and -(a ± a few ulps), and a and -a·(1 ± 2^-k): results of every length, exact zeros."""
    a = _pattern(_signs(rng, n), rng.integers(0, 255, n), _fractions(rng, n))
    near = (a.astype(np.int64) + rng.integers(-4, 5, n)).clip(0, 0xFFFFFFFF).astype(np.uint32)
    b = near ^ SIGN
    with np.errstate(over="ignore"):
        scaled = _bits(
            (
                a.view(np.float32).astype(np.float64)
                * (1 + np.exp2(-rng.integers(1, 30, n).astype(float)))
            ).astype(np.float32)
        )
    half = n // 2
    b[:half] = scaled[:half] ^ SIGN
    return np.stack([a, b], axis=1)


def overflow_boundary(rng: Rng, n: int, arity: int) -> np.ndarray:
    """Magnitudes in the top binades, both signs."""
    field = rng.integers(250, 255, (n, arity))
    return _pattern(
        _signs(rng, n * arity).reshape(n, arity),
        field,
        _fractions(rng, n * arity).reshape(n, arity),
    )


def product_ranges(rng: Rng, n: int) -> np.ndarray:
    """Pairs whose product lands around the subnormal range, min normal, or overflow."""
    target = rng.choice(np.array([-30, -24, -2, -1, 0, 1, 2, 252, 253, 254, 255, 256]), n)
    target = target + rng.integers(-2, 3, n)
    field_a = rng.integers(1, 255, n)
    field_b = np.clip(target + 127 - field_a, 0, 254)
    a = _pattern(_signs(rng, n), field_a, _fractions(rng, n))
    b = _pattern(_signs(rng, n), field_b, _fractions(rng, n))
    return np.stack([a, b], axis=1)


def multiplication_ties(rng: Rng, n: int) -> np.ndarray:
    """Significands with trailing zeros t1 + t2 = 22 or 23: the product's dropped bits are
    exactly half of the last place (a tie) for one of the two binades, nearly for the other."""
    t1 = rng.integers(0, 24, n)
    t2 = np.clip(rng.integers(22, 24, n) - t1, 0, 23)
    odd_a = (rng.integers(0, 1 << 23, n) | 1) & ((1 << (24 - t1)) - 1) | (1 << (23 - t1))
    odd_b = (rng.integers(0, 1 << 23, n) | 1) & ((1 << (24 - t2)) - 1) | (1 << (23 - t2))
    ma = odd_a << t1
    mb = odd_b << t2
    field_a = rng.integers(64, 190, n)
    field_b = rng.integers(64, 190, n)
    a = _pattern(_signs(rng, n), field_a, ma)
    b = _pattern(_signs(rng, n), field_b, mb)
    # A share of them scaled so the product is subnormal: ties in the subnormal range.
    low = rng.integers(0, 4, n) == 0
    b[low] = _pattern(_signs(rng, int(low.sum())), np.clip(100 - field_a[low], 1, 254), mb[low])
    return np.stack([a, b], axis=1)


def exact_quotients(rng: Rng, n: int) -> np.ndarray:
    """a = b·q for small integers q (exact quotients), scaled to every range."""
    q = rng.integers(1, 1 << 12, n).astype(np.float64)
    b = _pattern(_signs(rng, n), rng.integers(0, 240, n), _fractions(rng, n) & ~0xFFF)
    with np.errstate(over="ignore"):
        a = _bits((b.view(np.float32).astype(np.float64) * q).astype(np.float32))
    return np.stack([a, b], axis=1)


def quotient_ranges(rng: Rng, n: int) -> np.ndarray:
    """Pairs whose quotient lands around the subnormal range, min normal, or overflow."""
    target = rng.choice(np.array([-30, -24, -2, -1, 0, 1, 2, 252, 253, 254, 255, 256]), n)
    target = target + rng.integers(-2, 3, n)
    field_b = rng.integers(1, 255, n)
    field_a = np.clip(target - 127 + field_b, 0, 254)
    a = _pattern(_signs(rng, n), field_a, _fractions(rng, n))
    b = _pattern(_signs(rng, n), field_b, _fractions(rng, n))
    return np.stack([a, b], axis=1)


def squares(rng: Rng, n: int) -> np.ndarray:
    """Exact squares, their neighbours (±1, ±2 ulps), and every power of two."""
    root = rng.integers(1, 1 << 12, n).astype(np.float64) * np.exp2(rng.integers(-70, 60, n))
    with np.errstate(over="ignore"):
        square = _bits((root * root).astype(np.float32)).astype(np.int64)
    square = square + rng.integers(-2, 3, n)
    powers = (np.arange(n) % 278).astype(np.int64)
    power_bits = np.where(
        powers < 23, 1 << powers, (powers - 22) << 23
    )  # 2^-149 .. 2^127 as patterns
    pick = rng.integers(0, 4, n) == 0
    square[pick] = power_bits[pick]
    return square.clip(0, 0x7F7FFFFF).astype(np.uint32)[:, None]


def ldexp_exponents(rng: Rng, n: int) -> np.ndarray:
    """Any x with integral n in [-310, 310] (clamping at ±300), and non-integral or special n."""
    x = edge_random(rng, n, 1)[:, 0]
    x[: n // 2] = ordinary(rng, n // 2, 1)[:, 0]
    k = rng.integers(-310, 311, n).astype(np.float32)
    special = rng.integers(0, 8, n) == 0
    k[special] = rng.choice(
        np.array([0.5, -0.5, 300.5, -299.5, 1e9, -1e9, np.inf, -np.inf, np.nan, -0.0], np.float32),
        int(special.sum()),
    )
    return np.stack([x, _bits(k)], axis=1)


def near_values(rng: Rng, n: int) -> np.ndarray:
    """Pairs equal or one ulp apart, with ±0 and NaN mixed in (comparisons, max, min)."""
    a = edge_random(rng, n, 1)[:, 0]
    step = rng.integers(-1, 2, n)
    b = (a.astype(np.int64) + step).clip(0, 0xFFFFFFFF).astype(np.uint32)
    flip = rng.integers(0, 4, n) == 0
    b[flip] ^= SIGN
    return np.stack([a, b], axis=1)


def selections(rng: Rng, n: int) -> np.ndarray:
    """Conditions of every class (±0, NaN, tiny, 1.0) with random operands."""
    cond = rng.choice(EDGE_BITS, n)
    return np.concatenate([cond[:, None], edge_random(rng, n, 2)], axis=1)


def exp_arguments(rng: Rng, n: int) -> np.ndarray:
    """The range exp reduces (-110 to 95), its clamps, overflow and underflow edges, and ±tiny."""
    x = rng.uniform(-110, 95, n).astype(np.float32)
    edges = np.array([88.72283, 88.7228, -87.33655, -103.972, -104.0, 89.0], np.float32)
    near = rng.integers(0, 3, n) == 0
    x[near] = rng.choice(edges, int(near.sum()))
    bits = _bits(x).astype(np.int64)
    bits[near] += rng.integers(-64, 65, int(near.sum()))
    tiny = rng.integers(0, 6, n) == 0
    bits[tiny] = _pattern(
        _signs(rng, int(tiny.sum())),
        rng.integers(0, 110, int(tiny.sum())),
        _fractions(rng, int(tiny.sum())),
    )
    return bits.astype(np.uint32)[:, None]


def log_arguments(rng: Rng, n: int) -> np.ndarray:
    """Positive values of every binade, values near 1 and near √2·2^k, subnormals."""
    field = rng.integers(0, 255, n)
    bits = _pattern(np.zeros(n, np.int64), field, _fractions(rng, n)).astype(np.int64)
    near_one = rng.integers(0, 4, n) == 0
    bits[near_one] = 0x3F800000 + rng.integers(-4096, 4097, int(near_one.sum()))
    near_root = rng.integers(0, 6, n) == 0
    bits[near_root] = (
        (0x3FB504F3 & 0x7FFFFF) | (rng.integers(1, 255, int(near_root.sum())) << 23)
    ) + rng.integers(-3, 4, int(near_root.sum()))
    return bits.clip(0, 0x7F7FFFFF).astype(np.uint32)[:, None]


def _classes(spec: ElementwiseOp) -> list[Generator]:
    arity = spec.arity
    common: list[Generator] = [
        lambda rng, n: random_bits(rng, n, arity),
        lambda rng, n: ordinary(rng, n, arity),
        lambda rng, n: edge_random(rng, n, arity),
        lambda rng, n: subnormals(rng, n, arity),
        lambda rng, n: overflow_boundary(rng, n, arity),
    ]
    special: dict[str, list[Generator]] = {
        "add": [exponent_gaps, addition_ties, cancellation],
        "sub": [exponent_gaps, addition_ties, cancellation],
        "mul": [product_ranges, multiplication_ties],
        "div": [exact_quotients, quotient_ranges],
        "sqrt": [squares],
        "ldexp": [ldexp_exponents],
        "maximum": [near_values],
        "minimum": [near_values],
        "lt": [near_values],
        "le": [near_values],
        "eq": [near_values],
        "select": [selections],
        "exp": [exp_arguments],
        "log": [log_arguments],
    }
    # The op's own classes get twice the share of the generic ones.
    own = special.get(spec.name, [])
    return common + own + own


def edge_grid(arity: int) -> np.ndarray:
    """Every ordered pair of edge values (arity 2), every edge value (arity 1), or a
    sample of triples (arity 3: every condition class with every pair would be 250,000)."""
    if arity == 1:
        return EDGE_BITS[:, None].copy()
    if arity == 2:
        a, b = np.meshgrid(EDGE_BITS, EDGE_BITS, indexing="ij")
        return np.stack([a.reshape(-1), b.reshape(-1)], axis=1)
    rng = np.random.default_rng(0)
    return rng.choice(EDGE_BITS, size=(EDGE_BITS.size**2, arity))


def vectors(name: str, count: int, seed: int) -> np.ndarray:
    """``count`` operand rows for the op ``name``: the edge grid, then every class in turn."""
    spec = elementwise(name)
    rng = np.random.default_rng(seed)
    grid = edge_grid(spec.arity)
    rest = max(0, count - grid.shape[0])
    classes = _classes(spec)
    shares = [
        rest // len(classes) + (1 if i < rest % len(classes) else 0) for i in range(len(classes))
    ]
    parts = [grid] + [
        make(rng, share) for make, share in zip(classes, shares, strict=True) if share
    ]
    rows = np.concatenate(parts, axis=0).astype(np.uint32)
    return rows[:count] if count >= grid.shape[0] else rows
