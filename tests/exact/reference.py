"""Reference implementations for the differential tests: numpy float32 ufuncs
(IEEE hardware, one rounding each) and plain loops in the defined order.

They are written independently of the kernels (numpy's own arithmetic, sign
bits instead of tricks), so agreement is evidence, not tautology.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from agents.exact.float32 import CANONICAL_NAN

F32 = np.float32


def canon(values: np.ndarray) -> np.ndarray:
    out = np.array(values, dtype=np.float32, copy=True)
    out[np.isnan(out)] = CANONICAL_NAN
    return out


def _ieee(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def run(*args: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return canon(fn(*args))

    return run


add = _ieee(lambda a, b: np.add(a, b, dtype=np.float32))
sub = _ieee(lambda a, b: np.subtract(a, b, dtype=np.float32))
mul = _ieee(lambda a, b: np.multiply(a, b, dtype=np.float32))
div = _ieee(lambda a, b: np.divide(a, b, dtype=np.float32))
sqrt = _ieee(lambda x: np.sqrt(x, dtype=np.float32))
neg = _ieee(np.negative)
abs_ = _ieee(np.abs)


def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.broadcast_arrays(a, b)
    out = np.where(a > b, a, b)
    zeros = (a == 0) & (b == 0)
    out = np.where(zeros, np.where(np.signbit(a) & np.signbit(b), F32(-0.0), F32(0.0)), out)
    return canon(np.where(np.isnan(a) | np.isnan(b), np.nan, out).astype(np.float32))


def minimum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.broadcast_arrays(a, b)
    out = np.where(a < b, a, b)
    zeros = (a == 0) & (b == 0)
    out = np.where(zeros, np.where(np.signbit(a) | np.signbit(b), F32(-0.0), F32(0.0)), out)
    return canon(np.where(np.isnan(a) | np.isnan(b), np.nan, out).astype(np.float32))


def lt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.less(a, b).astype(np.float32)
    return out


def le(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.less_equal(a, b).astype(np.float32)
    return out


def eq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.equal(a, b).astype(np.float32)
    return out


def select(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return canon(np.where(c != 0, a, b).astype(np.float32))


def ldexp(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    x, n = np.broadcast_arrays(np.asarray(x, np.float32), np.asarray(n, np.float32))
    with np.errstate(all="ignore"):
        clamped = np.clip(n, -300, 300)
        whole = np.isfinite(clamped) & (np.floor(clamped) == clamped)
        exps = np.where(whole, clamped, 0).astype(np.int64)
        out = np.ldexp(x.astype(np.float64), exps).astype(np.float32)
    return canon(np.where(whole & ~np.isnan(x), out, np.nan).astype(np.float32))


def sum_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """acc = +0.0; for k in increasing order: acc = acc + x[k] (one float32 rounding each)."""
    moved = np.moveaxis(np.asarray(x, np.float32), axis, 0)
    acc = np.zeros(moved.shape[1:], dtype=np.float32)
    with np.errstate(all="ignore"):
        for k in range(moved.shape[0]):
            acc = np.add(acc, moved[k], dtype=np.float32)
    return np.expand_dims(canon(acc), axis)


def amax_axis(x: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(np.asarray(x, np.float32), axis, 0)
    acc = canon(moved[0])
    for k in range(1, moved.shape[0]):
        acc = maximum(acc, moved[k])
    return np.expand_dims(acc, axis)


def matmul_nt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C[..., i, j] = sequential sum over k of (A[..., i, k] * B[..., j, k])."""
    acc = np.zeros((*a.shape[:-1], b.shape[-2]), dtype=np.float32)
    with np.errstate(all="ignore"):
        for k in range(a.shape[-1]):
            product = np.multiply(a[..., :, k, None], b[..., None, :, k], dtype=np.float32)
            acc = np.add(acc, product, dtype=np.float32)
    return canon(acc)


def dot_scalar(a: np.ndarray, b: np.ndarray) -> np.float32:
    """One dot product, element by element in Python with numpy float32 scalars."""
    acc = F32(0.0)
    with np.errstate(all="ignore"):
        for x, y in zip(a, b, strict=True):
            acc = F32(acc + F32(x * y))
    return acc
