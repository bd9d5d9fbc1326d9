"""The kernel interface: every trace operation, with its exact semantics.

A *path* implements these methods on its own array type: the CPU path
(``agents.exact.cpu``: numpy arrays, numba kernels) and the eager path
(``agents.exact.eager``: torch tensors on any device). Both must return the
same bits for the same inputs; the tests check that on random and edge-case
inputs. Callers use ``agents.exact.ops.ExactOps``, which validates inputs,
turns immediates into float32 and records the trace; the kernels trust their
arguments.

Semantics shared by every method (docs/exact.md states them for readers of the
protocol):

- all values are IEEE-754 binary32, each operation rounds to nearest-even on
  its own (no fused multiply-add), subnormals are kept, and every NaN a method
  returns is the canonical quiet NaN ``0x7FC00000``;
- reductions run in increasing index order from ``+0.0`` (sums) or from the
  first element (max), one rounding per step;
- binary elementwise methods broadcast as numpy does; an operand may be a
  float32 immediate (``numpy.float32``) instead of an array;
- index arguments are float32 arrays holding integers, already checked by the
  caller to be in range.
"""

from __future__ import annotations

import itertools
import operator
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

_F32 = np.dtype(np.float32)
_DTYPE = operator.attrgetter("dtype")
_CONTIGUOUS = operator.attrgetter("flags.c_contiguous")
_SHAPE = operator.attrgetter("shape")

# The array type of a path (numpy.ndarray or torch.Tensor); kept loose on purpose
# so the layers above are written once for every path.
Array = Any
Operand = Any  # an Array or a numpy.float32 immediate


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's broadcast of two shapes; ``ValueError`` when they do not broadcast."""
    if a == b:
        return a
    if len(a) < len(b):
        a = (1,) * (len(b) - len(a)) + a
    elif len(b) < len(a):
        b = (1,) * (len(a) - len(b)) + b
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and x != 1 and y != 1:
            raise ValueError(f"shapes {a} and {b} do not broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


class Kernels(ABC):
    """The exact operations on one path's arrays."""

    name: str

    # --- arrays in and out -------------------------------------------------
    def address(self, values: np.ndarray) -> int:
        """Where the first byte of a numpy array (not a path array) lies in memory: a
        tracer's hashing threads read the arrays it hands them by address."""
        return int(values.__array_interface__["data"][0])

    def addresses(self, arrays: Sequence[np.ndarray]) -> list[int]:
        """``address`` of each of ``arrays`` (numpy arrays, all of them alive)."""
        return list(map(self.address, arrays))

    def float32_addresses(
        self, arrays: Sequence[Any], shapes: Sequence[tuple[int, ...]], dims: np.ndarray
    ) -> list[int] | None:
        """``addresses`` of ``arrays`` where each is a C-contiguous float32 numpy array (of
        type ``np.ndarray`` itself, its dtype the ``np.dtype(np.float32)`` object) of the
        shape ``shapes[i]``; ``None`` where one is not. ``dims`` holds the same shapes packed
        as int64: per array its axis count, then its axes."""
        if arrays and (
            set(map(type, arrays)) != {np.ndarray}
            or not all(map(operator.is_, map(_DTYPE, arrays), itertools.repeat(_F32)))
            or not all(map(_CONTIGUOUS, arrays))
            or list(map(_SHAPE, arrays)) != list(shapes)
        ):
            return None
        return self.addresses(arrays)

    def template_numbers(
        self,
        program: np.ndarray,
        registers: Sequence[Array],
        ids: np.ndarray,
        known: np.ndarray,
        keep: np.ndarray,
        first: int,
    ) -> np.ndarray | None:
        """The numbers a tracer's step template (``program``, packed as
        ``agents.exact.ops.template_program`` describes) gives the arrays ``registers``
        (``ids``: their identities), where it applies: every position holds its class's
        first array and the classes' arrays are distinct; exactly the known classes' arrays
        are among the ``known`` identities (row 0; their numbers in row 1); the checked
        arrays are C-contiguous float32 numpy arrays of the template's shapes; each view
        lies over its input's bytes. Returns the numbers of the positions (a known class's
        array its known number, a new class ``first`` plus its offset), then the checked
        arrays' addresses, then the numbers of the identities ``keep`` (among the
        registers or the known; else -1), as one int64 array; ``None`` where it does not
        apply (the tracer then numbers the step call by call)."""
        size, distinct, hashed, arrays, count = program[:5].tolist()
        if len(ids) != size:
            return None
        classes = program[program[5] :][:size]
        leaders = ids[program[program[6] :][:distinct]]
        offsets = program[program[7] :][:distinct].tolist()
        checked = program[program[8] :][:count].tolist()
        dims = program[program[9] :][: program[10]]
        if (ids != leaders[classes]).any() or len(set(leaders.tolist())) != distinct:
            return None
        where = dict(zip(known[0].tolist(), known[1].tolist(), strict=True))
        numbers = []
        for leader, offset in zip(leaders.tolist(), offsets, strict=True):
            number = where.get(leader)
            if (number is None) != (offset >= 0):
                return None
            numbers.append(first + offset if number is None else number)
        shapes: list[tuple[int, ...]] = []
        at = 0
        packed = dims.tolist()
        while at < len(packed):
            shapes.append(tuple(packed[at + 1 : at + 1 + packed[at]]))
            at += 1 + packed[at]
        addresses = self.float32_addresses([registers[p] for p in checked], shapes, dims)
        if addresses is None or addresses[hashed:arrays] != addresses[arrays:]:
            return None
        by_leader = dict(zip(leaders.tolist(), numbers, strict=True))
        kept = [by_leader.get(i, where.get(i, -1)) for i in keep.tolist()]
        return np.concatenate(
            [
                np.asarray(numbers, dtype=np.int64)[classes],
                np.asarray(addresses, dtype=np.int64),
                np.asarray(kept, dtype=np.int64),
            ]
        )

    @abstractmethod
    def from_numpy(self, values: np.ndarray) -> Array:
        """A path array holding a copy (or a zero-copy view) of a float32 numpy array."""

    @abstractmethod
    def to_numpy(self, values: Array) -> np.ndarray:
        """A C-contiguous float32 numpy array with the same values."""

    @abstractmethod
    def full(self, shape: Sequence[int], value: np.float32) -> Array:
        """A new array of ``shape`` filled with ``value``."""

    # --- elementwise ---------------------------------------------------------
    @abstractmethod
    def add(self, a: Operand, b: Operand) -> Array:
        """``a + b``."""

    @abstractmethod
    def sub(self, a: Operand, b: Operand) -> Array:
        """``a - b``."""

    @abstractmethod
    def mul(self, a: Operand, b: Operand) -> Array:
        """``a * b``."""

    @abstractmethod
    def div(self, a: Operand, b: Operand) -> Array:
        """``a / b``."""

    @abstractmethod
    def maximum(self, a: Operand, b: Operand) -> Array:
        """NaN if either is NaN; ``max(+0, -0) = +0``; otherwise the larger."""

    @abstractmethod
    def minimum(self, a: Operand, b: Operand) -> Array:
        """NaN if either is NaN; ``min(+0, -0) = -0``; otherwise the smaller."""

    @abstractmethod
    def lt(self, a: Operand, b: Operand) -> Array:
        """``1.0`` where ``a < b`` else ``0.0`` (NaN compares false, ``-0 == +0``)."""

    @abstractmethod
    def le(self, a: Operand, b: Operand) -> Array:
        """``1.0`` where ``a <= b`` else ``0.0``."""

    @abstractmethod
    def eq(self, a: Operand, b: Operand) -> Array:
        """``1.0`` where ``a == b`` else ``0.0``."""

    @abstractmethod
    def select(self, cond: Operand, a: Operand, b: Operand) -> Array:
        """``a`` where ``cond`` is not ±0 (NaN counts as true), else ``b``."""

    @abstractmethod
    def ldexp(self, x: Operand, n: Operand) -> Array:
        """``x * 2**n`` rounded once; ``n`` must be an integer (NaN otherwise), clamped to ±300."""

    @abstractmethod
    def neg(self, x: Array) -> Array:
        """``-x`` (sign flipped; NaN stays canonical)."""

    @abstractmethod
    def abs(self, x: Array) -> Array:
        """``|x|``."""

    @abstractmethod
    def sqrt(self, x: Array) -> Array:
        """Correctly rounded square root (``sqrt(-0) = -0``, negative -> NaN)."""

    @abstractmethod
    def exp(self, x: Array) -> Array:
        """The exp composite of docs/exact.md."""

    @abstractmethod
    def log(self, x: Array) -> Array:
        """The log composite of docs/exact.md."""

    # --- reductions and products ---------------------------------------------
    @abstractmethod
    def sum(self, x: Array, axis: int) -> Array:
        """Sequential sum along ``axis`` from ``+0.0``; the axis is kept with size 1."""

    @abstractmethod
    def amax(self, x: Array, axis: int) -> Array:
        """Sequential ``maximum`` along ``axis`` from its first element; axis kept (size 1)."""

    @abstractmethod
    def matmul_nt(self, a: Array, b: Array) -> Array:
        """``[..., M, K] x [..., N, K] -> [..., M, N]``, each entry a sequential dot product."""

    # --- data movement -------------------------------------------------------
    @abstractmethod
    def transpose(self, x: Array, perm: Sequence[int]) -> Array:
        """Axes permuted (a contiguous copy)."""

    @abstractmethod
    def reshape(self, x: Array, shape: Sequence[int]) -> Array:
        """Same values in row-major order, another shape."""

    @abstractmethod
    def index_select(self, x: Array, index: Array, axis: int) -> Array:
        """``x`` taken at the integer positions ``index`` (1-D) along ``axis``."""

    @abstractmethod
    def take_along(self, x: Array, index: Array) -> Array:
        """``out[..., 0] = x[..., index[..., 0]]`` along the last axis (``index``: last dim 1)."""

    @abstractmethod
    def one_hot(self, index: Array, classes: int) -> Array:
        """``out[..., j] = 1.0 if j == index[...] else 0.0``: shape ``index.shape + (classes,)``."""

    @abstractmethod
    def causal_fill(self, x: Array, value: np.float32) -> Array:
        """``x[..., i, j]`` where ``j <= i``, ``value`` above the diagonal."""

    @abstractmethod
    def im2col(self, x: Array, kernel: int, stride: int, padding: int) -> Array:
        """``[B, C, H, W] -> [B*OH*OW, C*k*k]``: row ``(b, oy, ox)``, column ``(c, ky, kx)``.

        Entry = ``x[b, c, oy*stride - padding + ky, ox*stride - padding + kx]``, ``+0.0``
        outside the image.
        """

    @abstractmethod
    def col2im(
        self, cols: Array, shape: Sequence[int], kernel: int, stride: int, padding: int
    ) -> Array:
        """The adjoint of ``im2col``: ``out[b, c, y, x]`` is the sequential sum, over
        ``(ky, kx)`` in increasing row-major order, of the column entries that ``im2col``
        copied from ``(b, c, y, x)``; ``+0.0`` where there are none."""

    @abstractmethod
    def scatter_add(self, src: Array, index: Array, rows: int) -> Array:
        """``out[v, :]`` = sequential sum of ``src[p, :]`` over increasing ``p`` with
        ``index[p] == v`` (``+0.0`` for rows no index names); ``src`` is 2-D."""

    # --- optional fused sequences ----------------------------------------------------
    # A path may run a whole documented op sequence in one kernel when nothing is
    # traced; it must give the bits the sequence gives (the tests compare them).
    # ``None`` means "not available here": the caller runs the sequence op by op.

    def fused_adam(
        self,
        param: Array,
        grad: Array,
        exp_avg: Array,
        exp_avg_sq: Array,
        constants: np.ndarray,
    ) -> tuple[Array, Array, Array] | None:
        """``agents.exact.optim.adam_update`` in one pass; ``constants`` is float32
        ``[weight_decay, w1, 1 - w1, beta2, w2, bc2_sqrt, eps, step_size]``."""
        return None

    def fused_sgd(
        self, param: Array, grad: Array, momentum_buffer: Array | None, constants: np.ndarray
    ) -> tuple[Array, Array | None] | None:
        """``agents.exact.optim.sgd_update`` in one pass; ``constants`` is float32
        ``[weight_decay, momentum, lr]``."""
        return None

    def fused_layer_norm(
        self, x: Array, weight: Array, bias: Array, eps: np.float32
    ) -> tuple[Array, Array, Array] | None:
        """``agents.exact.layers.layer_norm_forward`` on ``x [N, C]`` in one pass:
        ``(y, xhat, rstd)`` with ``rstd`` of shape ``[N, 1]``."""
        return None

    def fused_layer_norm_backward(
        self, dy: Array, xhat: Array, rstd: Array, weight: Array
    ) -> tuple[Array, Array, Array] | None:
        """The layer norm's backward pass in one pass: ``(dx, dweight, dbias)``."""
        return None

    def fused_softmax(self, x: Array) -> Array | None:
        """``agents.exact.composites.softmax``'s probabilities over the last axis."""
        return None

    def fused_softmax_backward(self, p: Array, dp: Array) -> Array | None:
        """``agents.exact.composites.softmax_backward`` over the last axis."""
        return None

    def elementwise_chain(
        self,
        code: np.ndarray,
        imms: np.ndarray,
        inputs: Sequence[Array],
        kinds: np.ndarray | None = None,
        sizes: Sequence[int] = (),
        rows: int = 1,
        cols: int = 0,
    ) -> Array | None:
        """The steps of an ``agents.exact.ops.ChainPlan``, every step's output kept, each
        what its op one by one gives. ``code`` is int64 ``(steps, 4)``: the step's trace op
        code, then its operands (unused ones 0): ``r >= 0`` is register ``r`` (the inputs,
        then the outputs of the steps before), ``r < 0`` the immediate ``imms[-1 - r]``.
        Without ``kinds`` every register has the inputs' shape: ``(steps, size)`` rows, row
        ``k`` the output of step ``k``. With ``kinds`` (one per register: 0 full, ``rows``
        x ``cols`` values; 1 one per row; 2 one per column) the outputs one after another,
        flat, step ``k``'s ``sizes[k]`` values."""
        return None

    def elementwise_chains(
        self, code: np.ndarray, imms: np.ndarray, groups: Sequence[Sequence[Array]]
    ) -> Array | None:
        """``elementwise_chain`` (every register full) over each of ``groups`` (its inputs,
        of one shape within a group), in one call: ``(steps, total)`` rows, row ``k`` the
        output of step ``k`` for every group one after another, each group's values in
        row-major order; ``None`` where the path has no such kernel."""
        return None
