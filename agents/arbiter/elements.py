"""One output element of a trace op: its terms, the input values it reads, its partial results.

The mirror of the one-step contracts (``contracts/arbiter/*Adjudicator.sol``): a one step
reads exactly the input positions ``reads`` names, and a reduction element is the fold of
its terms in the kernels' order, whose running values ``partial`` computes
(docs/arbiter.md, "Terms of a reduction"):

- ``sum``, ``amax``: term ``t`` is ``x[o, t, i]``; partial(0) is +0 (sum) or -inf (amax);
- ``matmul_nt``: term ``t`` is ``A[b, i, t] · B[b, j, t]`` (the product rounded first);
- ``col2im``: term ``t = ky·k + kx``: the column entry im2col copied from the element's pixel
  through that kernel offset, if there is one (else the term adds nothing);
- ``scatter_add``: term ``t`` is position ``p = t``: ``src[p, d]`` if ``index[p]`` is the
  element's row (else nothing).

Every other op has no terms. Partial results are binary32 values with NaN canonical.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from agents.exact.errors import ExactError
from agents.exact.float32 import CANONICAL_NAN_BITS
from agents.exact.optable import spec_of
from agents.exact.trace import Op, OpRecord

REDUCTIONS = frozenset({Op.SUM, Op.AMAX, Op.MATMUL_NT, Op.COL2IM, Op.SCATTER_ADD})
# An input value by (input number in record order, flat position): what index ops look up.
ValueReader = Callable[[int, int], float]
MAX_TERMS = 8  # ONE_STEP_MAX_TERMS in contracts/interfaces/IOneStep.sol
F32 = np.float32


@dataclass(frozen=True)
class Element:
    """One element of one record's output, with the shapes of the record's inputs."""

    record: OpRecord
    shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    element: int

    @property
    def index(self) -> tuple[int, ...]:
        """The element's multi-index in the output (Python integers: shapes may exceed numpy's)."""
        index = []
        rest = self.element
        for size in reversed(self.out_shape):
            rest, i = divmod(rest, size)
            index.append(i)
        return tuple(reversed(index))


def _ints(values: Sequence[int | np.float32]) -> list[int]:
    return [int(v) for v in values]


def _strides_position(index: Sequence[int], shape: Sequence[int]) -> int:
    position = 0
    for i, d in zip(index, shape, strict=True):
        position = position * d + i
    return position


def terms(item: Element) -> int:
    """The element's number of terms (0 for ops that are not reductions)."""
    return op_terms(item.record.op, item.record.attributes, item.shapes)


def op_terms(op: Op, attrs: Sequence[int | np.float32], shapes: Sequence[Sequence[int]]) -> int:
    """The number of terms of every output element of ``op`` with these attributes and input
    shapes (0 for ops that are not reductions)."""
    if op in (Op.SUM, Op.AMAX):
        return shapes[0][int(attrs[0])]
    if op is Op.MATMUL_NT:
        return shapes[0][-1]
    if op is Op.COL2IM:
        return int(attrs[0]) ** 2
    if op is Op.SCATTER_ADD:
        return shapes[0][0]
    return 0


def _whole(value: float, bound: int) -> int | None:
    """An index value as the kernels read it: a whole number in [0, bound), else None (the
    element is then undefined and the one step reads no further)."""
    if not np.isfinite(value) or value != np.floor(value) or not 0 <= value < bound:
        return None
    return int(value)


def _broadcast_position(index: Sequence[int], out: Sequence[int], shape: Sequence[int]) -> int:
    aligned = index[len(out) - len(shape) :]
    return _strides_position(
        [0 if d == 1 else i for i, d in zip(aligned, shape, strict=True)], shape
    )


def _col2im_source(item: Element, t: int) -> int | None:
    kernel, stride, padding, _b, channels, height, width = _ints(item.record.attributes)
    oh = (height + 2 * padding - kernel) // stride + 1
    ow = (width + 2 * padding - kernel) // stride + 1
    b, c, y, x = item.index
    ky, kx = divmod(t, kernel)
    sy, sx = y + padding - ky, x + padding - kx
    if sy < 0 or sx < 0 or sy % stride or sx % stride:
        return None
    oy, ox = sy // stride, sx // stride
    if oy >= oh or ox >= ow:
        return None
    row = (b * oh + oy) * ow + ox
    col = (c * kernel + ky) * kernel + kx
    return row * (channels * kernel * kernel) + col


def reader(inputs: Sequence[np.ndarray]) -> ValueReader:
    """A ``ValueReader`` over whole input tensors."""
    flat = [np.ascontiguousarray(x, dtype=np.float32).reshape(-1) for x in inputs]
    return lambda tensor, position: float(flat[tensor][position])


def reads(
    item: Element,
    inputs: Sequence[np.ndarray] | ValueReader,
    term_from: int = 0,
    term_to: int | None = None,
) -> list[set[int]]:
    """The flat positions of each input (record order) that the one step of ``item`` reads,
    for the terms ``[term_from, term_to)`` of a reduction (``term_to`` defaults to all).
    ``inputs`` are the input tensors, or a ``ValueReader`` (index ops read index values to
    know where to read next)."""
    value = inputs if callable(inputs) else reader(inputs)
    record, shapes, e = item.record, item.shapes, item.element
    op, attrs = record.op, record.attributes
    wanted: list[set[int]] = [set() for _ in shapes]
    last = terms(item) if term_to is None else term_to
    if spec_of(op).kind == "elementwise":
        for tensor, shape in enumerate(shapes):
            wanted[tensor].add(_broadcast_position(item.index, item.out_shape, shape))
    elif op in (Op.SUM, Op.AMAX):
        shape = shapes[0]
        axis = int(attrs[0])
        inner = math.prod(shape[axis + 1 :])
        outer, i = divmod(e, inner)
        wanted[0].update((outer * shape[axis] + t) * inner + i for t in range(term_from, last))
    elif op is Op.MATMUL_NT:
        *_, rows, depth = shapes[0]
        cols = shapes[1][-2]
        batch, rest = divmod(e, rows * cols)
        i, j = divmod(rest, cols)
        wanted[0].update((batch * rows + i) * depth + t for t in range(term_from, last))
        wanted[1].update((batch * cols + j) * depth + t for t in range(term_from, last))
    elif op is Op.COL2IM:
        for t in range(term_from, last):
            source = _col2im_source(item, t)
            if source is not None:
                wanted[0].add(source)
    elif op is Op.SCATTER_ADD:
        width = shapes[0][1]
        target, d = divmod(e, width)
        for t in range(term_from, last):
            wanted[1].add(t)
            row = _whole(value(1, t), item.out_shape[0])
            if row is None:
                break
            if row == target:
                wanted[0].add(t * width + d)
    elif op in (Op.RESHAPE,):
        wanted[0].add(e)
    elif op is Op.TRANSPOSE:
        moved = [0] * len(shapes[0])
        for d, axis in enumerate(_ints(attrs)):
            moved[axis] = item.index[d]
        wanted[0].add(_strides_position(moved, shapes[0]))
    elif op is Op.INDEX_SELECT:
        axis = int(attrs[0])
        shape = shapes[0]
        inner = math.prod(shape[axis + 1 :])
        picked = item.out_shape[axis]
        outer, i, r = e // (picked * inner), (e // inner) % picked, e % inner
        wanted[1].add(i)
        row = _whole(value(1, i), shape[axis])
        if row is not None:
            wanted[0].add((outer * shape[axis] + row) * inner + r)
    elif op is Op.TAKE_ALONG:
        length = shapes[0][-1]
        wanted[1].add(e)
        column = _whole(value(1, e), length)
        if column is not None:
            wanted[0].add(e * length + column)
    elif op is Op.ONE_HOT:
        wanted[0].add(e // int(attrs[0]))
    elif op is Op.CAUSAL_FILL:
        rows, cols = shapes[0][-2:]
        if e % cols <= (e // cols) % rows:
            wanted[0].add(e)
    elif op is Op.IM2COL:
        kernel, stride, padding = _ints(attrs)
        batch, channels, height, width = shapes[0]
        oh = (height + 2 * padding - kernel) // stride + 1
        ow = (width + 2 * padding - kernel) // stride + 1
        row, col = divmod(e, channels * kernel * kernel)
        b, oy, ox = row // (oh * ow), (row // ow) % oh, row % ow
        c, ky, kx = col // (kernel * kernel), (col // kernel) % kernel, col % kernel
        y, x = oy * stride - padding + ky, ox * stride - padding + kx
        if 0 <= y < height and 0 <= x < width:
            wanted[0].add(((b * channels + c) * height + y) * width + x)
    elif op is Op.FULL:
        pass
    else:
        raise ExactError(f"{op.name} has no elements")
    return wanted


def _bits(value: np.float32) -> int:
    return CANONICAL_NAN_BITS if np.isnan(value) else int(np.float32(value).view(np.uint32))


def _maximum(a: np.float32, b: np.float32) -> np.float32:
    if np.isnan(a) or np.isnan(b):
        return F32(np.nan)
    if a == b == 0:
        return F32(0.0) if not (np.signbit(a) and np.signbit(b)) else F32(-0.0)
    return a if a > b else b


def partial(item: Element, inputs: Sequence[np.ndarray], t: int) -> int:
    """The bit pattern of the reduction element's running value after ``t`` terms."""
    record, shapes, e = item.record, item.shapes, item.element
    op = record.op
    if op not in REDUCTIONS:
        raise ExactError(f"{op.name} is not a reduction")
    if not 0 <= t <= terms(item):
        raise ExactError(f"term {t} out of range for {terms(item)} terms")
    flat = [np.ascontiguousarray(x, dtype=np.float32).reshape(-1) for x in inputs]
    acc = F32(-np.inf) if op is Op.AMAX else F32(0.0)
    positions = reads(item, inputs, 0, t)
    with np.errstate(all="ignore"):
        if op in (Op.SUM, Op.AMAX):
            for position in sorted(positions[0]):
                value = flat[0][position]
                acc = F32(acc + value) if op is Op.SUM else _maximum(acc, value)
        elif op is Op.MATMUL_NT:
            for a, b in zip(sorted(positions[0]), sorted(positions[1]), strict=True):
                acc = F32(acc + F32(flat[0][a] * flat[1][b]))
        elif op is Op.COL2IM:
            for step in range(t):
                source = _col2im_source(item, step)
                if source is not None:
                    acc = F32(acc + flat[0][source])
        else:
            width = shapes[0][1]
            target, d = divmod(e, width)
            for p in range(t):
                if flat[1][p] == target:
                    acc = F32(acc + flat[0][p * width + d])
    return _bits(acc)
