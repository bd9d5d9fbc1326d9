"""Activation compression where a model is cut into pipeline stages (docs/swarm.md).

What crosses a cut for a slice of ``n`` samples is an ``[n, D]`` array (one row per
sample). Quantizing a row to ``b`` bits, in binary32 operations, each rounded once:

    lo   = min(row)                 hi = max(row)
    step = (hi − lo) / (2^b − 1)
    t    = (row − lo) / (step if step ≠ 0 else 1)
    code = min(max(round(t), 0), 2^b − 1)     round: (t + 1.5·2^23) − 1.5·2^23
    row' = lo + code · step

(``round`` is round-half-to-even for ``|t| < 2^22``; ``t`` is below ``2^b``; a code that
comes out NaN, in a row with infinities or whose range overflows, is 0). The codes,
``lo`` and ``step`` are what travels; ``row'`` is what the next stage computes with. The
same formulas serve the exact kernels (``ExactOps``) and torch (``TorchOps``), whose
elementwise binary32 arithmetic rounds the same way, so both ends of a cut, and a
replay, agree on every bit.

Forward, per ``parallel.compression.method``:

- ``direct``: ``a' = Q(a)``;
- ``aq`` (AQ-SGD): with the sample's buffer ``m`` and flag ``seen`` read as they were
  when the step began, ``a' = m + Q(a − m)`` for a sample seen before and ``a' = a``
  (sent in full) for one seen for the first time.

Backward, with ``backward_bits``: ``g' = Q(g)``, otherwise ``g`` in full. After the step,
every sample of the step gets ``m = +0 + a'`` (its first occurrence in the step, in slice
and row order) and ``seen = 1`` (``commit_buffers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch

MAGIC = 12582912.0  # 1.5 · 2^23: adding and subtracting it rounds to an integer
A = TypeVar("A")


class Ops(Protocol[A]):
    """The binary32 operations compression uses (``ExactOps`` has them; ``TorchOps`` mirrors)."""

    def add(self, a: Any, b: Any) -> A: ...
    def sub(self, a: Any, b: Any) -> A: ...
    def mul(self, a: Any, b: Any) -> A: ...
    def div(self, a: Any, b: Any) -> A: ...
    def maximum(self, a: Any, b: Any) -> A: ...
    def minimum(self, a: Any, b: Any) -> A: ...
    def neg(self, x: A) -> A: ...
    def eq(self, a: Any, b: Any) -> A: ...
    def select(self, cond: Any, a: Any, b: Any) -> A: ...
    def amax(self, x: A, axis: int) -> A: ...
    def reshape(self, x: A, shape: list[int]) -> A: ...
    def index_select(self, x: A, index: A, axis: int) -> A: ...
    def scatter_add(self, src: A, index: A, rows: int) -> A: ...
    def full(self, shape: list[int], value: float) -> A: ...
    def array(self, values: np.ndarray) -> A: ...


class TorchOps:
    """``Ops`` in torch (binary32 tensors on one device), for the native backend."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def _t(self, v: Any) -> torch.Tensor:
        if isinstance(v, torch.Tensor):
            return v
        return torch.tensor(np.float32(v), dtype=torch.float32, device=self.device)

    def add(self, a: Any, b: Any) -> torch.Tensor:
        return self._t(a) + self._t(b)

    def sub(self, a: Any, b: Any) -> torch.Tensor:
        return self._t(a) - self._t(b)

    def mul(self, a: Any, b: Any) -> torch.Tensor:
        return self._t(a) * self._t(b)

    def div(self, a: Any, b: Any) -> torch.Tensor:
        return self._t(a) / self._t(b)

    def maximum(self, a: Any, b: Any) -> torch.Tensor:
        return torch.maximum(self._t(a), self._t(b))

    def minimum(self, a: Any, b: Any) -> torch.Tensor:
        return torch.minimum(self._t(a), self._t(b))

    def neg(self, x: torch.Tensor) -> torch.Tensor:
        return -x

    def eq(self, a: Any, b: Any) -> torch.Tensor:
        return (self._t(a) == self._t(b)).to(torch.float32)

    def select(self, cond: Any, a: Any, b: Any) -> torch.Tensor:
        return torch.where(self._t(cond) != 0, self._t(a), self._t(b))

    def amax(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.amax(x, dim=axis, keepdim=True)

    def reshape(self, x: torch.Tensor, shape: list[int]) -> torch.Tensor:
        return x.reshape(shape)

    def index_select(self, x: torch.Tensor, index: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.index_select(x, axis, index.to(torch.int64))

    def scatter_add(self, src: torch.Tensor, index: torch.Tensor, rows: int) -> torch.Tensor:
        out = torch.zeros((rows, *src.shape[1:]), dtype=torch.float32, device=self.device)
        return out.index_add_(0, index.to(torch.int64), src)

    def full(self, shape: list[int], value: float) -> torch.Tensor:
        return torch.full(shape, float(np.float32(value)), dtype=torch.float32, device=self.device)

    def array(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(values, dtype=np.float32)).to(self.device)


@dataclass(frozen=True)
class Quantized(Generic[A]):
    """Rows quantized to ``bits`` bits: integer ``codes`` ``[n, D]`` (as binary32), ``lo`` and
    ``step`` ``[n, 1]``."""

    codes: A
    lo: A
    step: A
    bits: int


def levels(bits: int) -> int:
    """The largest code of ``bits`` bits."""
    if bits not in (2, 3, 4, 8):
        raise ValueError(f"quantization to {bits} bits is not defined (2, 3, 4 or 8)")
    return (1 << bits) - 1


def quantize(E: Ops[A], x: A, bits: int) -> Quantized[A]:
    """``x`` (``[n, D]``) quantized row by row (module docstring)."""
    top = float(levels(bits))
    hi = E.amax(x, 1)
    lo = E.neg(E.amax(E.neg(x), 1))
    step = E.div(E.sub(hi, lo), top)
    divisor = E.select(E.eq(step, 0.0), 1.0, step)
    t = E.div(E.sub(x, lo), divisor)
    rounded = E.sub(E.add(t, MAGIC), MAGIC)
    clamped = E.minimum(E.maximum(rounded, 0.0), top)
    codes = E.select(E.eq(clamped, clamped), clamped, 0.0)  # NaN (a row out of range): 0
    return Quantized(codes, lo, step, bits)


def dequantize(E: Ops[A], q: Quantized[A]) -> A:
    """``lo + code · step``, row by row."""
    return E.add(q.lo, E.mul(q.codes, q.step))


@dataclass(frozen=True)
class Forward(Generic[A]):
    """What a cut passes on for one slice: ``value`` (the next stage's input, ``[n, D]``)
    and what travels: ``quantized`` rows and/or ``full`` rows; with AQ-SGD ``seen`` (the
    flags the step began with, numpy ``bool[n]``) says which rows travel quantized."""

    value: A
    quantized: Quantized[A] | None
    full: A | None
    seen: np.ndarray | None


def forward_cut(
    E: Ops[A],
    method: str,
    bits: int,
    a: A,
    buffer_rows: A | None = None,
    seen_rows: A | None = None,
    seen: np.ndarray | None = None,
) -> Forward[A]:
    """The sending side of a cut: ``a`` (``[n, D]``) compressed by ``method``; AQ-SGD also
    takes the samples' buffers ``buffer_rows`` ``[n, D]``, their flags ``seen_rows``
    ``[n, 1]`` (0 or 1) and the same flags as numpy ``seen``."""
    if method == "direct":
        q = quantize(E, a, bits)
        return Forward(dequantize(E, q), q, None, None)
    if method != "aq":
        raise ValueError(f"unknown compression {method!r}")
    assert buffer_rows is not None and seen_rows is not None and seen is not None
    q = quantize(E, E.sub(a, buffer_rows), bits)
    value = E.select(seen_rows, E.add(buffer_rows, dequantize(E, q)), a)
    return Forward(value, q, a, seen)


def receive_cut(
    E: Ops[A],
    method: str,
    q: Quantized[A] | None,
    full: A | None,
    buffer_rows: A | None = None,
    seen_rows: A | None = None,
) -> A:
    """The receiving side: the value ``forward_cut`` computed, from what travelled (for
    AQ-SGD, ``q`` and ``full`` hold zeros in the rows that did not travel that way)."""
    if method == "direct":
        assert q is not None
        return dequantize(E, q)
    assert q is not None and full is not None and buffer_rows is not None
    return E.select(seen_rows, E.add(buffer_rows, dequantize(E, q)), full)


def commit_tensors(step_rows: np.ndarray, slices: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The index tensors ``commit_buffers`` reads: each slice's positions in the step's batch
    (``[n]``), then which positions hold a sample's first occurrence in the step (``[B, 1]``,
    0 or 1), both binary32."""
    rows = np.asarray(step_rows, np.int64)
    size = len(rows) // slices
    positions = [np.arange(m * size, (m + 1) * size, dtype=np.float32) for m in range(slices)]
    first = np.zeros((len(rows), 1), np.float32)
    first[np.unique(rows, return_index=True)[1]] = 1.0
    return positions, first


def commit_buffers(
    E: Ops[A],
    buffer: A,
    seen: A,
    step_rows: np.ndarray,
    values: list[A],
) -> tuple[A, A]:
    """The buffers after a step: ``buffer`` ``[N, D]`` and ``seen`` ``[N]`` updated with the
    values ``values[m]`` (``[n, D]``) that slice ``m`` of the step's batch ``step_rows`` passed
    on; a sample that occurs more than once keeps the value of its first occurrence.

    The same operations whatever the batch (so every step of a task has one op sequence):
    the slices' values placed in a ``[B, D]`` array (``scatter_add`` at their positions,
    summed), later occurrences zeroed (``select``), placed at their samples
    (``scatter_add``: ``+0 + value``), and the samples marked."""
    rows = np.asarray(step_rows, np.int64)
    batch = len(rows)
    samples = int(_shape(seen)[0])
    positions, first = commit_tensors(rows, len(values))
    assembled: A | None = None
    for value, where in zip(values, positions, strict=True):
        part = E.scatter_add(value, E.array(where), batch)
        assembled = part if assembled is None else E.add(assembled, part)
    assert assembled is not None
    flags = E.array(first)
    kept = E.select(flags, assembled, 0.0)
    at = E.array(rows.astype(np.float32))
    placed = E.scatter_add(kept, at, samples)
    mask = E.scatter_add(flags, at, samples)
    return E.select(mask, placed, buffer), E.maximum(seen, E.reshape(mask, [samples]))


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


# --- what travels ----------------------------------------------------------------------


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Integer codes (any shape, values below ``2^bits``) as ``bits`` bits each, little-endian
    bit order, the last byte padded with zeros."""
    values = np.asarray(codes, dtype=np.float32).reshape(-1).astype(np.uint8)
    if bits == 8:
        return values.tobytes()
    planes = np.unpackbits(values[:, None], axis=1, bitorder="little")[:, :bits]
    return np.packbits(planes.reshape(-1), bitorder="little").tobytes()


def unpack_codes(data: bytes, count: int, bits: int) -> np.ndarray:
    """``count`` codes of ``bits`` bits from ``pack_codes``, as binary32 values."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if bits == 8:
        if len(raw) != count:
            raise ValueError(f"{len(raw)} bytes hold no {count} 8-bit codes")
        return raw.astype(np.float32)
    if len(raw) != packed_size(count, bits):
        raise ValueError(f"{len(raw)} bytes hold no {count} {bits}-bit codes")
    planes = np.unpackbits(raw, bitorder="little")[: count * bits].reshape(count, bits)
    weights = (1 << np.arange(bits, dtype=np.uint16)).astype(np.uint16)
    return (planes.astype(np.uint16) @ weights).astype(np.float32)


def packed_size(count: int, bits: int) -> int:
    """Bytes that ``count`` codes of ``bits`` bits take."""
    return (count * bits + 7) // 8
