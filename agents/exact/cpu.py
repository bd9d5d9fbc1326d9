"""The CPU path: numpy arrays and numba kernels.

numba compiles without fast-math, so LLVM never contracts a multiply and an add
into a fused multiply-add nor reassociates a sum; every ``a + b`` below is one
rounded binary32 addition. The kernels vectorize only across independent
outputs (a row of a product, the inner axis of a reduction), never along a
reduction, and the parallel variants split work by output rows, so the thread
count cannot change a single bit. Square roots use the ``llvm.sqrt.f32``
instruction (correctly rounded), never libm; ``ldexp`` multiplies in binary64,
where the product is exact, and rounds once to binary32.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types as nbtypes
from numba.extending import intrinsic
from numba.np.numpy_support import carray

from agents.commitment.hashing import word_pointer
from agents.exact.constants import (
    EXP_C2,
    EXP_C3,
    EXP_C4,
    EXP_C5,
    EXP_C6,
    EXP_C7,
    EXP_HIGH,
    EXP_LOW,
    F_LDEXP_LIMIT,
    HALF,
    INF,
    LDEXP_LIMIT,
    LN2_HI,
    LN2_LO,
    LOG2E,
    LOG_L1,
    LOG_L2,
    LOG_L3,
    LOG_L4,
    NAN,
    ONE,
    POW2_F64,
    ROUND_MAGIC,
    SQRT2,
    TWO,
    ZERO,
)
from agents.exact.kernels import Kernels, Operand, broadcast_shape
from agents.exact.microkernel import TILE_ROWS, tile_4x16, tile_4x32
from agents.exact.trace import Op
from agents.kernel_threads import LAUNCH_LOCK, parallel_clone

F32 = np.float32
# Kernels receive the canonical NaN at run time, in this array, instead of as a
# constant: LLVM treats NaN payloads as unspecified and folds
# ``r != r ? <NaN constant> : r`` into ``r``, which would let other NaNs through.
_NAN_CELL = np.array([NAN], dtype=np.float32)

# numba's default error model raises ZeroDivisionError on x / 0; every kernel uses
# numpy's, which is IEEE division.

# Below this much work (elements or multiply-adds) a kernel runs on the calling thread:
# waking the pool costs more than it saves. Measured on a 2-vCPU virtual machine: about
# 0.1 ms per launch, and a 2-thread matmul_nt slower than the serial one up to ~10^8
# multiply-adds (8.4·10^6: 250 µs against 243 µs serial). The environment variable
# VERITRAIN_PARALLEL_MIN_WORK changes it (speed only, never results).
PARALLEL_MIN_WORK = int(os.environ.get("VERITRAIN_PARALLEL_MIN_WORK", 1 << 26))


# --- scalar definitions ------------------------------------------------------


def _sqrt_f32_typer(typingctx: Any, x: Any) -> Any:
    """The ``llvm.sqrt.f32`` instruction: correctly rounded, no libm call, no errno."""
    sig = nbtypes.float32(nbtypes.float32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fn = builder.module.declare_intrinsic("llvm.sqrt", [ir.FloatType()])
        return builder.call(fn, args)

    return sig, codegen


_sqrt_f32: Any = intrinsic(_sqrt_f32_typer)


@njit(inline="always", error_model="numpy")
def _canon(r: F32, nan: F32) -> F32:
    return nan if r != r else r


@njit(inline="always", error_model="numpy")
def _max(a: F32, b: F32, nan: F32) -> F32:
    if a != a or b != b:
        return nan
    if a > b:
        return a
    if b > a:
        return b
    if a == ZERO:
        return a + b  # equal zeros: -0 only when both are -0
    return a


@njit(inline="always", error_model="numpy")
def _min(a: F32, b: F32, nan: F32) -> F32:
    if a != a or b != b:
        return nan
    if a < b:
        return a
    if b < a:
        return b
    if a == ZERO:
        return -((-a) + (-b))  # equal zeros: +0 only when both are +0
    return a


@njit(inline="always", error_model="numpy")
def _ldexp(x: F32, n: F32, nan: F32) -> F32:
    if x != x or n != n:
        return nan
    clamped = _min(_max(n, -F_LDEXP_LIMIT, nan), F_LDEXP_LIMIT, nan)
    k = np.int64(clamped)
    if F32(k) != clamped:
        return nan
    return F32(np.float64(x) * POW2_F64[k + LDEXP_LIMIT])


def _f64_from_bits_typer(typingctx: Any, pattern: Any) -> Any:
    """Reinterpret an int64 bit pattern as a binary64 value (no arithmetic)."""
    sig = nbtypes.float64(nbtypes.int64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


_f64_from_bits: Any = intrinsic(_f64_from_bits_typer)


def _f32_pointer_typer(typingctx: Any, address: Any) -> Any:
    """A ``float*`` at an integer address (for ``numba.carray``): arrays passed by address."""
    sig = nbtypes.CPointer(nbtypes.float32)(nbtypes.intp)  # type: ignore[no-untyped-call]

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], ir.FloatType().as_pointer())

    return sig, codegen


_f32_pointer: Any = intrinsic(_f32_pointer_typer)


@njit(inline="always", error_model="numpy")
def _exp(x: F32, nan: F32) -> F32:
    # The sequence of docs/exact.md, written without branches so that LLVM vectorizes
    # it: the clamp ignores NaN (restored at the end), and 2**k (|k| <= 150) is built
    # from its binary64 bit pattern; ldexp's product p * 2**k is exact in binary64 and
    # rounds once, as in _ldexp.
    t = x if x > EXP_LOW else EXP_LOW
    t = t if t < EXP_HIGH else EXP_HIGH
    k = (t * LOG2E + ROUND_MAGIC) - ROUND_MAGIC
    r = (t - k * LN2_HI) - k * LN2_LO
    p = EXP_C7
    p = p * r + EXP_C6
    p = p * r + EXP_C5
    p = p * r + EXP_C4
    p = p * r + EXP_C3
    p = p * r + EXP_C2
    p = p * r + ONE
    p = p * r + ONE
    scale = _f64_from_bits((np.int64(k) + 1023) << 52)
    y = F32(np.float64(p) * scale)
    return nan if x != x else y


@njit(inline="always", error_model="numpy")
def _floor_log2(pattern: np.uint32) -> np.int64:
    """floor(log2(x)) of a positive finite float32 from its bit pattern."""
    field = np.int64((pattern >> np.uint32(23)) & np.uint32(0xFF))
    if field != 0:
        return field - 127
    mantissa = np.int64(pattern & np.uint32(0x7FFFFF))
    e = np.int64(-150)
    while mantissa != 0:
        mantissa >>= 1
        e += 1
    return e


@njit(inline="always", error_model="numpy")
def _log(x: F32, pattern: np.uint32, nan: F32) -> F32:
    if x != x or x < ZERO:
        return nan
    if x == ZERO:
        return -INF
    if x == INF:
        return INF
    e = F32(_floor_log2(pattern))
    m = _ldexp(x, -e, nan)
    if m > SQRT2:
        m = m * HALF
        e = e + ONE
    f = m - ONE
    s = f / (TWO + f)
    z = s * s
    big_r = z * (LOG_L1 + z * (LOG_L2 + z * (LOG_L3 + z * LOG_L4)))
    hfsq = (HALF * f) * f
    return e * LN2_HI - ((hfsq - (s * (hfsq + big_r) + e * LN2_LO)) - f)


# --- elementwise kernels: one flat loop per op, selected outside the loop ---------

# Operation numbers of the flat elementwise kernels (internal; not the trace op codes).
_ADD, _SUB, _MUL, _DIV, _MAXIMUM, _MINIMUM, _LT, _LE, _EQ, _LDEXP = range(10)
_NEG, _ABS, _SQRT, _EXP, _LOG = range(5)


@njit(cache=True, nogil=True, error_model="numpy")
def _binary_flat(op: int, a: np.ndarray, b: np.ndarray, out: np.ndarray, cell: np.ndarray) -> None:
    n = out.size
    nan = cell[0]
    if op == _ADD:
        for i in range(n):
            out[i] = _canon(a[i] + b[i], nan)
    elif op == _SUB:
        for i in range(n):
            out[i] = _canon(a[i] - b[i], nan)
    elif op == _MUL:
        for i in range(n):
            out[i] = _canon(a[i] * b[i], nan)
    elif op == _DIV:
        for i in range(n):
            out[i] = _canon(a[i] / b[i], nan)
    elif op == _MAXIMUM:
        for i in range(n):
            out[i] = _max(a[i], b[i], nan)
    elif op == _MINIMUM:
        for i in range(n):
            out[i] = _min(a[i], b[i], nan)
    elif op == _LT:
        for i in range(n):
            out[i] = ONE if a[i] < b[i] else ZERO
    elif op == _LE:
        for i in range(n):
            out[i] = ONE if a[i] <= b[i] else ZERO
    elif op == _EQ:
        for i in range(n):
            out[i] = ONE if a[i] == b[i] else ZERO
    elif op == _LDEXP:
        for i in range(n):
            out[i] = _ldexp(a[i], b[i], nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _select_flat(
    c: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray, cell: np.ndarray
) -> None:
    nan = cell[0]
    for i in range(out.size):
        out[i] = _canon(a[i] if c[i] != ZERO else b[i], nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _unary_flat(op: int, x: np.ndarray, out: np.ndarray, cell: np.ndarray) -> None:
    n = out.size
    nan = cell[0]
    if op == _NEG:
        for i in range(n):
            out[i] = _canon(-x[i], nan)
    elif op == _ABS:
        for i in range(n):
            out[i] = _canon(abs(x[i]), nan)
    elif op == _SQRT:
        for i in range(n):
            out[i] = _canon(_sqrt_f32(x[i]), nan)
    elif op == _EXP:
        for i in range(n):
            out[i] = _exp(x[i], nan)
    elif op == _LOG:
        patterns = x.view(np.uint32)
        for i in range(n):
            out[i] = _log(x[i], patterns[i], nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _adam_flat(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    constants: np.ndarray,
    out: np.ndarray,
    cell: np.ndarray,
) -> None:
    # out rows: param, exp_avg, exp_avg_sq. The sequence of agents.exact.optim.adam_update,
    # one rounding per operation; NaN is made canonical on the stored results only
    # (no operation here looks at a NaN's payload).
    nan = cell[0]
    wd, w1, keep, beta2, w2, bc2_sqrt, eps, step_size = (
        constants[0],
        constants[1],
        constants[2],
        constants[3],
        constants[4],
        constants[5],
        constants[6],
        constants[7],
    )
    for i in range(param.size):
        p = param[i]
        g = grad[i]
        if wd != ZERO:
            g = g + p * wd
        diff = g - exp_avg[i]
        m = exp_avg[i] + diff * w1 if w1 < HALF else g - diff * keep
        v = exp_avg_sq[i] * beta2 + (g * w2) * g
        denom = _sqrt_f32(v) / bc2_sqrt + eps
        out[0, i] = _canon(p - (m / denom) * step_size, nan)
        out[1, i] = _canon(m, nan)
        out[2, i] = _canon(v, nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _sgd_flat(
    param: np.ndarray,
    grad: np.ndarray,
    buffer: np.ndarray,
    has_buffer: bool,
    constants: np.ndarray,
    out: np.ndarray,
    cell: np.ndarray,
) -> None:
    # out rows: param, momentum buffer (the sequence of agents.exact.optim.sgd_update).
    nan = cell[0]
    wd, momentum, lr = constants[0], constants[1], constants[2]
    for i in range(param.size):
        p = param[i]
        g = grad[i]
        if wd != ZERO:
            g = g + p * wd
        update = g
        if has_buffer:
            update = buffer[i] * momentum + g
            out[1, i] = _canon(update, nan)
        out[0, i] = _canon(p - update * lr, nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _layer_norm_flat(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    eps: F32,
    y: np.ndarray,
    xhat: np.ndarray,
    rstd: np.ndarray,
    cell: np.ndarray,
) -> None:
    # The sequence of layers.layer_norm_forward per row: sum (from +0, in order), / C,
    # subtract, square, sum, / C, + eps, sqrt, 1 / ., scale, * w, + b.
    nan = cell[0]
    rows, width = x.shape
    n = F32(width)
    for r in range(rows):
        total = ZERO
        for c in range(width):
            total = total + x[r, c]
        mean = total / n
        squares = ZERO
        for c in range(width):
            d = x[r, c] - mean
            squares = squares + d * d
        inverse = ONE / _sqrt_f32(squares / n + eps)
        rstd[r, 0] = _canon(inverse, nan)
        for c in range(width):
            h = (x[r, c] - mean) * inverse
            xhat[r, c] = _canon(h, nan)
            y[r, c] = _canon(h * weight[c] + bias[c], nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _layer_norm_backward_flat(
    dy: np.ndarray,
    xhat: np.ndarray,
    rstd: np.ndarray,
    weight: np.ndarray,
    dx: np.ndarray,
    dweight: np.ndarray,
    dbias: np.ndarray,
    cell: np.ndarray,
) -> None:
    # dweight = sum over rows of dy * xhat, dbias = sum over rows of dy (both from +0,
    # rows in order); per row g = dy * w, m1 = sum(g) / C, m2 = sum(g * xhat) / C,
    # dx = ((g - m1) - xhat * m2) * rstd.
    nan = cell[0]
    rows, width = dy.shape
    n = F32(width)
    for c in range(width):
        dweight[c] = ZERO
        dbias[c] = ZERO
    for r in range(rows):
        for c in range(width):
            dweight[c] = dweight[c] + dy[r, c] * xhat[r, c]
            dbias[c] = dbias[c] + dy[r, c]
        s1 = ZERO
        s2 = ZERO
        for c in range(width):
            g = dy[r, c] * weight[c]
            s1 = s1 + g
            s2 = s2 + g * xhat[r, c]
        m1 = s1 / n
        m2 = s2 / n
        for c in range(width):
            g = dy[r, c] * weight[c]
            dx[r, c] = _canon(((g - m1) - xhat[r, c] * m2) * rstd[r, 0], nan)
    for c in range(width):
        dweight[c] = _canon(dweight[c], nan)
        dbias[c] = _canon(dbias[c], nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _softmax_flat(x: np.ndarray, p: np.ndarray, cell: np.ndarray) -> None:
    # Per row: m = maximum over the row (from its first element), e = exp(x - m),
    # s = sum(e) from +0 in order, p = e / s.
    nan = cell[0]
    rows, width = x.shape
    for r in range(rows):
        m = x[r, 0]
        for c in range(1, width):
            m = _max(m, x[r, c], nan)
        total = ZERO
        for c in range(width):
            e = _exp(x[r, c] - m, nan)
            p[r, c] = e
            total = total + e
        for c in range(width):
            p[r, c] = _canon(p[r, c] / total, nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _softmax_backward_flat(p: np.ndarray, dp: np.ndarray, dx: np.ndarray, cell: np.ndarray) -> None:
    # Per row: inner = sum(dp * p) from +0 in order; dx = p * (dp - inner).
    nan = cell[0]
    rows, width = p.shape
    for r in range(rows):
        inner = ZERO
        for c in range(width):
            inner = inner + dp[r, c] * p[r, c]
        for c in range(width):
            dx[r, c] = _canon(p[r, c] * (dp[r, c] - inner), nan)


# Trace op codes of the elementwise ops an ``elementwise_chain`` step may be.
_C_ADD, _C_SUB, _C_MUL, _C_DIV = int(Op.ADD), int(Op.SUB), int(Op.MUL), int(Op.DIV)
_C_MAXIMUM, _C_MINIMUM = int(Op.MAXIMUM), int(Op.MINIMUM)
_C_LT, _C_LE, _C_EQ = int(Op.LT), int(Op.LE), int(Op.EQ)
_C_SELECT, _C_LDEXP = int(Op.SELECT), int(Op.LDEXP)
_C_NEG, _C_ABS, _C_SQRT, _C_EXP, _C_LOG = (
    int(Op.NEG),
    int(Op.ABS),
    int(Op.SQRT),
    int(Op.EXP),
    int(Op.LOG),
)


_C_SUM, _C_AMAX = int(Op.SUM), int(Op.AMAX)
# Kinds of chain registers: the full shape, one value per row ([..., 1]), one per column ([C]).
_FULL, _ROW, _COLUMN = 0, 1, 2


@njit(inline="always")
def _register(inputs: Any, out: np.ndarray, offsets: np.ndarray, ref: np.int64) -> Any:
    # Register ``ref``'s values (an immediate, ``ref < 0``, reads none: ``out`` stands in).
    if ref < 0:
        return out
    if ref < len(inputs):
        return inputs[ref]
    return out[offsets[ref - len(inputs)] : offsets[ref - len(inputs) + 1]]


@njit(inline="always")
def _spread(
    values: np.ndarray,
    ref: np.int64,
    kinds: np.ndarray,
    imms: np.ndarray,
    rows: int,
    cols: int,
    width: int,
    mixed: bool,
    scratch: np.ndarray,
) -> np.ndarray:
    # An operand as ``width`` values in step with the output: an array operand of the
    # output's kind as it is; an immediate, and in a full output (``mixed``) a row or
    # column register, broadcast into ``scratch`` (so that every inner loop reads arrays
    # by its induction variable alone, and vectorizes).
    if ref >= 0:
        kind = kinds[ref]
        if not mixed or kind == _FULL:
            return values
        for r in range(rows):
            for c in range(cols):
                scratch[r * cols + c] = values[r] if kind == _ROW else values[c]
        return scratch
    value = imms[-1 - ref]
    for i in range(width):
        scratch[i] = value
    return scratch


@njit(inline="always")
def _with_value(
    op: np.int64,
    x: np.ndarray,
    value: F32,
    swap: bool,
    o: np.ndarray,
    nan: F32,
) -> None:
    # o[i] = x[i] op value (value op x[i] with ``swap``): the step an elementwise chain would
    # run over ``value`` broadcast.
    if op == _C_ADD:
        if swap:
            for i in range(len(o)):
                o[i] = _canon(value + x[i], nan)
        else:
            for i in range(len(o)):
                o[i] = _canon(x[i] + value, nan)
    elif op == _C_SUB:
        if swap:
            for i in range(len(o)):
                o[i] = _canon(value - x[i], nan)
        else:
            for i in range(len(o)):
                o[i] = _canon(x[i] - value, nan)
    elif op == _C_MUL:
        if swap:
            for i in range(len(o)):
                o[i] = _canon(value * x[i], nan)
        else:
            for i in range(len(o)):
                o[i] = _canon(x[i] * value, nan)
    elif swap:
        for i in range(len(o)):
            o[i] = _canon(value / x[i], nan)
    else:
        for i in range(len(o)):
            o[i] = _canon(x[i] / value, nan)


@njit(inline="always")
def _elementwise_step(
    op: np.int64, x: np.ndarray, y: np.ndarray, z: np.ndarray, o: np.ndarray, nan: F32
) -> None:
    # o[i] = op(x[i], y[i], z[i]) for every i of ``o`` (operands as many as the op takes),
    # each value as the op's flat kernel above computes it.
    if op == _C_ADD:
        for i in range(len(o)):
            o[i] = _canon(x[i] + y[i], nan)
    elif op == _C_SUB:
        for i in range(len(o)):
            o[i] = _canon(x[i] - y[i], nan)
    elif op == _C_MUL:
        for i in range(len(o)):
            o[i] = _canon(x[i] * y[i], nan)
    elif op == _C_DIV:
        for i in range(len(o)):
            o[i] = _canon(x[i] / y[i], nan)
    elif op == _C_MAXIMUM:
        for i in range(len(o)):
            o[i] = _max(x[i], y[i], nan)
    elif op == _C_MINIMUM:
        for i in range(len(o)):
            o[i] = _min(x[i], y[i], nan)
    elif op == _C_LT:
        for i in range(len(o)):
            o[i] = ONE if x[i] < y[i] else ZERO
    elif op == _C_LE:
        for i in range(len(o)):
            o[i] = ONE if x[i] <= y[i] else ZERO
    elif op == _C_EQ:
        for i in range(len(o)):
            o[i] = ONE if x[i] == y[i] else ZERO
    elif op == _C_LDEXP:
        for i in range(len(o)):
            o[i] = _ldexp(x[i], y[i], nan)
    elif op == _C_SELECT:
        for i in range(len(o)):
            o[i] = _canon(y[i] if x[i] != ZERO else z[i], nan)
    elif op == _C_NEG:
        for i in range(len(o)):
            o[i] = _canon(-x[i], nan)
    elif op == _C_ABS:
        for i in range(len(o)):
            o[i] = _canon(abs(x[i]), nan)
    elif op == _C_SQRT:
        for i in range(len(o)):
            o[i] = _canon(_sqrt_f32(x[i]), nan)
    elif op == _C_EXP:
        for i in range(len(o)):
            o[i] = _exp(x[i], nan)
    elif op == _C_LOG:
        patterns = x.view(np.uint32)
        for i in range(len(o)):
            o[i] = _log(x[i], patterns[i], nan)


_AMAX_LANES = 16  # rows a chain's AMAX step reduces side by side


@njit(inline="always")
def _amax_rows(
    a: np.ndarray, rows: int, cols: int, o: np.ndarray, lanes: np.ndarray, nan: F32
) -> None:
    # o[r] = maximum over row r of a (rows x cols, cols >= 1) from its first value, in
    # order. A row's maximum is a chain of compares that each wait for the last: rows go
    # _AMAX_LANES at a time, copied column-major into ``lanes``, so that one vector step
    # takes each row's next value (every row still in its own order).
    tops = np.empty(_AMAX_LANES, dtype=np.float32)
    r0 = 0
    while r0 + _AMAX_LANES <= rows:
        for j in range(_AMAX_LANES):
            first = (r0 + j) * cols
            for i in range(cols):
                lanes[i * _AMAX_LANES + j] = a[first + i]
        for j in range(_AMAX_LANES):
            tops[j] = _canon(lanes[j], nan)
        for i in range(1, cols):
            at = i * _AMAX_LANES
            for j in range(_AMAX_LANES):
                tops[j] = _max(tops[j], lanes[at + j], nan)
        for j in range(_AMAX_LANES):
            o[r0 + j] = tops[j]
        r0 += _AMAX_LANES
    for r in range(r0, rows):
        first = r * cols
        last = _canon(a[first], nan)
        for i in range(1, cols):
            last = _max(last, a[first + i], nan)
        o[r] = last


@njit(cache=True, nogil=True, error_model="numpy")
def _chain_rows(
    code: np.ndarray,
    imms: np.ndarray,
    inputs: Any,
    kinds: np.ndarray,
    out: np.ndarray,
    rows: int,
    cols: int,
    cell: np.ndarray,
) -> None:
    # Step k: op code[k, 0] on the registers (or immediates) code[k, 1..3], written to
    # out[offsets[k] : offsets[k + 1]], the steps' outputs one after another. Registers are
    # ``rows`` x ``cols`` (full), ``rows`` (one per row) or ``cols`` (one per column)
    # values, by ``kinds``; an elementwise step runs row by row over the broadcast of its
    # operands, each op as its flat kernel above computes it; SUM and AMAX reduce a full
    # register's rows as the reduction kernels do.
    nan = cell[0]
    count = len(inputs)
    offsets = np.empty(code.shape[0] + 1, dtype=np.int64)
    offsets[0] = 0
    for k in range(code.shape[0]):
        kind = kinds[count + k]
        width = rows * cols if kind == _FULL else rows if kind == _ROW else cols
        offsets[k + 1] = offsets[k] + width
    room = max(rows * cols, rows, cols, 1)
    lanes = np.empty(_AMAX_LANES * max(cols, 1), dtype=np.float32)
    sa = np.empty(room, dtype=np.float32)
    sb = np.empty(room, dtype=np.float32)
    sc = np.empty(room, dtype=np.float32)
    for k in range(code.shape[0]):
        op = code[k, 0]
        ra, rb, rc = code[k, 1], code[k, 2], code[k, 3]
        a = _register(inputs, out, offsets, ra)
        b = _register(inputs, out, offsets, rb)
        c = _register(inputs, out, offsets, rc)
        start = offsets[k]
        if op == _C_SUM:
            for r in range(rows):
                first = r * cols
                total = ZERO
                for i in range(cols):
                    total = total + a[first + i]
                out[start + r] = _canon(total, nan)
            continue
        if op == _C_AMAX:
            _amax_rows(a, rows, cols, out[start : start + rows], lanes, nan)
            continue
        kind = kinds[count + k]
        # A full output with an operand of another kind goes row by row; any other step
        # in one pass over its whole output (its array operands all of its kind).
        mixed = kind == _FULL and (
            (ra >= 0 and kinds[ra] != _FULL)
            or (rb >= 0 and kinds[rb] != _FULL)
            or (rc >= 0 and kinds[rc] != _FULL)
        )
        width = rows * cols if kind == _FULL else rows if kind == _ROW else cols
        o = out[start : start + width]
        if op in (_C_ADD, _C_SUB, _C_MUL, _C_DIV):
            # An immediate and an array operand in step with the output: the immediate read
            # as the step goes, not broadcast first (the same values). A row register in a
            # full output is still broadcast: per row, loops as short as a row run slower.
            array_a = ra >= 0 and (not mixed or kinds[ra] == _FULL)
            array_b = rb >= 0 and (not mixed or kinds[rb] == _FULL)
            if (array_a and rb < 0) or (ra < 0 and array_b):
                swap = ra < 0
                _with_value(op, b if swap else a, imms[-1 - (ra if swap else rb)], swap, o, nan)
                continue
        x = _spread(a, ra, kinds, imms, rows, cols, width, mixed, sa)
        y = _spread(b, rb, kinds, imms, rows, cols, width, mixed, sb)
        z = _spread(c, rc, kinds, imms, rows, cols, width, mixed, sc)
        _elementwise_step(op, x, y, z, o, nan)


# Values per tile of an all-full chain: 64 KiB per register, so that the tiles of a dozen
# registers stay in a core's 2 MiB L2 cache. Measured on this 2-core machine: tiles of 1024
# to 4096 values (L1-sized) cost more in per-tile work than they save (the SiLU chain over
# [128, 256] took 38 µs instead of 20 µs a call), while 16384 is as fast as one pass per
# step on arrays that fit in L2 and faster on larger ones.
CHAIN_TILE = 16384


@njit(inline="always")
def _tile(
    places: np.ndarray,
    base: int,
    width: int,
    out: np.ndarray,
    total: int,
    t0: int,
    lo: int,
    n: int,
    ref: np.int64,
    imms: np.ndarray,
    scratch: np.ndarray,
) -> np.ndarray:
    # Register ``ref``'s values at the tile: an input's ``[t0, t0 + n)`` (the group's inputs
    # at the addresses from ``places[base]`` on), a step's output ``[lo, lo + n)`` of its row
    # (``total`` values each in the flat ``out``), an immediate's value ``n`` times in
    # ``scratch``.
    if ref < 0:
        value = imms[-1 - ref]
        for i in range(n):
            scratch[i] = value
        return scratch[:n]
    if ref < width:
        return carray(_f32_pointer(places[base + ref] + 4 * t0), (n,))
    at = (ref - width) * total + lo
    return out[at : at + n]


@njit(cache=True, nogil=True, error_model="numpy")
def _chain_tiles(
    code: np.ndarray,
    imms: np.ndarray,
    places: np.ndarray,
    sizes: np.ndarray,
    out: np.ndarray,
    total: int,
    cell: np.ndarray,
) -> None:
    # A chain whose registers are all full (``_chain_rows`` with every kind full) over groups
    # of flat float32 inputs given by address (group g's input j at ``places[g * width + j]``,
    # ``sizes[g]`` values each; addresses, not a tuple of arrays, since a tuple of the
    # hundreds of inputs of an optimizer update costs the dispatcher a type per array): out,
    # flat (a row of ``total`` values per step), holds step k's values of every group, one
    # group after another, in its row k. It goes tile by tile, every step over a tile of CHAIN_TILE
    # values and then the next tile, instead of a pass per step over the whole output: each
    # value still gets the same ops in the same order (every step is elementwise), while the
    # tile of each register the next steps read is still in cache. Scratch (an immediate
    # broadcast) is one tile, or the largest group where that is less.
    nan = cell[0]
    steps = code.shape[0]
    width = len(places) // max(len(sizes), 1)
    room = 1
    for g in range(len(sizes)):
        room = max(room, min(sizes[g], CHAIN_TILE))
    sa = np.empty(room, dtype=np.float32)
    sb = np.empty(room, dtype=np.float32)
    sc = np.empty(room, dtype=np.float32)
    start = 0
    for g in range(len(sizes)):
        base = g * width
        size = sizes[g]
        for t0 in range(0, size, CHAIN_TILE):
            n = min(CHAIN_TILE, size - t0)
            lo = start + t0
            for k in range(steps):
                op = code[k, 0]
                ra, rb, rc = code[k, 1], code[k, 2], code[k, 3]
                o = out[k * total + lo : k * total + lo + n]
                if op in (_C_ADD, _C_SUB, _C_MUL, _C_DIV) and (ra < 0) != (rb < 0):
                    # An immediate read as the step goes, as _chain_rows reads it.
                    swap = ra < 0
                    array, value = (rb, ra) if swap else (ra, rb)
                    x = _tile(places, base, width, out, total, t0, lo, n, array, imms, sa)
                    _with_value(op, x, imms[-1 - value], swap, o, nan)
                    continue
                x = _tile(places, base, width, out, total, t0, lo, n, ra, imms, sa)
                y = _tile(places, base, width, out, total, t0, lo, n, rb, imms, sb)
                z = _tile(places, base, width, out, total, t0, lo, n, rc, imms, sc)
                _elementwise_step(op, x, y, z, o, nan)
        start += size


# --- kernels with a serial and a parallel variant ------------------------------


def _twins(fn: Callable[..., Any]) -> tuple[Any, Any]:
    """A serial and a parallel (``prange``) compilation of one kernel, cached separately."""
    return (
        njit(cache=True, nogil=True, error_model="numpy")(fn),
        njit(cache=True, nogil=True, error_model="numpy", parallel=True)(parallel_clone(fn)),
    )


def _sum_kernel(x: np.ndarray, out: np.ndarray, cell: np.ndarray) -> None:
    nan = cell[0]
    outer, length, inner = x.shape
    for o in prange(outer):
        for i in range(inner):
            out[o, i] = ZERO
        for k in range(length):
            for i in range(inner):
                out[o, i] = out[o, i] + x[o, k, i]
        for i in range(inner):
            out[o, i] = _canon(out[o, i], nan)


def _amax_kernel(x: np.ndarray, out: np.ndarray, cell: np.ndarray) -> None:
    nan = cell[0]
    outer, length, inner = x.shape
    for o in prange(outer):
        for i in range(inner):
            out[o, i] = _canon(x[o, 0, i], nan)
        for k in range(1, length):
            for i in range(inner):
                out[o, i] = _max(out[o, i], x[o, k, i], nan)


def _matmul_kernel(
    a: np.ndarray, bt: np.ndarray, out: np.ndarray, rows: int, cols: int, cell: np.ndarray
) -> None:
    # a [B, M4, K] and bt [B, K, N16] are zero-padded to TILE_ROWS rows and 16 columns;
    # out [B, M4, N16]. Every block of TILE_ROWS rows goes through the register-tiled
    # microkernel, 32 (then 16) columns at a time; padded rows and columns are computed
    # and thrown away by the caller. Each kept entry is the sequential dot product.
    nan = cell[0]
    batch, padded_rows, depth = a.shape
    padded_cols = bt.shape[2]
    a_base = a.ctypes.data
    b_base = bt.ctypes.data
    c_base = out.ctypes.data
    blocks = padded_rows // TILE_ROWS
    for task in prange(batch * blocks):
        bi = task // blocks
        i0 = (task - bi * blocks) * TILE_ROWS
        a_row = a_base + ((bi * padded_rows + i0) * depth) * 4
        c_row = c_base + ((bi * padded_rows + i0) * padded_cols) * 4
        b_batch = b_base + (bi * depth * padded_cols) * 4
        stride = padded_cols * 4
        j = 0
        while j + 32 <= padded_cols:
            tile_4x32(a_row, depth * 4, b_batch + j * 4, stride, c_row + j * 4, stride, depth)
            j += 32
        if j < padded_cols:
            tile_4x16(a_row, depth * 4, b_batch + j * 4, stride, c_row + j * 4, stride, depth)
        for i in range(i0, min(i0 + TILE_ROWS, rows)):
            for jj in range(cols):
                out[bi, i, jj] = _canon(out[bi, i, jj], nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _transpose_last(x: np.ndarray, out: np.ndarray) -> None:
    # out[b, c, r] = x[b, r, c]. Eight rows of x at a time: eight sequential read streams
    # and contiguous 8-value writes. Columns of out past x's rows are zero (the padding
    # of matmul_nt's packed operand).
    batch, rows, cols = x.shape
    width = out.shape[2]
    for bi in range(batch):
        r0 = 0
        while r0 + 8 <= rows:
            for c in range(cols):
                for i in range(8):
                    out[bi, c, r0 + i] = x[bi, r0 + i, c]
            r0 += 8
        for r in range(r0, rows):
            for c in range(cols):
                out[bi, c, r] = x[bi, r, c]
        for c in range(cols):
            for r in range(rows, width):
                out[bi, c, r] = ZERO


_sum_serial, _sum_parallel = _twins(_sum_kernel)
_amax_serial, _amax_parallel = _twins(_amax_kernel)
_matmul_serial, _matmul_parallel = _twins(_matmul_kernel)


@njit(cache=True, nogil=True, error_model="numpy")
def _im2col_kernel(
    x: np.ndarray, out: np.ndarray, kernel: int, stride: int, padding: int, oh: int, ow: int
) -> None:
    batch, channels, height, width = x.shape
    for b in range(batch):
        for oy in range(oh):
            for ox in range(ow):
                row = (b * oh + oy) * ow + ox
                for c in range(channels):
                    for ky in range(kernel):
                        y = oy * stride - padding + ky
                        for kx in range(kernel):
                            xx = ox * stride - padding + kx
                            col = (c * kernel + ky) * kernel + kx
                            if 0 <= y < height and 0 <= xx < width:
                                out[row, col] = x[b, c, y, xx]
                            else:
                                out[row, col] = ZERO


@njit(cache=True, nogil=True, error_model="numpy")
def _col2im_kernel(
    cols: np.ndarray,
    out: np.ndarray,
    kernel: int,
    stride: int,
    padding: int,
    oh: int,
    ow: int,
    cell: np.ndarray,
) -> None:
    # (ky, kx) outermost: every pixel receives its contributions in increasing (ky, kx),
    # one rounded add each, starting from +0 (a pixel gets at most one per (ky, kx)).
    nan = cell[0]
    batch, channels, height, width = out.shape
    for b in range(batch):
        for c in range(channels):
            for y in range(height):
                for xx in range(width):
                    out[b, c, y, xx] = ZERO
            for ky in range(kernel):
                for kx in range(kernel):
                    col = (c * kernel + ky) * kernel + kx
                    for oy in range(oh):
                        y = oy * stride - padding + ky
                        if y < 0 or y >= height:
                            continue
                        for ox in range(ow):
                            xx = ox * stride - padding + kx
                            if 0 <= xx < width:
                                row = (b * oh + oy) * ow + ox
                                out[b, c, y, xx] = out[b, c, y, xx] + cols[row, col]
            for y in range(height):
                for xx in range(width):
                    out[b, c, y, xx] = _canon(out[b, c, y, xx], nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _scatter_add_kernel(
    src: np.ndarray, index: np.ndarray, out: np.ndarray, cell: np.ndarray
) -> None:
    nan = cell[0]
    positions, width = src.shape
    for v in range(out.shape[0]):
        for d in range(width):
            out[v, d] = ZERO
    for p in range(positions):
        v = index[p]
        for d in range(width):
            out[v, d] = out[v, d] + src[p, d]
    for v in range(out.shape[0]):
        for d in range(width):
            out[v, d] = _canon(out[v, d], nan)


@njit(cache=True, nogil=True, error_model="numpy")
def _causal_fill_kernel(x: np.ndarray, value: F32, out: np.ndarray, cell: np.ndarray) -> None:
    nan = cell[0]
    batch, rows, cols = x.shape
    for b in range(batch):
        for i in range(rows):
            for j in range(cols):
                out[b, i, j] = _canon(x[b, i, j], nan) if j <= i else value


def _three_axes(shape: Sequence[int], axis: int) -> tuple[int, int, int]:
    outer = math.prod(shape[:axis])
    inner = math.prod(shape[axis + 1 :])
    return outer, int(shape[axis]), inner


@njit(cache=True, nogil=True)
def _address_of(values: np.ndarray) -> int:
    return values.ctypes.data


@njit(cache=True)  # microseconds: keeps the GIL (no hand-over to a waiting thread)
def _words_at(places: np.ndarray, out: np.ndarray) -> None:
    # out[i] = the 64-bit word at address places[i].
    for i in range(places.size):
        out[i] = carray(word_pointer(places[i]), (1,))[0]


# Where a numpy array object holds the address of its first byte: numpy's C API reads it as
# ``PyArray_DATA``, the first field after the object header (``PyArrayObject_fields.data``).
_DATA_FIELD = object.__basicsize__


@functools.cache
def _data_field_holds_addresses() -> bool:
    """Whether the word at ``_DATA_FIELD`` in numpy array objects is their data address here
    (checked once on arrays, views at an offset, 0-d and empty ones against numpy's own
    ``__array_interface__``); else ``CpuKernels.addresses`` asks each array."""
    base = np.arange(64, dtype=np.float32)
    arrays: list[np.ndarray] = [
        base,
        base[8:],
        base[5:37].reshape(4, 8),
        base[3:4].reshape(()),
        base[:0],
        np.empty(0),
    ]
    places = np.array([id(a) + _DATA_FIELD for a in arrays], dtype=np.int64)
    out = np.zeros(len(arrays), dtype=np.int64)
    _words_at(places, out)
    return out.tolist() == [int(a.__array_interface__["data"][0]) for a in arrays]


# The fields that follow ``data`` in a numpy array object (``PyArrayObject_fields``), one
# word each: nd (an int), dimensions, strides, base, descr, flags (an int); and the header's
# type pointer, the word before ``data``.
_TYPE_FIELD = _DATA_FIELD - 8
_ND_FIELD = _DATA_FIELD + 8
_DIMS_FIELD = _DATA_FIELD + 16
_DESCR_FIELD = _DATA_FIELD + 40
_FLAGS_FIELD = _DATA_FIELD + 48
_LOW_INT = 0xFFFFFFFF  # an int field in the low half of its word (little-endian)
_C_CONTIGUOUS_FLAG = 0x1  # NPY_ARRAY_C_CONTIGUOUS


@njit(cache=True, inline="always")
def _word(place: int) -> int:
    return int(carray(word_pointer(place), (1,))[0])


@njit(cache=True, inline="always")
def _float32_fields(place: int, kind: int, descr: int, dims: np.ndarray, at: int) -> int:
    # Whether the object at ``place`` is of type ``kind`` (numpy.ndarray), its descr
    # ``descr`` (float32), C-contiguous, of the shape packed in ``dims`` from ``at`` (its
    # axis count, then its axes): where the next object's shape starts there, else -1. An
    # object of another type is read no further than its header.
    if _word(place + _TYPE_FIELD) != kind or _word(place + _DESCR_FIELD) != descr:
        return -1
    if _word(place + _FLAGS_FIELD) & _C_CONTIGUOUS_FLAG == 0:
        return -1
    rank = _word(place + _ND_FIELD) & _LOW_INT
    if at + rank >= dims.size or rank != dims[at]:
        return -1
    axes = _word(place + _DIMS_FIELD)
    for k in range(rank):
        if _word(axes + 8 * k) != dims[at + 1 + k]:
            return -1
    return at + 1 + rank


@njit(cache=True)  # microseconds: keeps the GIL (no hand-over to a waiting thread)
def _float32_table(
    places: np.ndarray, kind: int, descr: int, dims: np.ndarray, out: np.ndarray
) -> bool:
    # Whether each object at places[i] passes ``_float32_fields`` with the shapes packed
    # in ``dims`` (per object its axis count, then its axes); out[i] its data address.
    at = 0
    for i in range(places.size):
        at = _float32_fields(places[i], kind, descr, dims, at)
        if at < 0:
            return False
        out[i] = _word(places[i] + _DATA_FIELD)
    return at == dims.size


@njit(cache=True)  # microseconds: keeps the GIL (no hand-over to a waiting thread)
def _template_numbers(
    program: np.ndarray,
    ids: np.ndarray,
    known: np.ndarray,
    keep: np.ndarray,
    first: int,
    kind: int,
    descr: int,
    out: np.ndarray,
) -> bool:
    # ``Kernels.template_numbers`` in one pass, reading the checked objects as
    # ``_float32_table`` does (``_float32_fields``).
    size, distinct, hashed, arrays, count = (
        program[0],
        program[1],
        program[2],
        program[3],
        program[4],
    )
    if ids.size != size:
        return False
    classes = program[program[5] : program[5] + size]
    firsts = program[program[6] : program[6] + distinct]
    offsets = program[program[7] : program[7] + distinct]
    checked = program[program[8] : program[8] + count]
    dims = program[program[9] : program[9] + program[10]]
    leaders = np.empty(distinct, dtype=np.int64)
    for c in range(distinct):
        leaders[c] = ids[firsts[c]]
    for p in range(size):
        if ids[p] != leaders[classes[p]]:
            return False
    order = np.argsort(leaders)
    for i in range(1, distinct):
        if leaders[order[i]] == leaders[order[i - 1]]:
            return False
    known_order = np.argsort(known[0])
    known_ids = known[0][known_order]
    numbers = np.empty(distinct, dtype=np.int64)
    for c in range(distinct):
        j = np.searchsorted(known_ids, leaders[c])
        found = j < known_ids.size and known_ids[j] == leaders[c]
        if found == (offsets[c] >= 0):
            return False
        numbers[c] = known[1][known_order[j]] if found else first + offsets[c]
    for p in range(size):
        out[p] = numbers[classes[p]]
    at = 0
    for i in range(count):
        place = ids[checked[i]]
        at = _float32_fields(place, kind, descr, dims, at)
        if at < 0:
            return False
        out[size + i] = _word(place + _DATA_FIELD)
    if at != dims.size:
        return False
    for i in range(arrays - hashed):
        if out[size + hashed + i] != out[size + arrays + i]:
            return False  # a view no longer over its input's bytes
    sorted_leaders = leaders[order]
    for i in range(keep.size):
        value = -1
        j = np.searchsorted(sorted_leaders, keep[i])
        if j < distinct and sorted_leaders[j] == keep[i]:
            value = numbers[order[j]]
        else:
            j = np.searchsorted(known_ids, keep[i])
            if j < known_ids.size and known_ids[j] == keep[i]:
                value = known[1][known_order[j]]
        out[size + count + i] = value
    return True


@functools.cache
def _fields_hold_arrays() -> bool:
    """Whether ``_float32_table`` reads numpy array objects right here: its verdict and
    addresses checked once, on arrays of every kind it must tell apart, against numpy's
    own attributes; else ``CpuKernels.float32_addresses`` asks each array."""
    if not _data_field_holds_addresses() or np.ndarray.__basicsize__ < _FLAGS_FIELD + 8:
        return False
    base = np.arange(64, dtype=np.float32)
    arrays: list[np.ndarray] = [
        base,
        base[8:],
        base[5:37].reshape(4, 8),
        base[3:4].reshape(()),
        base[:0],
        base.reshape(4, 16).T,
        base[::2],
        base.reshape(2, 4, 8)[:, :, :1],
        np.empty(0),
        np.arange(64, dtype=np.float64).reshape(8, 8),
        base.astype(">f4"),
        np.zeros((3, 1, 5, 2, 1, 4, 7), dtype=np.float32),
    ]
    kind, descr = id(np.ndarray), id(np.dtype(np.float32))
    out = np.zeros(1, dtype=np.int64)
    for values in arrays:
        want = values.dtype is np.dtype(np.float32) and bool(values.flags.c_contiguous)
        dims = np.array([values.ndim, *values.shape], dtype=np.int64)
        places = np.array([id(values)], dtype=np.int64)
        if _float32_table(places, kind, descr, dims, out) != want:
            return False
        if want and int(out[0]) != int(values.__array_interface__["data"][0]):
            return False
        other = np.array([values.ndim, *[d + 1 for d in values.shape]], dtype=np.int64)
        if values.ndim and _float32_table(places, kind, descr, other, out):
            return False
    return True


_NDARRAY = id(np.ndarray)
_FLOAT32_DESCR = id(np.dtype(np.float32))

_SWAPPED_KEEP = 16  # a few layers' worth: each entry keeps two arrays alive


class RecentSwaps:
    """The last ``keep`` results of a last-two-axes transpose with their sources, the oldest
    dropped first: matmul_nt, which needs its second operand transposed, takes the source
    itself instead of transposing twice. Threads that share one kernels object (a verifier
    replays segments in parallel) remember theirs at once: eviction walks the entries, so it
    runs under a lock; a lookup is one dict read."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._entries: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, swapped: np.ndarray, source: np.ndarray) -> None:
        with self._lock:
            while len(self._entries) >= self._keep:
                del self._entries[next(iter(self._entries))]
            self._entries[id(swapped)] = (swapped, source)

    def source_of(self, swapped: np.ndarray) -> np.ndarray | None:
        """The source ``swapped`` was transposed from, if it is still remembered."""
        known = self._entries.get(id(swapped))
        return known[1] if known is not None and known[0] is swapped else None


class CpuKernels(Kernels):
    """The exact operations on C-contiguous float32 numpy arrays, compiled by numba."""

    name = "cpu"

    def __init__(self, threads: int | None = None) -> None:
        # ``threads``: numba threads of the parallel kernels (None: numba's default, every
        # core). With one thread every kernel runs serially on the calling thread and the
        # pool is never woken (a one-thread launch still hands the work to a pool thread).
        self._threads = threads
        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
        self._pool = (threads or most) > 1
        if threads is not None:
            numba.set_num_threads(threads)
        self._swapped = RecentSwaps(_SWAPPED_KEEP)

    def _set_threads(self) -> None:
        # numba's thread count belongs to the calling thread: a session may run in
        # another thread than the one that made these kernels.
        if self._threads is not None:
            numba.set_num_threads(self._threads)

    # arrays in and out
    def address(self, values: np.ndarray) -> int:
        # A compiled call: a quarter of the time of reading numpy's __array_interface__.
        return int(_address_of(values))

    def addresses(self, arrays: Sequence[np.ndarray]) -> list[int]:
        # One compiled call reads each array object's data address (``_DATA_FIELD``).
        places: list[int] = self._places(arrays).tolist()
        return places

    def float32_addresses(
        self, arrays: Sequence[Any], shapes: Sequence[tuple[int, ...]], dims: np.ndarray
    ) -> list[int] | None:
        # One compiled call reads each object's type, dtype, flags, shape and data address.
        if not _fields_hold_arrays():
            return super().float32_addresses(arrays, shapes, dims)
        places = np.fromiter(map(id, arrays), dtype=np.int64, count=len(arrays))
        out = np.empty(len(arrays), dtype=np.int64)
        if not _float32_table(places, _NDARRAY, _FLOAT32_DESCR, dims, out):
            return None
        return out.tolist()

    def template_numbers(
        self,
        program: np.ndarray,
        registers: Sequence[Any],
        ids: np.ndarray,
        known: np.ndarray,
        keep: np.ndarray,
        first: int,
    ) -> np.ndarray | None:
        # One compiled call checks the template and numbers the step.
        if not _fields_hold_arrays():
            return super().template_numbers(program, registers, ids, known, keep, first)
        out = np.empty(len(ids) + int(program[4]) + len(keep), dtype=np.int64)
        if not _template_numbers(program, ids, known, keep, first, _NDARRAY, _FLOAT32_DESCR, out):
            return None
        return out

    # np.ascontiguousarray makes 0-d arrays 1-d: reshape keeps the shape (the step counter).
    def from_numpy(self, values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=np.float32).reshape(np.shape(values))

    def to_numpy(self, values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=np.float32).reshape(np.shape(values))

    def full(self, shape: Sequence[int], value: np.float32) -> np.ndarray:
        return np.full(tuple(shape), F32(value), dtype=np.float32)

    # elementwise: operands are broadcast (materialized) to the result's shape first
    def _flat(self, value: Operand, shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(value, np.ndarray) and value.shape == shape:
            return value.reshape(-1)
        full = np.empty(shape, dtype=np.float32)
        full[...] = value
        return full.reshape(-1)

    def _binary(self, op: int, a: Operand, b: Operand) -> np.ndarray:
        shape = broadcast_shape(np.shape(a), np.shape(b))
        out = np.empty(shape, dtype=np.float32)
        _binary_flat(op, self._flat(a, shape), self._flat(b, shape), out.reshape(-1), _NAN_CELL)
        return out

    def add(self, a: Operand, b: Operand) -> np.ndarray:
        return self._binary(_ADD, a, b)

    def sub(self, a: Operand, b: Operand) -> np.ndarray:
        return self._binary(_SUB, a, b)

    def mul(self, a: Operand, b: Operand) -> np.ndarray:
        return self._binary(_MUL, a, b)

    def div(self, a: Operand, b: Operand) -> np.ndarray:
        return self._binary(_DIV, a, b)

    def maximum(self, a: Operand, b: Operand) -> np.ndarray:
        return self._binary(_MAXIMUM, a, b)

    def minimum(self, a: Operand, b: Operand) -> np.ndarray:
        return self._binary(_MINIMUM, a, b)

    def lt(self, a: Operand, b: Operand) -> np.ndarray:
        return self._binary(_LT, a, b)

    def le(self, a: Operand, b: Operand) -> np.ndarray:
        return self._binary(_LE, a, b)

    def eq(self, a: Operand, b: Operand) -> np.ndarray:
        return self._binary(_EQ, a, b)

    def ldexp(self, x: Operand, n: Operand) -> np.ndarray:
        return self._binary(_LDEXP, x, n)

    def select(self, cond: Operand, a: Operand, b: Operand) -> np.ndarray:
        shape = broadcast_shape(broadcast_shape(np.shape(cond), np.shape(a)), np.shape(b))
        out = np.empty(shape, dtype=np.float32)
        c, x, y = (self._flat(v, shape) for v in (cond, a, b))
        _select_flat(c, x, y, out.reshape(-1), _NAN_CELL)
        return out

    def _unary(self, op: int, x: np.ndarray) -> np.ndarray:
        out = np.empty(np.shape(x), dtype=np.float32)
        flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
        _unary_flat(op, flat, out.reshape(-1), _NAN_CELL)
        return out

    def neg(self, x: np.ndarray) -> np.ndarray:
        return self._unary(_NEG, x)

    def abs(self, x: np.ndarray) -> np.ndarray:
        return self._unary(_ABS, x)

    def sqrt(self, x: np.ndarray) -> np.ndarray:
        return self._unary(_SQRT, x)

    def exp(self, x: np.ndarray) -> np.ndarray:
        return self._unary(_EXP, x)

    def log(self, x: np.ndarray) -> np.ndarray:
        return self._unary(_LOG, x)

    # reductions and products
    def _reduce(self, serial: Any, parallel: Any, x: np.ndarray, axis: int) -> np.ndarray:
        outer, length, inner = _three_axes(x.shape, axis)
        x3 = np.ascontiguousarray(x).reshape(outer, length, inner)
        if inner == 1 and outer > 1:
            # Along the last axis: reduce the transposed rows instead, so the kernel's
            # inner loop runs across rows (vectorized) while each row still goes in order.
            x3 = np.ascontiguousarray(x3.reshape(outer, length).T).reshape(1, length, outer)
            outer, inner = 1, outer
        out = np.empty((outer, inner), dtype=np.float32)
        if self._pool and x.size >= PARALLEL_MIN_WORK and outer > 1:
            with LAUNCH_LOCK:
                self._set_threads()
                parallel(x3, out, _NAN_CELL)
        else:
            serial(x3, out, _NAN_CELL)
        shape = list(x.shape)
        shape[axis] = 1
        return out.reshape(shape)

    # fused sequences (see Kernels)
    def fused_layer_norm(
        self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: np.float32
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x2 = np.ascontiguousarray(x)
        y, xhat = np.empty_like(x2), np.empty_like(x2)
        rstd = np.empty((x2.shape[0], 1), dtype=np.float32)
        _layer_norm_flat(x2, weight, bias, F32(eps), y, xhat, rstd, _NAN_CELL)
        return y, xhat, rstd

    def fused_layer_norm_backward(
        self, dy: np.ndarray, xhat: np.ndarray, rstd: np.ndarray, weight: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dx = np.empty_like(xhat)
        dweight = np.empty(xhat.shape[1], dtype=np.float32)
        dbias = np.empty(xhat.shape[1], dtype=np.float32)
        _layer_norm_backward_flat(
            np.ascontiguousarray(dy), xhat, rstd, weight, dx, dweight, dbias, _NAN_CELL
        )
        return dx, dweight, dbias

    def fused_softmax(self, x: np.ndarray) -> np.ndarray:
        x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
        p = np.empty_like(x2)
        _softmax_flat(x2, p, _NAN_CELL)
        return p.reshape(x.shape)

    def fused_softmax_backward(self, p: np.ndarray, dp: np.ndarray) -> np.ndarray:
        p2 = np.ascontiguousarray(p).reshape(-1, p.shape[-1])
        dx = np.empty_like(p2)
        _softmax_backward_flat(p2, np.ascontiguousarray(dp).reshape(p2.shape), dx, _NAN_CELL)
        return dx.reshape(p.shape)

    def fused_adam(
        self,
        param: np.ndarray,
        grad: np.ndarray,
        exp_avg: np.ndarray,
        exp_avg_sq: np.ndarray,
        constants: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = np.empty((3, param.size), dtype=np.float32)
        p, g, m, v = (
            np.ascontiguousarray(t).reshape(-1) for t in (param, grad, exp_avg, exp_avg_sq)
        )
        _adam_flat(p, g, m, v, constants, out, _NAN_CELL)
        shape = param.shape
        return out[0].reshape(shape), out[1].reshape(shape), out[2].reshape(shape)

    def fused_sgd(
        self,
        param: np.ndarray,
        grad: np.ndarray,
        momentum_buffer: np.ndarray | None,
        constants: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        out = np.empty((2, param.size), dtype=np.float32)
        buffer = momentum_buffer if momentum_buffer is not None else param
        flat = [np.ascontiguousarray(v).reshape(-1) for v in (param, grad, buffer)]
        _sgd_flat(flat[0], flat[1], flat[2], momentum_buffer is not None, constants, out, _NAN_CELL)
        new_buffer = out[1].reshape(param.shape) if momentum_buffer is not None else None
        return out[0].reshape(param.shape), new_buffer

    def elementwise_chain(
        self,
        code: np.ndarray,
        imms: np.ndarray,
        inputs: Sequence[np.ndarray],
        kinds: np.ndarray | None = None,
        sizes: Sequence[int] = (),
        rows: int = 1,
        cols: int = 0,
    ) -> np.ndarray:
        # The kernel lays the steps' outputs out by their kinds itself: nothing but the
        # output is made here per call (small numpy calls cost microseconds each).
        flat = tuple([np.ascontiguousarray(v, dtype=np.float32).reshape(-1) for v in inputs])
        if kinds is None:  # every register full: one row of every value, tile by tile
            size = flat[0].size
            out = np.empty((len(code), size), dtype=np.float32)
            one = np.array([size], dtype=np.int64)  # one group
            # A chain's few inputs: one compiled call each costs less than _places' arrays.
            places = np.fromiter(map(self.address, flat), dtype=np.int64, count=len(flat))
            _chain_tiles(code, imms, places, one, out.reshape(-1), size, _NAN_CELL)
            return out
        values = np.empty(sum(sizes), dtype=np.float32)
        _chain_rows(code, imms, flat, kinds, values, rows, cols, _NAN_CELL)
        return values

    def elementwise_chains(
        self, code: np.ndarray, imms: np.ndarray, groups: Sequence[Sequence[np.ndarray]]
    ) -> np.ndarray:
        # The kernel reads every group's inputs where they are (not laid end to end first),
        # by address: a group after another.
        flat = [np.ascontiguousarray(v, dtype=np.float32) for group in groups for v in group]
        sizes = np.array([group[0].size for group in groups], dtype=np.int64)
        total = int(sizes.sum())
        out = np.empty((len(code), total), dtype=np.float32)
        _chain_tiles(code, imms, self._places(flat), sizes, out.reshape(-1), total, _NAN_CELL)
        return out

    def _places(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """The data addresses of ``arrays`` (alive while they are used) as int64, read as
        ``addresses`` reads them."""
        if not _data_field_holds_addresses():
            return np.array(super().addresses(arrays), dtype=np.int64)
        places = np.fromiter(map(id, arrays), dtype=np.int64, count=len(arrays))
        places += _DATA_FIELD
        out = np.empty(len(arrays), dtype=np.int64)
        _words_at(places, out)
        return out

    def sum(self, x: np.ndarray, axis: int) -> np.ndarray:
        return self._reduce(_sum_serial, _sum_parallel, x, axis)

    def amax(self, x: np.ndarray, axis: int) -> np.ndarray:
        return self._reduce(_amax_serial, _amax_parallel, x, axis)

    def matmul_nt(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        lead = a.shape[:-2]
        rows, depth = a.shape[-2:]
        cols = b.shape[-2]
        if cols < 16 <= rows:
            # Few columns waste most of a vector tile: C^T = matmul_nt(B, A) holds the same
            # dot products, each in the same k order, so compute it and transpose back.
            return self.transpose(self.matmul_nt(b, a), [*range(len(lead)), -1, -2])
        batch = math.prod(lead)
        padded_rows = -(-rows // TILE_ROWS) * TILE_ROWS
        padded_cols = -(-cols // 16) * 16
        a3 = np.ascontiguousarray(a).reshape(batch, rows, depth)
        if padded_rows != rows:
            grown = np.zeros((batch, padded_rows, depth), dtype=np.float32)
            grown[:, :rows] = a3
            a3 = grown
        source = self._swapped.source_of(b)
        if source is not None and padded_cols == cols:
            bt = source.reshape(batch, depth, cols)
        else:
            bt = np.empty((batch, depth, padded_cols), dtype=np.float32)
            _transpose_last(np.ascontiguousarray(b).reshape(batch, cols, depth), bt)
        out = np.empty((batch, padded_rows, padded_cols), dtype=np.float32)
        work = batch * padded_rows * padded_cols * max(depth, 1)
        if self._pool and work >= PARALLEL_MIN_WORK and batch * padded_rows > TILE_ROWS:
            with LAUNCH_LOCK:
                self._set_threads()
                _matmul_parallel(a3, bt, out, rows, cols, _NAN_CELL)
        else:
            _matmul_serial(a3, bt, out, rows, cols, _NAN_CELL)
        if padded_rows != rows or padded_cols != cols:
            out = np.ascontiguousarray(out[:, :rows, :cols])
        return out.reshape((*lead, rows, cols))

    # data movement
    def transpose(self, x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
        order = [p % x.ndim for p in perm]
        lead = list(range(x.ndim - 2))
        if x.ndim >= 2 and order == [*lead, x.ndim - 1, x.ndim - 2] and x.size:
            rows, cols = x.shape[-2:]
            batch = math.prod(x.shape[:-2])
            out = np.empty((batch, cols, rows), dtype=np.float32)
            source = np.ascontiguousarray(x)
            _transpose_last(source.reshape(batch, rows, cols), out)
            result = out.reshape((*x.shape[:-2], cols, rows))
            self._swapped.remember(result, source)
            return result
        return np.ascontiguousarray(np.transpose(x, tuple(order)))

    def reshape(self, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        return np.ascontiguousarray(x).reshape(tuple(shape))

    def index_select(self, x: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
        return np.ascontiguousarray(np.take(x, index.astype(np.int64), axis=axis))

    def take_along(self, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.take_along_axis(x, index.astype(np.int64), axis=-1))

    def one_hot(self, index: np.ndarray, classes: int) -> np.ndarray:
        hot = index.astype(np.int64)[..., None] == np.arange(classes, dtype=np.int64)
        return np.asarray(hot, dtype=np.float32)

    def causal_fill(self, x: np.ndarray, value: np.float32) -> np.ndarray:
        rows, cols = x.shape[-2:]
        x3 = np.ascontiguousarray(x).reshape(-1, rows, cols)
        out = np.empty_like(x3)
        _causal_fill_kernel(x3, F32(value), out, _NAN_CELL)
        return out.reshape(x.shape)

    def im2col(self, x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
        batch, channels, height, width = x.shape
        oh = (height + 2 * padding - kernel) // stride + 1
        ow = (width + 2 * padding - kernel) // stride + 1
        out = np.empty((batch * oh * ow, channels * kernel * kernel), dtype=np.float32)
        _im2col_kernel(np.ascontiguousarray(x), out, kernel, stride, padding, oh, ow)
        return out

    def col2im(
        self, cols: np.ndarray, shape: Sequence[int], kernel: int, stride: int, padding: int
    ) -> np.ndarray:
        batch, channels, height, width = (int(d) for d in shape)
        oh = (height + 2 * padding - kernel) // stride + 1
        ow = (width + 2 * padding - kernel) // stride + 1
        out = np.empty((batch, channels, height, width), dtype=np.float32)
        _col2im_kernel(np.ascontiguousarray(cols), out, kernel, stride, padding, oh, ow, _NAN_CELL)
        return out

    def scatter_add(self, src: np.ndarray, index: np.ndarray, rows: int) -> np.ndarray:
        out = np.empty((rows, src.shape[1]), dtype=np.float32)
        _scatter_add_kernel(np.ascontiguousarray(src), index.astype(np.int64), out, _NAN_CELL)
        return out
