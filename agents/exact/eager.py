"""The eager path: the exact operations as plain torch tensor ops, on any device.

Each torch call below is one elementwise binary32 operation that torch rounds
on its own on CPU and CUDA (``a + b``, ``a * b``, ``a / b``, comparisons,
``torch.where``; the square root goes through binary64, see ``sqrt``);
sequential reductions and products are explicit
loops over the reduced index, vectorized across independent outputs. Nothing
here calls BLAS, cuDNN, libm-backed torch functions (``torch.exp`` and
friends), fused ops (``addmm``, ``addcmul``, ``lerp``) or reduction kernels
(``sum``, ``mean``), whose order or rounding torch does not promise.

Immediates become tensors on the operand's device, expanded to its shape:
torch divides by a CPU scalar on CUDA through a reciprocal, which is not a
correctly rounded division.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from agents.exact.constants import (
    EXP_C2,
    EXP_C3,
    EXP_C4,
    EXP_C5,
    EXP_C6,
    EXP_C7,
    EXP_HIGH,
    EXP_LOW,
    LDEXP_LIMIT,
    LN2_HI,
    LN2_LO,
    LOG2E,
    LOG_L1,
    LOG_L2,
    LOG_L3,
    LOG_L4,
    POW2_F64,
    ROUND_MAGIC,
    SQRT2,
)
from agents.exact.kernels import Kernels, Operand

Tensor = torch.Tensor
# The most products matmul_nt materializes at once (per block of rows).
_PRODUCTS_MAX = 1 << 24


class EagerKernels(Kernels):
    """The exact operations on float32 torch tensors of one device."""

    name = "eager"

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self._nan = torch.tensor(float("nan"), dtype=torch.float32, device=self.device)
        self._pow2 = torch.tensor(POW2_F64, dtype=torch.float64, device=self.device)
        self._constants: dict[int, Tensor] = {}

    # --- helpers -----------------------------------------------------------------
    def _const(self, value: float | np.float32) -> Tensor:
        key = int(np.float32(value).view(np.uint32))
        cached = self._constants.get(key)
        if cached is None:
            cached = torch.tensor(np.float32(value), dtype=torch.float32, device=self.device)
            self._constants[key] = cached
        return cached

    def _pair(self, a: Operand, b: Operand) -> tuple[Tensor, Tensor]:
        a_is, b_is = isinstance(a, Tensor), isinstance(b, Tensor)
        if a_is and b_is:
            return a, b
        if a_is:
            return a, self._const(b).expand_as(a)
        if b_is:
            return self._const(a).expand_as(b), b
        return self._const(a), self._const(b)

    def _canon(self, r: Tensor) -> Tensor:
        return torch.where(r != r, self._nan, r)

    def _f(self, value: float | np.floating[Any]) -> Tensor:
        return self._const(np.float32(value))

    # --- arrays in and out ---------------------------------------------------------
    def from_numpy(self, values: np.ndarray) -> Tensor:
        array = np.ascontiguousarray(values, dtype=np.float32).reshape(np.shape(values))
        return torch.from_numpy(array.copy()).to(self.device)

    def to_numpy(self, values: Tensor) -> np.ndarray:
        array = values.detach().cpu().numpy()
        return np.ascontiguousarray(array, dtype=np.float32).reshape(array.shape)

    def full(self, shape: Sequence[int], value: np.float32) -> Tensor:
        return self._const(value).expand(tuple(shape)).clone()

    # --- elementwise -----------------------------------------------------------------
    def add(self, a: Operand, b: Operand) -> Tensor:
        x, y = self._pair(a, b)
        return self._canon(x + y)

    def sub(self, a: Operand, b: Operand) -> Tensor:
        x, y = self._pair(a, b)
        return self._canon(x - y)

    def mul(self, a: Operand, b: Operand) -> Tensor:
        x, y = self._pair(a, b)
        return self._canon(x * y)

    def div(self, a: Operand, b: Operand) -> Tensor:
        x, y = self._pair(a, b)
        return self._canon(x / y)

    def maximum(self, a: Operand, b: Operand) -> Tensor:
        x, y = self._pair(a, b)
        r = torch.where(x > y, x, y)
        r = torch.where((x == y) & (x == 0), x + y, r)  # equal zeros: -0 only if both are
        return self._canon(torch.where((x != x) | (y != y), self._nan, r))

    def minimum(self, a: Operand, b: Operand) -> Tensor:
        x, y = self._pair(a, b)
        r = torch.where(x < y, x, y)
        r = torch.where((x == y) & (x == 0), -((-x) + (-y)), r)  # +0 only if both are
        return self._canon(torch.where((x != x) | (y != y), self._nan, r))

    def _flag(self, mask: Tensor) -> Tensor:
        return mask.to(torch.float32)

    def lt(self, a: Operand, b: Operand) -> Tensor:
        x, y = self._pair(a, b)
        return self._flag(x < y)

    def le(self, a: Operand, b: Operand) -> Tensor:
        x, y = self._pair(a, b)
        return self._flag(x <= y)

    def eq(self, a: Operand, b: Operand) -> Tensor:
        x, y = self._pair(a, b)
        return self._flag(x == y)

    def select(self, cond: Operand, a: Operand, b: Operand) -> Tensor:
        shape = np.broadcast_shapes(*(tuple(np.shape(v)) for v in (cond, a, b)))
        c, x, y = (
            v.expand(shape) if isinstance(v, Tensor) else self._const(v).expand(shape)
            for v in (cond, a, b)
        )
        return self._canon(torch.where(c != 0, x, y))

    def ldexp(self, x: Operand, n: Operand) -> Tensor:
        v, e = self._pair(x, n)
        limit = self._f(LDEXP_LIMIT)
        clamped = self.minimum(self.maximum(e, -limit), limit)
        whole = clamped.to(torch.int64)
        valid = (whole.to(torch.float32) == clamped) & (v == v) & (e == e)
        index = torch.where(valid, whole + LDEXP_LIMIT, torch.zeros_like(whole))
        scaled = (v.to(torch.float64) * self._pow2[index]).to(torch.float32)
        return self._canon(torch.where(valid, scaled, self._nan))

    def neg(self, x: Tensor) -> Tensor:
        return self._canon(-x)

    def abs(self, x: Tensor) -> Tensor:
        return self._canon(torch.abs(x))

    def sqrt(self, x: Tensor) -> Tensor:
        # torch's float32 sqrt on CPU is not correctly rounded (an approximation in
        # its vectorized kernel). The binary64 root of a binary32 input, even with a
        # 1-ulp binary64 error, rounds to the correctly rounded binary32 root: a
        # binary32 root is never within 2**-50 (relative) of a binary32 midpoint.
        return self._canon(torch.sqrt(x.to(torch.float64)).to(torch.float32))

    def exp(self, x: Tensor) -> Tensor:
        t = self.minimum(self.maximum(x, self._f(EXP_LOW)), self._f(EXP_HIGH))
        magic = self._f(ROUND_MAGIC)
        k = (t * self._f(LOG2E) + magic) - magic
        r = (t - k * self._f(LN2_HI)) - k * self._f(LN2_LO)
        one = self._f(1.0)
        p = self._f(EXP_C7).expand_as(r)
        for c in (EXP_C6, EXP_C5, EXP_C4, EXP_C3, EXP_C2):
            p = p * r + self._f(c)
        p = p * r + one
        p = p * r + one
        return self.ldexp(p, k)

    def _floor_log2(self, x: Tensor) -> Tensor:
        """floor(log2(x)) of positive finite values, as float32 integers."""
        sub = ((x.view(torch.int32) >> 23) & 0xFF) == 0
        scaled = torch.where(sub, x * self._f(2.0**24), x)  # exact: subnormals become normal
        field = (scaled.view(torch.int32) >> 23) & 0xFF
        e = field - 127 - torch.where(sub, 24, 0)
        return e.to(torch.float32)

    def log(self, x: Tensor) -> Tensor:
        positive = (x > 0) & (x < float("inf"))
        safe = torch.where(positive, x, self._f(1.0))
        e = self._floor_log2(safe)
        m = self.ldexp(safe, -e)
        big = m > self._f(SQRT2)
        m = torch.where(big, m * self._f(0.5), m)
        e = torch.where(big, e + self._f(1.0), e)
        f = m - self._f(1.0)
        s = f / (self._f(2.0) + f)
        z = s * s
        big_r = z * (
            self._f(LOG_L1) + z * (self._f(LOG_L2) + z * (self._f(LOG_L3) + z * self._f(LOG_L4)))
        )
        hfsq = (self._f(0.5) * f) * f
        y = e * self._f(LN2_HI) - ((hfsq - (s * (hfsq + big_r) + e * self._f(LN2_LO))) - f)
        y = torch.where(x == 0, self._f(float("-inf")), y)
        y = torch.where(x == float("inf"), self._f(float("inf")), y)
        y = torch.where((x < 0) | (x != x), self._nan, y)
        return self._canon(y)

    # --- reductions and products ---------------------------------------------------
    def sum(self, x: Tensor, axis: int) -> Tensor:
        kept = list(x.shape)
        kept[axis] = 1
        acc = torch.zeros(kept, dtype=torch.float32, device=x.device)
        for k in range(x.shape[axis]):
            acc = acc + x.narrow(axis, k, 1)
        return self._canon(acc)

    def amax(self, x: Tensor, axis: int) -> Tensor:
        acc = self._canon(x.narrow(axis, 0, 1))
        for k in range(1, x.shape[axis]):
            acc = self.maximum(acc, x.narrow(axis, k, 1))
        return acc

    def matmul_nt(self, a: Tensor, b: Tensor) -> Tensor:
        # All products of a block of rows in one launch ([K, ..., M, N], each rounded once),
        # then K launches adding them in increasing k: the sequential dot products, with
        # half the launches of a multiply and an add per k. Rows are taken in blocks so
        # the products stay under _PRODUCTS_MAX values.
        lead, rows, depth = a.shape[:-2], a.shape[-2], a.shape[-1]
        cols = b.shape[-2]
        out = torch.zeros((*lead, rows, cols), dtype=torch.float32, device=a.device)
        if depth == 0 or rows == 0:
            return out
        batch = max(1, int(np.prod(lead)))
        block = max(1, _PRODUCTS_MAX // max(1, batch * cols * depth))
        a_k = a.movedim(-1, 0)  # [K, ..., M]
        b_k = b.movedim(-1, 0)  # [K, ..., N]
        for start in range(0, rows, block):
            stop = min(rows, start + block)
            products = a_k[..., start:stop, None] * b_k[..., None, :]
            acc = products[0] + self._f(0.0)  # +0 + first product, as the definition starts
            for k in range(1, depth):
                acc = acc + products[k]
            out[..., start:stop, :] = acc
        return self._canon(out)

    # --- data movement ---------------------------------------------------------------
    def transpose(self, x: Tensor, perm: Sequence[int]) -> Tensor:
        return x.permute(*perm).contiguous()

    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        return x.contiguous().reshape(tuple(shape))

    def _long(self, index: Tensor) -> Tensor:
        return index.to(torch.int64)

    def index_select(self, x: Tensor, index: Tensor, axis: int) -> Tensor:
        return torch.index_select(x, axis, self._long(index).reshape(-1)).contiguous()

    def take_along(self, x: Tensor, index: Tensor) -> Tensor:
        return torch.take_along_dim(x, self._long(index), dim=-1).contiguous()

    def one_hot(self, index: Tensor, classes: int) -> Tensor:
        positions = torch.arange(classes, device=index.device, dtype=torch.int64)
        return (self._long(index)[..., None] == positions).to(torch.float32)

    def causal_fill(self, x: Tensor, value: np.float32) -> Tensor:
        rows, cols = x.shape[-2:]
        keep = torch.ones((rows, cols), dtype=torch.bool, device=x.device).tril()
        return self._canon(torch.where(keep, x, self._const(value)))

    def im2col(self, x: Tensor, kernel: int, stride: int, padding: int) -> Tensor:
        batch, channels, height, width = x.shape
        oh = (height + 2 * padding - kernel) // stride + 1
        ow = (width + 2 * padding - kernel) // stride + 1
        padded = torch.zeros(
            (batch, channels, height + 2 * padding, width + 2 * padding),
            dtype=torch.float32,
            device=x.device,
        )
        padded[:, :, padding : padding + height, padding : padding + width] = x
        patches = torch.empty(
            (batch, oh, ow, channels, kernel, kernel), dtype=torch.float32, device=x.device
        )
        for ky in range(kernel):
            for kx in range(kernel):
                window = padded[
                    :,
                    :,
                    ky : ky + stride * (oh - 1) + 1 : stride,
                    kx : kx + stride * (ow - 1) + 1 : stride,
                ]
                patches[:, :, :, :, ky, kx] = window.permute(0, 2, 3, 1)
        return patches.reshape(batch * oh * ow, channels * kernel * kernel)

    def col2im(
        self, cols: Tensor, shape: Sequence[int], kernel: int, stride: int, padding: int
    ) -> Tensor:
        batch, channels, height, width = (int(d) for d in shape)
        oh = (height + 2 * padding - kernel) // stride + 1
        ow = (width + 2 * padding - kernel) // stride + 1
        patches = cols.reshape(batch, oh, ow, channels, kernel, kernel)
        padded = torch.zeros(
            (batch, channels, height + 2 * padding, width + 2 * padding),
            dtype=torch.float32,
            device=cols.device,
        )
        # For a fixed (ky, kx) the patch positions land on distinct pixels, so one
        # vectorized add per (ky, kx), in increasing order, is the defined sequence.
        for ky in range(kernel):
            for kx in range(kernel):
                rows = slice(ky, ky + stride * (oh - 1) + 1, stride)
                columns = slice(kx, kx + stride * (ow - 1) + 1, stride)
                contribution = patches[:, :, :, :, ky, kx].permute(0, 3, 1, 2)
                padded[:, :, rows, columns] = padded[:, :, rows, columns] + contribution
        inner = padded[:, :, padding : padding + height, padding : padding + width]
        return self._canon(inner.contiguous())

    def scatter_add(self, src: Tensor, index: Tensor, rows: int) -> Tensor:
        out = torch.zeros((rows, src.shape[1]), dtype=torch.float32, device=src.device)
        if src.shape[0] == 0:
            return out
        target = self._long(index).reshape(-1)
        # Rank of each position among those with the same target, in increasing
        # position order: adding rank by rank keeps every row's sum sequential.
        order = torch.sort(target, stable=True).indices
        sorted_target = target[order]
        starts = torch.ones_like(sorted_target, dtype=torch.bool)
        starts[1:] = sorted_target[1:] != sorted_target[:-1]
        group_start = torch.cummax(
            torch.where(starts, torch.arange(len(order), device=src.device), 0), dim=0
        ).values
        rank = torch.empty_like(target)
        rank[order] = torch.arange(len(order), device=src.device) - group_start
        for level in range(int(rank.max().item()) + 1):
            chosen = rank == level
            rows_here = target[chosen]
            out[rows_here] = out[rows_here] + src[chosen]
        return self._canon(out)
