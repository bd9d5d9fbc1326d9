"""SGD (with momentum) and Adam as sequences of exact operations, mirroring torch's
single-tensor formulas (``foreach=False``).

Per-step scalars (learning rate, bias corrections, step size) are computed on
the host in binary32, one rounding per operation in the order written, and
enter the trace as immediates of the ops that use them:

- ``pow32(b, t)``: square-and-multiply over the bits of ``t`` from the most
  significant: ``r = 1``; per bit ``r = r·r``, then ``r = r·b`` if the bit is 1;
- Adam at step ``t`` (1-based): ``bc1 = 1 - pow32(β1, t)``, ``bc2 = 1 - pow32(β2, t)``,
  ``step_size = lr / bc1``, ``bc2_sqrt = sqrt(bc2)``.

SGD: ``g = g + p·wd`` (when wd > 0); ``b = b·μ + g`` (when μ > 0, else ``b = g``);
``p = p - b·lr``.

Adam: ``g = g + p·wd`` (when wd > 0); with ``w1 = 1 - β1`` and ``w2 = 1 - β2``:
``m = m + (g - m)·w1`` (torch's ``lerp`` for ``w1 < 0.5``; ``m = g - (g - m)·(1 - w1)``
otherwise); ``v = v·β2 + (g·w2)·g``; ``p = p - (m / (sqrt(v) / bc2_sqrt + eps))·step_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.exact.kernels import Array
from agents.exact.ops import ExactOps, Scalar

F32 = np.float32


def pow32(base: np.float32, exponent: int) -> np.float32:
    """``base ** exponent`` by binary32 square-and-multiply (see the module docstring)."""
    if exponent < 0:
        raise ValueError("pow32 takes a non-negative exponent")
    result = F32(1.0)
    for bit in bin(exponent)[2:] if exponent else "":
        result = F32(result * result)
        if bit == "1":
            result = F32(result * base)
    return result


@dataclass(frozen=True)
class AdamScalars:
    """The host-side binary32 scalars of one Adam step."""

    step_size: Scalar
    bc2_sqrt: Scalar


def adam_scalars(lr: np.float32, beta1: np.float32, beta2: np.float32, t: int) -> AdamScalars:
    """Bias corrections for step ``t`` (1-based) and learning rate ``lr``."""
    bc1 = F32(F32(1.0) - pow32(beta1, t))
    bc2 = F32(F32(1.0) - pow32(beta2, t))
    return AdamScalars(F32(F32(lr) / bc1), np.sqrt(bc2, dtype=np.float32))


def sgd_update(
    E: ExactOps,
    param: Array,
    grad: Array,
    momentum_buffer: Array | None,
    *,
    lr: Scalar,
    momentum: np.float32,
    weight_decay: np.float32,
) -> tuple[Array, Array | None]:
    """One SGD step: ``(new param, new momentum buffer or None)``."""
    if E.untraced:
        constants = np.array([weight_decay, momentum, lr], dtype=np.float32)
        fused = E.kernels.fused_sgd(param, grad, momentum_buffer, constants)
        if fused is not None:
            return fused
    if weight_decay:
        grad = E.add(grad, E.mul(param, weight_decay))
    update = grad
    if momentum_buffer is not None:
        momentum_buffer = E.add(E.mul(momentum_buffer, momentum), grad)
        update = momentum_buffer
    return E.sub(param, E.mul(update, lr)), momentum_buffer


def adam_update(
    E: ExactOps,
    param: Array,
    grad: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    *,
    scalars: AdamScalars,
    beta1: np.float32,
    beta2: np.float32,
    eps: np.float32,
    weight_decay: np.float32,
) -> tuple[Array, Array, Array]:
    """One Adam step: ``(new param, new exp_avg, new exp_avg_sq)``."""
    w1 = F32(F32(1.0) - beta1)
    w2 = F32(F32(1.0) - beta2)
    if E.untraced:
        constants = np.array(
            [
                weight_decay,
                w1,
                F32(F32(1.0) - w1),
                beta2,
                w2,
                scalars.bc2_sqrt,
                eps,
                scalars.step_size,
            ],
            dtype=np.float32,
        )
        fused = E.kernels.fused_adam(param, grad, exp_avg, exp_avg_sq, constants)
        if fused is not None:
            return fused
    if weight_decay:
        grad = E.add(grad, E.mul(param, weight_decay))
    diff = E.sub(grad, exp_avg)
    if w1 < F32(0.5):
        exp_avg = E.add(exp_avg, E.mul(diff, w1))
    else:
        exp_avg = E.sub(grad, E.mul(diff, F32(F32(1.0) - w1)))
    exp_avg_sq = E.add(E.mul(exp_avg_sq, beta2), E.mul(E.mul(grad, w2), grad))
    denom = E.add(E.div(E.sqrt(exp_avg_sq), scalars.bc2_sqrt), eps)
    param = E.sub(param, E.mul(E.div(exp_avg, denom), scalars.step_size))
    return param, exp_avg, exp_avg_sq
