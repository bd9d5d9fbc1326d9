// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32} from "./Types.sol";

/// @title Binary32Math
/// @notice IEEE-754 binary32 arithmetic on bit patterns, bit-identical to the exact kernels
///         (PROTOCOL.md §2, docs/exact.md): round to nearest, ties to even; subnormals kept;
///         `-0` distinct from `+0`; every NaN result is the canonical quiet NaN `0x7FC00000`;
///         IEEE 754-2019 `maximum`/`minimum`; comparisons give `1.0` or `0.0`.
/// @dev Every operation computes the exact result as an integer `p · 2^e` and rounds it once
///      (`_round`). The common cases of `add` and `mul` (normal operands and results) are
///      rounded inline; everything else (zeros, subnormals, infinities, NaNs, cancellation)
///      takes the general path. docs/arbiter.md explains the layout and the gas figures.
library Binary32Math {
    uint256 internal constant SIGN = 0x80000000;
    uint256 internal constant MAGNITUDE = 0x7FFFFFFF;
    uint256 internal constant FRACTION = 0x7FFFFF;
    uint256 internal constant HIDDEN = 0x800000;
    uint256 internal constant INF = 0x7F800000;
    uint256 internal constant NEG_INF = 0xFF800000;
    uint256 internal constant NAN = 0x7FC00000;
    uint256 internal constant ONE = 0x3F800000;

    // exp (docs/exact.md, "exp"): clamp, k = round(t / ln 2), reduce, degree-7 polynomial, scale.
    uint32 private constant EXP_LOW = 0xC2D00000; // -104
    uint32 private constant EXP_HIGH = 0x42B20000; // 89
    uint32 private constant LOG2E = 0x3FB8AA3B;
    uint32 private constant ROUND_MAGIC = 0x4B400000; // 1.5 * 2^23
    uint32 private constant LN2_HI = 0x3F317200;
    uint32 private constant LN2_LO = 0x35BFBE8E;
    uint32 private constant EXP_C2 = 0x3F000000;
    uint32 private constant EXP_C3 = 0x3E2AAAAB;
    uint32 private constant EXP_C4 = 0x3D2AAAAB;
    uint32 private constant EXP_C5 = 0x3C088889;
    uint32 private constant EXP_C6 = 0x3AB60B61;
    uint32 private constant EXP_C7 = 0x39500D01;

    // log (docs/exact.md, "log"): x = m · 2^e, m in (√½, √2], log1p(f) through s = f / (2 + f).
    uint32 private constant SQRT2 = 0x3FB504F3;
    uint32 private constant LOG_L1 = 0x3F2AAAAB;
    uint32 private constant LOG_L2 = 0x3ECCCCCD;
    uint32 private constant LOG_L3 = 0x3E924925;
    uint32 private constant LOG_L4 = 0x3E638E39;
    uint32 private constant HALF = 0x3F000000;
    uint32 private constant TWO = 0x40000000;

    // ldexp clamps its exponent to [-300, 300]; 300.0 is 0x43960000.
    uint256 private constant LDEXP_LIMIT = 300;
    uint256 private constant LDEXP_LIMIT_BITS = 0x43960000;

    // --- the basic operations ---------------------------------------------------------------

    /// @notice `a + b`, rounded to nearest even.
    function add(Binary32 a, Binary32 b) internal pure returns (Binary32 r) {
        bool slow;
        assembly ("memory-safe") {
            // Order the operands by magnitude (a branch-free swap): |a| >= |b|.
            let t := mul(lt(and(a, MAGNITUDE), and(b, MAGNITUDE)), xor(a, b))
            a := xor(a, t)
            b := xor(b, t)
            let ea := shr(23, and(a, MAGNITUDE))
            let eb := shr(23, and(b, MAGNITUDE))
            // Fast path: a normal below the top binade, b normal. In a frame 26 bits above a's
            // last place a is exact; b is exact there for exponent gaps up to 26, and beyond
            // that it is far below half of a's last place, where dropping its bits cannot
            // change the rounding.
            switch and(lt(sub(ea, 1), 0xFD), gt(eb, 0))
            case 0 { slow := 1 }
            default {
                let d := sub(ea, eb)
                let big := shl(26, or(and(a, FRACTION), HIDDEN))
                let small := shr(d, shl(26, or(and(b, FRACTION), HIDDEN)))
                switch and(xor(a, b), SIGN)
                case 0 {
                    // s in [2^49, 2^51), shifted into [2^50, 2^51): 24 bits above bit 27.
                    // Round to nearest even: add half less one, plus the lowest kept bit. A
                    // carry out of the significand moves into the exponent field by itself.
                    let s := add(big, small)
                    let hi := shr(50, s)
                    s := shl(sub(1, hi), s)
                    r := or(add(shl(23, sub(add(ea, hi), 1)), shr(27, add(add(s, 0x3FFFFFF), and(shr(27, s), 1)))), and(a, SIGN))
                }
                default {
                    // An exponent gap of 2 or more keeps s in (2^48, 2^50); smaller gaps may
                    // cancel to any length and take the general path.
                    switch gt(d, 1)
                    case 0 { slow := 1 }
                    default {
                        let s := sub(big, small)
                        let hi := shr(49, s)
                        s := shl(sub(1, hi), s)
                        r := or(add(shl(23, sub(add(ea, hi), 2)), shr(26, add(add(s, 0x1FFFFFF), and(shr(26, s), 1)))), and(a, SIGN))
                    }
                }
            }
        }
        if (slow) r = Binary32.wrap(uint32(_addGeneral(Binary32.unwrap(a), Binary32.unwrap(b))));
    }

    /// @notice `a - b`, rounded to nearest even (`a + (-b)`, which IEEE defines as the same).
    function sub(Binary32 a, Binary32 b) internal pure returns (Binary32) {
        return add(a, Binary32.wrap(Binary32.unwrap(b) ^ uint32(SIGN)));
    }

    /// @notice `a · b`, rounded to nearest even.
    function mul(Binary32 a, Binary32 b) internal pure returns (Binary32 r) {
        bool slow;
        assembly ("memory-safe") {
            let ea := and(shr(23, a), 0xFF)
            let eb := and(shr(23, b), 0xFF)
            // Fast path: both normal, the product normal or rounding up to infinity.
            switch and(lt(sub(ea, 1), 0xFE), lt(sub(eb, 1), 0xFE))
            case 0 { slow := 1 }
            default {
                // p in [2^46, 2^48), shifted into [2^47, 2^48): 24 bits above bit 24.
                let p := mul(or(and(a, FRACTION), HIDDEN), or(and(b, FRACTION), HIDDEN))
                let hi := shr(47, p)
                // The result's exponent field less one; up to 253 a rounding carry ends at
                // most at infinity's pattern, which is the correctly rounded overflow.
                let field := sub(add(add(ea, eb), hi), 128)
                switch lt(field, 254)
                case 0 { slow := 1 }
                default {
                    p := shl(sub(1, hi), p)
                    // Round to nearest even: add half less one, plus the lowest kept bit.
                    r := or(add(shl(23, field), shr(24, add(add(p, 0x7FFFFF), and(shr(24, p), 1)))), and(xor(a, b), SIGN))
                }
            }
        }
        if (slow) r = Binary32.wrap(uint32(_mulGeneral(Binary32.unwrap(a), Binary32.unwrap(b))));
    }

    /// @notice `a / b`, correctly rounded (never through a reciprocal).
    function div(Binary32 a, Binary32 b) internal pure returns (Binary32) {
        return Binary32.wrap(uint32(_div(Binary32.unwrap(a), Binary32.unwrap(b))));
    }

    /// @notice The correctly rounded square root; `sqrt(-0) = -0`, a negative input gives NaN.
    function sqrt(Binary32 a) internal pure returns (Binary32) {
        return Binary32.wrap(uint32(_sqrt(Binary32.unwrap(a))));
    }

    /// @notice `-a` (NaN stays the canonical NaN).
    function neg(Binary32 a) internal pure returns (Binary32) {
        uint256 x = Binary32.unwrap(a);
        return Binary32.wrap(uint32(x & MAGNITUDE > INF ? NAN : x ^ SIGN));
    }

    /// @notice `|a|` (NaN stays the canonical NaN).
    function abs(Binary32 a) internal pure returns (Binary32) {
        uint256 x = Binary32.unwrap(a) & MAGNITUDE;
        return Binary32.wrap(uint32(x > INF ? NAN : x));
    }

    /// @notice IEEE 754-2019 `maximum`: NaN if either is NaN, `maximum(+0, -0) = +0`.
    function maximum(Binary32 a, Binary32 b) internal pure returns (Binary32) {
        uint256 x = Binary32.unwrap(a);
        uint256 y = Binary32.unwrap(b);
        if (x & MAGNITUDE > INF || y & MAGNITUDE > INF) return Binary32.wrap(uint32(NAN));
        return _orderKey(x) >= _orderKey(y) ? a : b;
    }

    /// @notice IEEE 754-2019 `minimum`: NaN if either is NaN, `minimum(+0, -0) = -0`.
    function minimum(Binary32 a, Binary32 b) internal pure returns (Binary32) {
        uint256 x = Binary32.unwrap(a);
        uint256 y = Binary32.unwrap(b);
        if (x & MAGNITUDE > INF || y & MAGNITUDE > INF) return Binary32.wrap(uint32(NAN));
        return _orderKey(x) <= _orderKey(y) ? a : b;
    }

    /// @notice `1.0` if `a < b`, else `0.0` (NaN compares false, `-0 == +0`).
    function lt(Binary32 a, Binary32 b) internal pure returns (Binary32) {
        return _truth(isLess(a, b));
    }

    /// @notice `1.0` if `a <= b`, else `0.0` (NaN compares false, `-0 == +0`).
    function le(Binary32 a, Binary32 b) internal pure returns (Binary32) {
        return _truth(isLessOrEqual(a, b));
    }

    /// @notice `1.0` if `a == b`, else `0.0` (NaN compares false, `-0 == +0`).
    function eq(Binary32 a, Binary32 b) internal pure returns (Binary32) {
        return _truth(isEqual(a, b));
    }

    /// @notice `a < b` as a bool (NaN compares false, `-0 == +0`).
    function isLess(Binary32 a, Binary32 b) internal pure returns (bool) {
        uint256 x = Binary32.unwrap(a);
        uint256 y = Binary32.unwrap(b);
        if (x & MAGNITUDE > INF || y & MAGNITUDE > INF) return false;
        if ((x | y) & MAGNITUDE == 0) return false;
        return _orderKey(x) < _orderKey(y);
    }

    /// @notice `a <= b` as a bool (NaN compares false, `-0 == +0`).
    function isLessOrEqual(Binary32 a, Binary32 b) internal pure returns (bool) {
        uint256 x = Binary32.unwrap(a);
        uint256 y = Binary32.unwrap(b);
        if (x & MAGNITUDE > INF || y & MAGNITUDE > INF) return false;
        if ((x | y) & MAGNITUDE == 0) return true;
        return _orderKey(x) <= _orderKey(y);
    }

    /// @notice `a == b` as a bool (NaN compares false, `-0 == +0`).
    function isEqual(Binary32 a, Binary32 b) internal pure returns (bool) {
        uint256 x = Binary32.unwrap(a);
        uint256 y = Binary32.unwrap(b);
        if (x & MAGNITUDE > INF || y & MAGNITUDE > INF) return false;
        return x == y || (x | y) & MAGNITUDE == 0;
    }

    /// @notice `a` where `cond` is not `±0` (a NaN condition counts as true), else `b`;
    ///         a NaN result is the canonical NaN.
    function select(Binary32 cond, Binary32 a, Binary32 b) internal pure returns (Binary32) {
        uint256 r = Binary32.unwrap(cond) & MAGNITUDE != 0 ? Binary32.unwrap(a) : Binary32.unwrap(b);
        return Binary32.wrap(uint32(r & MAGNITUDE > INF ? NAN : r));
    }

    /// @notice `x · 2^n` rounded once; `n` must be an integer-valued binary32 (NaN otherwise),
    ///         clamped to [-300, 300] (beyond that every result is `±0` or `±inf` anyway).
    function ldexp(Binary32 x, Binary32 n) internal pure returns (Binary32) {
        uint256 bits = Binary32.unwrap(x);
        uint256 m = Binary32.unwrap(n);
        if (bits & MAGNITUDE > INF || m & MAGNITUDE > INF) return Binary32.wrap(uint32(NAN));
        (bool integral, int256 k) = _ldexpExponent(m);
        if (!integral) return Binary32.wrap(uint32(NAN));
        return Binary32.wrap(uint32(_scale(bits, k)));
    }

    /// @notice The binary32 value of the integer `i`, exact for `|i| < 2^24` (rounded beyond).
    function fromInt(int256 i) internal pure returns (Binary32) {
        if (i == 0) return Binary32.wrap(0);
        uint256 sign = i < 0 ? SIGN : 0;
        uint256 m = i < 0 ? uint256(-i) : uint256(i);
        return Binary32.wrap(uint32(_round(sign, 0, m)));
    }

    /// @notice Whether `v` is a whole number in [0, `bound`) (`-0` counts as 0), and that number.
    /// @dev How the exact kernels read index tensors: float32 integers below 2^24.
    function toIndex(Binary32 v, uint256 bound) internal pure returns (bool ok, uint256 index) {
        uint256 x = Binary32.unwrap(v);
        if (x & MAGNITUDE == 0) return (bound > 0, 0);
        if (x & SIGN != 0) return (false, 0);
        uint256 field = x >> 23;
        if (field < 127 || field > 127 + 23) return (false, 0);
        uint256 drop = 150 - field; // fraction bits below the binary point
        uint256 m = (x & FRACTION) | HIDDEN;
        if (m & ((1 << drop) - 1) != 0) return (false, 0);
        index = m >> drop;
        ok = index < bound;
    }

    // --- composites -------------------------------------------------------------------------

    /// @notice The exp composite of docs/exact.md, step by step, each step rounded on its own.
    function exp(Binary32 x) internal pure returns (Binary32) {
        if (Binary32.unwrap(x) & MAGNITUDE > INF) return Binary32.wrap(uint32(NAN));
        Binary32 t = minimum(maximum(x, _c(EXP_LOW)), _c(EXP_HIGH));
        Binary32 k = sub(add(mul(t, _c(LOG2E)), _c(ROUND_MAGIC)), _c(ROUND_MAGIC));
        Binary32 r = sub(sub(t, mul(k, _c(LN2_HI))), mul(k, _c(LN2_LO)));
        Binary32 p = _c(EXP_C7);
        p = add(mul(p, r), _c(EXP_C6));
        p = add(mul(p, r), _c(EXP_C5));
        p = add(mul(p, r), _c(EXP_C4));
        p = add(mul(p, r), _c(EXP_C3));
        p = add(mul(p, r), _c(EXP_C2));
        p = add(mul(p, r), _c(uint32(ONE)));
        p = add(mul(p, r), _c(uint32(ONE)));
        return ldexp(p, k);
    }

    /// @notice The log composite of docs/exact.md, step by step, each step rounded on its own.
    function log(Binary32 x) internal pure returns (Binary32) {
        uint256 bits = Binary32.unwrap(x);
        if (bits & MAGNITUDE > INF) return Binary32.wrap(uint32(NAN));
        if (bits & MAGNITUDE == 0) return Binary32.wrap(uint32(NEG_INF));
        if (bits & SIGN != 0) return Binary32.wrap(uint32(NAN));
        if (bits == INF) return x;
        // x = m · 2^e with m in [1, 2): e from the bit pattern, m = ldexp(x, -e) exactly.
        int256 e = _floorLog2(bits);
        Binary32 m = Binary32.wrap(uint32(_scale(bits, -e)));
        Binary32 fe = fromInt(e);
        if (Binary32.unwrap(m) > SQRT2) {
            m = mul(m, _c(HALF));
            fe = add(fe, _c(uint32(ONE)));
        }
        Binary32 f = sub(m, _c(uint32(ONE)));
        Binary32 s = div(f, add(_c(TWO), f));
        Binary32 z = mul(s, s);
        Binary32 big = mul(z, add(_c(LOG_L1), mul(z, add(_c(LOG_L2), mul(z, add(_c(LOG_L3), mul(z, _c(LOG_L4))))))));
        Binary32 h = mul(mul(_c(HALF), f), f);
        Binary32 inner = sub(sub(h, add(mul(s, add(h, big)), mul(fe, _c(LN2_LO)))), f);
        return sub(mul(fe, _c(LN2_HI)), inner);
    }

    // --- internals ----------------------------------------------------------------------------

    function _c(uint32 bits) private pure returns (Binary32) {
        return Binary32.wrap(bits);
    }

    function _truth(bool value) private pure returns (Binary32) {
        return Binary32.wrap(value ? uint32(ONE) : 0);
    }

    /// @dev A key whose unsigned order is the IEEE total order of non-NaN values with -0 < +0.
    function _orderKey(uint256 x) private pure returns (uint256) {
        return x & SIGN != 0 ? ~x & 0xFFFFFFFF : x | SIGN;
    }

    /// @dev floor(log2(x)) of a positive finite x, from its bit pattern.
    function _floorLog2(uint256 bits) private pure returns (int256) {
        uint256 field = bits >> 23;
        if (field != 0) return int256(field) - 127;
        return int256(_bitLength(bits & FRACTION)) - 150;
    }

    /// @dev The number of significant bits of p (0 for 0); p < 2^128.
    function _bitLength(uint256 p) private pure returns (uint256 n) {
        assembly ("memory-safe") {
            let x := p
            n := shl(6, gt(x, 0xFFFFFFFFFFFFFFFF))
            x := shr(n, x)
            let f := shl(5, gt(x, 0xFFFFFFFF))
            x := shr(f, x)
            n := or(n, f)
            f := shl(4, gt(x, 0xFFFF))
            x := shr(f, x)
            n := or(n, f)
            f := shl(3, gt(x, 0xFF))
            x := shr(f, x)
            n := or(n, f)
            f := shl(2, gt(x, 0xF))
            x := shr(f, x)
            n := or(n, f)
            // bit lengths of 0..15, one byte each
            n := add(n, byte(x, 0x0001020203030303040404040404040400000000000000000000000000000000))
        }
    }

    /// @dev The binary32 nearest to p · 2^e (ties to even) with sign bit `sign`; p > 0, p < 2^128.
    ///      Results beyond the largest finite value are infinite; the subnormal range is kept.
    function _round(uint256 sign, int256 e, uint256 p) private pure returns (uint256 r) {
        uint256 n = _bitLength(p);
        assembly ("memory-safe") {
            // Keep 24 significant bits, or fewer where the result is subnormal (unit 2^-149).
            let shift := sub(n, 24)
            let low := sub(sub(0, 149), e)
            if slt(shift, low) { shift := low }
            switch sgt(shift, 0)
            case 0 { r := add(shl(23, add(add(e, shift), 149)), shl(sub(0, shift), p)) }
            default {
                // Below half of the smallest subnormal: the result is zero.
                if iszero(gt(shift, n)) {
                    // Keep one bit more (the round bit); the rest is the sticky condition.
                    let kept := shr(sub(shift, 1), p)
                    let sticky := iszero(eq(shl(sub(shift, 1), kept), p))
                    let q := shr(1, kept)
                    q := add(q, and(and(kept, 1), or(sticky, and(q, 1))))
                    // The hidden bit of q adds one to the exponent field; a carry out of the
                    // significand moves to the next binade by the same addition.
                    r := add(shl(23, add(add(e, shift), 149)), q)
                }
            }
            if gt(r, INF) { r := INF }
            r := or(r, sign)
        }
    }

    /// @dev Significand (hidden bit included) and exponent field (1 for subnormals) of a
    ///      finite magnitude: its value is m · 2^(field - 150).
    function _unpack(uint256 magnitude) private pure returns (uint256 m, uint256 field) {
        field = magnitude >> 23;
        m = magnitude & FRACTION;
        if (field == 0) field = 1;
        else m |= HIDDEN;
    }

    /// @dev `x + y` for every class of input.
    function _addGeneral(uint256 x, uint256 y) private pure returns (uint256) {
        uint256 ax = x & MAGNITUDE;
        uint256 ay = y & MAGNITUDE;
        if (ax < ay) (x, y, ax, ay) = (y, x, ay, ax);
        if (ax > INF) return NAN; // |y| <= |x|: a NaN y makes x a NaN too
        if (ax == INF) return (ay == INF && (x ^ y) & SIGN != 0) ? NAN : x;
        if (ay == 0) return ax == 0 ? x & y : x;
        (uint256 ma, uint256 ea) = _unpack(ax);
        (uint256 mb, uint256 eb) = _unpack(ay);
        uint256 d = ea - eb;
        if (d >= 26) return x;
        uint256 big = ma << 26;
        uint256 small = mb << (26 - d);
        uint256 s = (x ^ y) & SIGN == 0 ? big + small : big - small;
        if (s == 0) return 0; // exact cancellation is +0 when rounding to nearest
        return _round(x & SIGN, int256(ea) - 176, s);
    }

    function _mulGeneral(uint256 x, uint256 y) private pure returns (uint256) {
        uint256 sign = (x ^ y) & SIGN;
        uint256 ax = x & MAGNITUDE;
        uint256 ay = y & MAGNITUDE;
        if (ax > INF || ay > INF) return NAN;
        if (ax == INF || ay == INF) return (ax == 0 || ay == 0) ? NAN : sign | INF;
        if (ax == 0 || ay == 0) return sign;
        (uint256 ma, uint256 ea) = _unpack(ax);
        (uint256 mb, uint256 eb) = _unpack(ay);
        return _round(sign, int256(ea + eb) - 300, ma * mb);
    }

    function _div(uint256 x, uint256 y) private pure returns (uint256) {
        uint256 sign = (x ^ y) & SIGN;
        uint256 ax = x & MAGNITUDE;
        uint256 ay = y & MAGNITUDE;
        if (ax > INF || ay > INF) return NAN;
        if (ax == INF) return ay == INF ? NAN : sign | INF;
        if (ay == INF) return sign;
        if (ay == 0) return ax == 0 ? NAN : sign | INF;
        if (ax == 0) return sign;
        (uint256 ma, uint256 ea) = _unpack(ax);
        (uint256 mb, uint256 eb) = _unpack(ay);
        // 64 extra bits leave at least 40 bits of quotient; the remainder only decides
        // whether the rest is exactly zero, which a sticky bit below the quotient records.
        uint256 num = ma << 64;
        uint256 q = num / mb;
        uint256 p = (q << 1) | (num % mb == 0 ? 0 : 1);
        return _round(sign, int256(ea) - int256(eb) - 65, p);
    }

    function _sqrt(uint256 x) private pure returns (uint256) {
        uint256 ax = x & MAGNITUDE;
        if (ax > INF) return NAN;
        if (ax == 0) return x;
        if (x & SIGN != 0) return NAN;
        if (ax == INF) return INF;
        (uint256 m, uint256 field) = _unpack(ax);
        // x = m · 2^(field - 150); make the exponent even, then widen by 2^64 so the integer
        // root has at least 32 bits, and keep a sticky bit for an inexact root.
        int256 e = int256(field) - 150;
        if (field & 1 == 1) {
            m <<= 1;
            e -= 1;
        }
        uint256 big = m << 64;
        uint256 s = _isqrt(big);
        uint256 p = (s << 1) | (s * s == big ? 0 : 1);
        return _round(0, (e - 64) / 2 - 1, p);
    }

    /// @dev floor(sqrt(v)) for 0 < v < 2^128, by Newton's iteration from above.
    function _isqrt(uint256 v) private pure returns (uint256 s) {
        s = 1 << ((_bitLength(v) + 1) / 2);
        while (true) {
            uint256 next = (s + v / s) >> 1;
            if (next >= s) break;
            s = next;
        }
    }

    /// @dev The integer exponent of ldexp: n's value clamped to [-300, 300], and whether that
    ///      value is a whole number. `m` is not NaN.
    function _ldexpExponent(uint256 m) private pure returns (bool integral, int256 k) {
        uint256 am = m & MAGNITUDE;
        if (am > LDEXP_LIMIT_BITS) {
            return (true, m & SIGN != 0 ? -int256(LDEXP_LIMIT) : int256(LDEXP_LIMIT));
        }
        if (am == 0) return (true, 0);
        uint256 field = am >> 23;
        if (field < 127) return (false, 0);
        uint256 drop = 150 - field; // |n| <= 300 < 2^9: field <= 135
        uint256 frac = (am & FRACTION) | HIDDEN;
        if (frac & ((1 << drop) - 1) != 0) return (false, 0);
        k = int256(frac >> drop);
        if (m & SIGN != 0) k = -k;
        integral = true;
    }

    /// @dev `bits · 2^k` rounded once, for a non-NaN `bits` and |k| <= 300.
    function _scale(uint256 bits, int256 k) private pure returns (uint256) {
        uint256 ax = bits & MAGNITUDE;
        if (ax == 0 || ax == INF) return bits;
        uint256 field = ax >> 23;
        if (field != 0) {
            int256 moved = int256(field) + k;
            if (moved >= 1 && moved <= 254) {
                return (bits & SIGN) | (uint256(moved) << 23) | (ax & FRACTION);
            }
        }
        (uint256 m, uint256 ea) = _unpack(ax);
        return _round(bits & SIGN, int256(ea) - 150 + k, m);
    }
}
