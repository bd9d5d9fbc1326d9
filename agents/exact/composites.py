"""Composites that are sequences of trace operations (docs/exact.md, "Composites").

Each function states its sequence; the Solidity arbiter never needs these as
units, because every step is its own op record. (``exp`` and ``log`` are the
two composites that are single trace operations: see ``agents.exact.kernels``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.exact.kernels import Array
from agents.exact.ops import ChainPlan, ExactOps, Imm
from agents.exact.trace import Op


def mean(E: ExactOps, x: Array, axis: int) -> Array:
    """``sum(x, axis) / n``: one sequential sum, then one division (axis kept, size 1)."""
    n = int(x.shape[axis])
    return E.div(E.sum(x, axis), float(n))


@dataclass
class Softmax:
    """The parts of a softmax over the last axis that its users need again."""

    shifted: Array  # x - max(x)
    exps: Array  # exp(shifted)
    total: Array  # sum(exps), last axis kept
    probabilities: Array  # exps / total


def softmax(E: ExactOps, x: Array) -> Softmax:
    """``m = amax(x)``, ``z = x - m``, ``e = exp(z)``, ``s = sum(e)``, ``p = e / s`` (last axis)."""
    m = E.amax(x, -1)
    z = E.sub(x, m)
    e = E.exp(z)
    s = E.sum(e, -1)
    return Softmax(z, e, s, E.div(e, s))


def _softmax_plans() -> tuple[ChainPlan, ChainPlan, ChainPlan]:
    forward = ChainPlan(1)  # x
    m = forward(Op.AMAX, 0)
    e = forward(Op.EXP, forward(Op.SUB, 0, m))
    forward(Op.DIV, e, forward(Op.SUM, e))
    backward = ChainPlan(2)  # p, dp
    inner = backward(Op.SUM, backward(Op.MUL, 1, 0))
    backward(Op.MUL, 0, backward(Op.SUB, 1, inner))
    gradient = ChainPlan(2, "FF")  # probabilities, one-hot; immediate: the count
    gradient(Op.DIV, gradient(Op.SUB, 0, 1), Imm(0))
    return forward, backward, gradient


# ``softmax``'s ops (p the last register), ``softmax_backward``'s (dx the last) and the tail
# of ``cross_entropy_grad`` as chains (``agents.exact.ops.ChainPlan``) for a tracer.
_SOFTMAX, _SOFTMAX_BACKWARD, _CROSS_ENTROPY_TAIL = _softmax_plans()
_NO_IMMEDIATES = np.zeros(0, dtype=np.float32)


def softmax_probabilities(E: ExactOps, x: Array) -> Array:
    """Only ``p`` of ``softmax`` (one fused pass when nothing is traced and the path has one;
    traced, one chain where the tracer takes one)."""
    if E.untraced:
        fused = E.kernels.fused_softmax(x)
        if fused is not None:
            return fused
    else:
        chained = E.run_chain(_SOFTMAX, [x], _NO_IMMEDIATES)
        if chained is not None:
            return chained[-1]
    return softmax(E, x).probabilities


def softmax_backward(E: ExactOps, p: Array, dp: Array) -> Array:
    """``dx = p * (dp - sum(dp * p))`` along the last axis."""
    if E.untraced:
        fused = E.kernels.fused_softmax_backward(p, dp)
        if fused is not None:
            return fused
    else:
        chained = E.run_chain(_SOFTMAX_BACKWARD, [p, dp], _NO_IMMEDIATES)
        if chained is not None:
            return chained[-1]
    inner = E.sum(E.mul(dp, p), -1)
    return E.mul(p, E.sub(dp, inner))


def log_softmax(E: ExactOps, parts: Softmax) -> Array:
    """``z - log(s)`` from a softmax's shifted values and total."""
    return E.sub(parts.shifted, E.log(parts.total))


def cross_entropy(E: ExactOps, logits: Array, targets: Array) -> tuple[Array, Array]:
    """Mean cross-entropy of ``logits [N, C]`` against class indices ``targets [N]``.

    Returns ``(loss [1], dlogits [N, C])``: ``loss = -(sum of log_softmax at the
    targets) / N`` and ``dlogits = (softmax - one_hot(targets)) / N``.
    """
    n, classes = (int(d) for d in logits.shape)
    parts = softmax(E, logits)
    picked = E.take_along(log_softmax(E, parts), E.reshape(targets, [n, 1]))
    loss = E.div(E.neg(E.sum(E.reshape(picked, [n]), 0)), float(n))
    grad = E.div(E.sub(parts.probabilities, E.one_hot(targets, classes)), float(n))
    return loss, grad


def cross_entropy_grad(
    E: ExactOps, logits: Array, targets: Array, count: int | None = None
) -> Array:
    """Only ``dlogits`` of ``cross_entropy`` (the training step needs no loss value); the
    mean is over ``count`` rows when given (a slice of a larger batch), else over ``N``."""
    n, classes = (int(d) for d in logits.shape)
    probabilities = softmax_probabilities(E, logits)
    hot = E.one_hot(targets, classes)
    if not E.untraced:
        imms = np.array([float(count or n)], dtype=np.float32)
        chained = E.run_chain(_CROSS_ENTROPY_TAIL, [probabilities, hot], imms)
        if chained is not None:
            return chained[-1]
    return E.div(E.sub(probabilities, hot), float(count or n))


def mse(E: ExactOps, output: Array, target: Array) -> tuple[Array, Array]:
    """Mean squared error over all elements: ``(loss [1], doutput)``.

    ``d = output - target``; ``loss = sum(flat(d * d)) / n``; ``doutput = (d * 2) / n``.
    """
    n = int(np.prod(output.shape))
    d = E.sub(output, target)
    loss = E.div(E.sum(E.reshape(E.mul(d, d), [n]), 0), float(n))
    return loss, E.div(E.mul(d, 2.0), float(n))


def mse_grad(E: ExactOps, output: Array, target: Array, count: int | None = None) -> Array:
    """Only ``doutput`` of ``mse``; the mean is over ``count`` elements when given."""
    n = int(np.prod(output.shape))
    return E.div(E.mul(E.sub(output, target), 2.0), float(count or n))
