"""Running partial results of the reducing ops, as the pinpoint game bisects them.

A reduction computes each output element as a sequence of ``K`` terms (docs/exact.md):
``P(0)`` is the op's initial accumulator, ``P(m)`` is ``P(m − 1)`` combined with term
``m − 1``, and ``P(K)`` is the element. The game bisects the ``P(m)`` of a disputed
element (docs/dispute.md, "Terms") until the one step can compute a stretch of them.

- ``sum(x, axis)``: ``K = x.shape[axis]``, ``P(0) = +0``, term ``m`` adds ``x[.., m, ..]``;
- ``amax(x, axis)``: the same terms combined by ``maximum`` from ``P(0) = −inf``;
- ``matmul_nt(A, B)``: ``K = A.shape[-1]``, ``P(0) = +0``, term ``m`` adds
  ``A[.., i, m] · B[.., j, m]``;
- ``col2im(cols)``: ``K = kernel²``, ``P(0) = +0``, term ``m = ky·kernel + kx`` adds the
  patch entry ``(ky, kx)`` that lands on the pixel, or nothing if none does;
- ``scatter_add(src, index)``: ``K = src.shape[0]``, ``P(0) = +0``, term ``m`` adds
  ``src[m, d]`` when ``index[m]`` is the row, else nothing.

Every other op has ``K = 0``. A partial result that is NaN is the canonical NaN
``0x7FC00000`` (as every op output is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from agents.arbiter.elements import REDUCTIONS, op_terms
from agents.dispute.errors import TraceError
from agents.exact.trace import Attribute, Op

F32 = np.float32
CANONICAL_NAN = np.uint32(0x7FC00000).view(np.float32)


def term_count(
    op: Op, attributes: Sequence[Attribute], input_shapes: Sequence[Sequence[int]]
) -> int:
    """``K``: the terms of each output element of an op (0 for an op that reduces nothing),
    as the one step counts them."""
    return int(op_terms(op, attributes, input_shapes))


def _canonical(value: np.float32) -> np.float32:
    return CANONICAL_NAN if np.isnan(value) else F32(value)


def _maximum(a: np.float32, b: np.float32) -> np.float32:
    if np.isnan(a) or np.isnan(b):
        return CANONICAL_NAN
    if a == b == 0:
        return F32(0.0) if not (np.signbit(a) and np.signbit(b)) else F32(-0.0)
    return a if a > b else b


def _add(a: np.float32, b: np.float32) -> np.float32:
    return F32(a + b)


Combine = Callable[[np.float32, np.float32], np.float32]


def _terms(
    op: Op,
    attributes: Sequence[Attribute],
    inputs: Sequence[np.ndarray],
    output_shape: Sequence[int],
    element: int,
) -> tuple[np.float32, list[np.float32 | None], Combine]:
    """The initial accumulator, the terms (``None``: a term that leaves P as it is) and how
    a term is combined, for output element ``element``."""
    if op not in REDUCTIONS:
        raise TraceError(f"{op.name.lower()} reduces nothing: it has no partial results")
    position = np.unravel_index(element, tuple(int(d) for d in output_shape))
    if op in (Op.SUM, Op.AMAX):
        axis = int(attributes[0])
        index: list[int | slice] = [int(p) for p in position]
        index[axis] = slice(None)
        values = np.asarray(inputs[0][tuple(index)], dtype=F32).reshape(-1)
        if op == Op.SUM:
            return F32(0.0), [F32(v) for v in values], _add
        return F32(-np.inf), [F32(v) for v in values], _maximum
    if op == Op.MATMUL_NT:
        a, b = inputs
        *lead, i, j = (int(p) for p in position)
        products = (a[(*lead, i)].astype(F32) * b[(*lead, j)].astype(F32)).astype(F32)
        return F32(0.0), [F32(v) for v in products], _add
    if op == Op.COL2IM:
        kernel, stride, padding, _batch, _channels, height, width = (int(v) for v in attributes)
        cols = inputs[0]
        bb, c, y, x = (int(p) for p in position)
        oh = (height + 2 * padding - kernel) // stride + 1
        ow = (width + 2 * padding - kernel) // stride + 1
        terms: list[np.float32 | None] = []
        for m in range(kernel * kernel):
            ky, kx = divmod(m, kernel)
            oy, ry = divmod(y + padding - ky, stride)
            ox, rx = divmod(x + padding - kx, stride)
            if ry == 0 and rx == 0 and 0 <= oy < oh and 0 <= ox < ow:
                row = (bb * oh + oy) * ow + ox
                terms.append(F32(cols[row, (c * kernel + ky) * kernel + kx]))
            else:
                terms.append(None)
        return F32(0.0), terms, _add
    src, targets = inputs
    v, d = (int(p) for p in position)
    chosen = np.asarray(targets).reshape(-1) == v
    return F32(0.0), [F32(src[m, d]) if chosen[m] else None for m in range(len(chosen))], _add


def _fold(
    acc: np.float32, terms: Sequence[np.float32 | None], combine: Combine
) -> list[np.float32]:
    out = [_canonical(acc)]
    for term in terms:
        acc = acc if term is None else combine(acc, term)
        out.append(_canonical(acc))
    return out


def partial_results(
    op: Op,
    attributes: Sequence[Attribute],
    inputs: Sequence[np.ndarray],
    output_shape: Sequence[int],
    element: int,
) -> np.ndarray:
    """``P(0) … P(K)`` of output element ``element`` (flat, row-major): ``K + 1`` float32 values."""
    initial, terms, combine = _terms(op, attributes, inputs, output_shape, element)
    return np.array(_fold(initial, terms, combine), dtype=F32)


def continue_partials(
    op: Op,
    attributes: Sequence[Attribute],
    inputs: Sequence[np.ndarray],
    output_shape: Sequence[int],
    element: int,
    lo: int,
    hi: int,
    acc_lo: int,
) -> int:
    """The bits of ``P(hi)`` from ``P(lo)`` = ``acc_lo`` (the op's initial value when ``lo`` is 0):
    what the one step computes for a stretch of terms."""
    initial, terms, combine = _terms(op, attributes, inputs, output_shape, element)
    start = initial if lo == 0 else np.uint32(acc_lo).view(np.float32)
    return int(_fold(start, terms[lo:hi], combine)[-1].view(np.uint32))


def partials_at(values: np.ndarray, points: Sequence[int]) -> list[int]:
    """The bit patterns of ``values`` (``P(0) … P(K)``) at ``points``."""
    return [int(values[p : p + 1].view(np.uint32)[0]) for p in points]
