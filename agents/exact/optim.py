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

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.exact.kernels import Array
from agents.exact.ops import ChainPlan, ExactOps, Imm, Scalar
from agents.exact.trace import Op

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
    else:
        chained = _sgd_chain(E, param, grad, momentum_buffer, lr, momentum, weight_decay)
        if chained is not None:
            return chained
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
    constants = _adam_constants(scalars, beta1, beta2, eps, weight_decay)
    fused = (
        E.kernels.fused_adam(param, grad, exp_avg, exp_avg_sq, constants)
        if E.untraced
        else _adam_chain(E, param, grad, exp_avg, exp_avg_sq, constants)
    )
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


def sgd_updates(
    E: ExactOps,
    params: Sequence[Array],
    grads: Sequence[Array],
    momentum_buffers: Sequence[Array | None],
    *,
    lr: Scalar,
    momentum: np.float32,
    weight_decay: np.float32,
) -> list[tuple[Array, Array | None]]:
    """``sgd_update`` of each parameter in turn; traced, their chains run as one kernel call
    where the path has one (the same records, one parameter after another)."""
    buffered = {b is not None for b in momentum_buffers}
    if not E.untraced and len(buffered) == 1:
        has_buffer = buffered.pop()
        plan = _sgd_plan(bool(weight_decay), has_buffer)
        groups = [
            [p, g, b] if has_buffer else [p, g]
            for p, g, b in zip(params, grads, momentum_buffers, strict=True)
        ]
        imms = np.array([weight_decay, momentum, lr], dtype=np.float32)
        done = E.run_chains(plan, groups, imms)
        if done is not None:
            return [(r[-1], r[-3] if has_buffer else None) for r in done]
    return [
        sgd_update(E, p, g, b, lr=lr, momentum=momentum, weight_decay=weight_decay)
        for p, g, b in zip(params, grads, momentum_buffers, strict=True)
    ]


def adam_updates(
    E: ExactOps,
    params: Sequence[Array],
    grads: Sequence[Array],
    exp_avgs: Sequence[Array],
    exp_avg_sqs: Sequence[Array],
    *,
    scalars: AdamScalars,
    beta1: np.float32,
    beta2: np.float32,
    eps: np.float32,
    weight_decay: np.float32,
) -> list[tuple[Array, Array, Array]]:
    """``adam_update`` of each parameter in turn; traced, their chains run as one kernel call
    where the path has one (the same records, one parameter after another)."""
    if not E.untraced:
        imms = _adam_constants(scalars, beta1, beta2, eps, weight_decay)
        plan, m, v = _adam_plan(bool(imms[0]), bool(imms[1] < F32(0.5)))
        groups = [list(inputs) for inputs in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True)]
        done = E.run_chains(plan, groups, imms)
        if done is not None:
            return [(r[-1], r[m], r[v]) for r in done]
    return [
        adam_update(
            E,
            p,
            g,
            a,
            q,
            scalars=scalars,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
        )
        for p, g, a, q in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True)
    ]


def _adam_constants(
    scalars: AdamScalars,
    beta1: np.float32,
    beta2: np.float32,
    eps: np.float32,
    weight_decay: np.float32,
) -> np.ndarray:
    """``adam_update``'s immediates: ``wd, w1, 1 - w1, beta2, w2, bc2_sqrt, eps, step_size``."""
    w1 = F32(F32(1.0) - beta1)
    w2 = F32(F32(1.0) - beta2)
    return np.array(
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


@functools.cache
def _sgd_plan(decay: bool, momentum: bool) -> ChainPlan:
    """``sgd_update``'s ops over ``param, grad[, buffer]``; immediates ``wd, momentum, lr``."""
    c = ChainPlan(3 if momentum else 2)
    g = 1
    if decay:
        g = c(Op.ADD, 1, c(Op.MUL, 0, Imm(0)))
    update = g
    if momentum:
        update = c(Op.ADD, c(Op.MUL, 2, Imm(1)), g)
    c(Op.SUB, 0, c(Op.MUL, update, Imm(2)))
    return c


def _sgd_chain(
    E: ExactOps,
    param: Array,
    grad: Array,
    momentum_buffer: Array | None,
    lr: Scalar,
    momentum: np.float32,
    weight_decay: np.float32,
) -> tuple[Array, Array | None] | None:
    """``sgd_update``'s ops one by one, as one chain (``None``: run them one by one)."""
    has_buffer = momentum_buffer is not None
    plan = _sgd_plan(bool(weight_decay), has_buffer)
    inputs = [param, grad, momentum_buffer] if has_buffer else [param, grad]
    imms = np.array([weight_decay, momentum, lr], dtype=np.float32)
    registers = E.run_chain(plan, inputs, imms)
    if registers is None:
        return None
    return registers[-1], (registers[-3] if has_buffer else None)


@functools.cache
def _adam_plan(decay: bool, low_w1: bool) -> tuple[ChainPlan, int, int]:
    """``adam_update``'s ops over ``param, grad, exp_avg, exp_avg_sq``; immediates ``wd, w1,
    1 - w1, beta2, w2, bc2_sqrt, eps, step_size``; the registers of the new ``exp_avg`` and
    ``exp_avg_sq`` (the new param is the last)."""
    c = ChainPlan(4)
    g = 1
    if decay:
        g = c(Op.ADD, 1, c(Op.MUL, 0, Imm(0)))
    diff = c(Op.SUB, g, 2)
    # torch's lerp: m + (g - m)·w1 for w1 < 0.5, else g - (g - m)·(1 - w1).
    lerp = (Op.ADD, 2, Imm(1)) if low_w1 else (Op.SUB, g, Imm(2))
    m = c(lerp[0], lerp[1], c(Op.MUL, diff, lerp[2]))
    decayed = c(Op.MUL, 3, Imm(3))
    v = c(Op.ADD, decayed, c(Op.MUL, c(Op.MUL, g, Imm(4)), g))
    denom = c(Op.ADD, c(Op.DIV, c(Op.SQRT, v), Imm(5)), Imm(6))
    c(Op.SUB, 0, c(Op.MUL, c(Op.DIV, m, denom), Imm(7)))
    return c, m, v


def _adam_chain(
    E: ExactOps, param: Array, grad: Array, exp_avg: Array, exp_avg_sq: Array, imms: np.ndarray
) -> tuple[Array, Array, Array] | None:
    """``adam_update``'s ops one by one, as one chain (``None``: run them one by one)."""
    plan, m, v = _adam_plan(bool(imms[0]), bool(imms[1] < F32(0.5)))
    registers = E.run_chain(plan, [param, grad, exp_avg, exp_avg_sq], imms)
    if registers is None:
        return None
    return registers[-1], registers[m], registers[v]
