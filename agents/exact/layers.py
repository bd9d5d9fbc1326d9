"""Layers with explicit forward and backward passes, built only from trace operations.

Each ``*_forward`` returns its output and a ``Backward``: a function from the
gradient of the output to the gradient of the input (``None`` when the input
needs none), which also stores the gradients of the layer's parameters in the
``Grads`` mapping under the parameter's name. Parameter shapes and names are
those of ``agents.learning.models`` (torch's conventions: a linear weight is
``[out, in]``, a conv weight ``[out, in, k, k]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from agents.exact.composites import mean, softmax_backward, softmax_probabilities
from agents.exact.kernels import Array
from agents.exact.ops import ChainPlan, ExactOps, Imm
from agents.exact.trace import Op

Params = Mapping[str, Array]
Grads = dict[str, Array]
Backward = Callable[[Array], Array | None]


def _rows(x: Array) -> int:
    return int(x.shape[0])


def linear_forward(
    E: ExactOps, params: Params, grads: Grads, name: str, x: Array, *, input_grad: bool = True
) -> tuple[Array, Backward]:
    """``y = matmul_nt(x, W) + b`` for ``x [N, in]`` (the bias added when the layer has one)."""
    weight = params[f"{name}.weight"]
    bias = params.get(f"{name}.bias")
    y = E.linear_forward(x, weight, bias)  # traced: the same ops, recorded in one call
    if y is None:
        y = E.matmul_nt(x, weight)
        if bias is not None:
            y = E.add(y, bias)

    def backward(dy: Array) -> Array | None:
        # dW = dyᵀ·x and dx = dy·W, both as matmul_nt of explicit transposes.
        done = E.linear_backward(dy, x, weight, bias is not None, input_grad)
        if done is not None:  # traced: the same ops, recorded in one call
            grads[f"{name}.weight"], db, dx = done
            if db is not None:
                grads[f"{name}.bias"] = db
            return dx
        grads[f"{name}.weight"] = E.matmul_nt(E.swap_last(dy), E.swap_last(x))
        if bias is not None:
            grads[f"{name}.bias"] = E.reshape(E.sum(dy, 0), [int(dy.shape[1])])
        if not input_grad:
            return None
        return E.matmul_nt(dy, E.swap_last(weight))

    return y, backward


def relu_forward(E: ExactOps, x: Array) -> tuple[Array, Backward]:
    """``y = maximum(x, +0)``; backward passes ``dy`` where ``x > 0``, ``+0`` elsewhere."""
    y = E.maximum(x, 0.0)

    def backward(dy: Array) -> Array:
        return E.select(E.lt(0.0, x), dy, 0.0)

    return y, backward


def silu_forward(E: ExactOps, x: Array) -> tuple[Array, Backward]:
    """``s = 1 / (exp(-x) + 1)``, ``y = x · s``; backward ``dx = dy · (s · ((x · (1 - s)) + 1))``.

    Smooth, unlike ReLU: inputs that differ by rounding give outputs and gradients that
    differ by rounding, never by a branch taken on one side of zero and not the other."""
    chained = _silu_chain(E, x) if E.tracer is not None else None
    if chained is not None:
        s, y = chained
    else:
        s = E.div(1.0, E.add(E.exp(E.neg(x)), 1.0))
        y = E.mul(x, s)

    def backward(dy: Array) -> Array:
        done = _silu_backward_chain(E, s, x, dy) if E.tracer is not None else None
        if done is not None:
            return done
        return E.mul(dy, E.mul(s, E.add(E.mul(x, E.sub(1.0, s)), 1.0)))

    return y, backward


def _silu_plans() -> tuple[ChainPlan, ChainPlan]:
    forward = ChainPlan(1)  # x; immediate 1
    s = forward(Op.DIV, Imm(0), forward(Op.ADD, forward(Op.EXP, forward(Op.NEG, 0)), Imm(0)))
    forward(Op.MUL, 0, s)
    backward = ChainPlan(3)  # s, x, dy; immediate 1
    slope = backward(
        Op.MUL, 0, backward(Op.ADD, backward(Op.MUL, 1, backward(Op.SUB, Imm(0), 0)), Imm(0))
    )
    backward(Op.MUL, 2, slope)
    return forward, backward


# ``silu_forward``'s ops as chains: forward, (s, y) the last two registers; backward, dx the last.
_SILU, _SILU_BACKWARD = _silu_plans()
_ONES = np.ones(1, dtype=np.float32)


def _silu_chain(E: ExactOps, x: Array) -> tuple[Array, Array] | None:
    registers = E.run_chain(_SILU, [x], _ONES)
    return None if registers is None else (registers[-2], registers[-1])


def _silu_backward_chain(E: ExactOps, s: Array, x: Array, dy: Array) -> Array | None:
    registers = E.run_chain(_SILU_BACKWARD, [s, x, dy], _ONES)
    return None if registers is None else registers[-1]


def activation_forward(E: ExactOps, name: str, x: Array) -> tuple[Array, Backward]:
    """The spec's activation by name: ``relu`` or ``silu``."""
    if name == "relu":
        return relu_forward(E, x)
    if name == "silu":
        return silu_forward(E, x)
    raise ValueError(f"unknown activation {name!r} (relu or silu)")


def conv2d_forward(
    E: ExactOps,
    params: Params,
    grads: Grads,
    name: str,
    x: Array,
    *,
    stride: int,
    padding: int,
    input_grad: bool = True,
) -> tuple[Array, Backward]:
    """2-D convolution of ``x [B, C, H, W]``: ``im2col``, ``matmul_nt`` with the weight
    flattened to ``[out, C·k·k]``, bias added, back to ``[B, out, OH, OW]``."""
    weight = params[f"{name}.weight"]
    bias = params[f"{name}.bias"]
    out_channels, _, kernel, _ = (int(d) for d in weight.shape)
    batch, channels, height, width = (int(d) for d in x.shape)
    oh = (height + 2 * padding - kernel) // stride + 1
    ow = (width + 2 * padding - kernel) // stride + 1
    done = E.conv2d_forward(x, weight, bias, stride, padding)
    if done is not None:  # traced: the same ops, recorded in one call
        cols, flat_weight, y = done
    else:
        cols = E.im2col(x, kernel, stride, padding)
        flat_weight = E.reshape(weight, [out_channels, channels * kernel * kernel])
        y = E.add(E.matmul_nt(cols, flat_weight), bias)
        y = E.transpose(E.reshape(y, [batch, oh, ow, out_channels]), [0, 3, 1, 2])

    def backward(dy: Array) -> Array | None:
        image = [batch, channels, height, width]
        done = E.conv2d_backward(dy, cols, flat_weight, image, kernel, stride, padding, input_grad)
        if done is not None:  # traced: the same ops, recorded in one call
            grads[f"{name}.bias"], grads[f"{name}.weight"], dx = done
            return dx
        g = E.reshape(E.transpose(dy, [0, 2, 3, 1]), [batch * oh * ow, out_channels])
        grads[f"{name}.bias"] = E.reshape(E.sum(g, 0), [out_channels])
        dw = E.matmul_nt(E.swap_last(g), E.swap_last(cols))
        grads[f"{name}.weight"] = E.reshape(dw, [int(d) for d in weight.shape])
        if not input_grad:
            return None
        dcols = E.matmul_nt(g, E.swap_last(flat_weight))
        return E.col2im(dcols, [batch, channels, height, width], kernel, stride, padding)

    return y, backward


def embedding_forward(
    E: ExactOps, params: Params, grads: Grads, name: str, index: Array
) -> tuple[Array, Backward]:
    """Rows of the table at ``index [B, T]`` (float32 integers): ``[B, T, width]``."""
    table = params[f"{name}.weight"]
    rows, width = (int(d) for d in table.shape)
    batch, time = (int(d) for d in index.shape)
    flat_index = E.reshape(index, [batch * time])
    y = E.reshape(E.index_select(table, flat_index, 0), [batch, time, width])

    def backward(dy: Array) -> None:
        flat = E.reshape(dy, [batch * time, width])
        grads[f"{name}.weight"] = E.scatter_add(flat, flat_index, rows)

    return y, backward


@dataclass
class _Normalized:
    xhat: Array
    rstd: Array


def _layer_norm_plans() -> tuple[ChainPlan, int, int, ChainPlan]:
    # Immediates: the width C, eps, 1.
    forward = ChainPlan(3, "FCC")  # x, weight, bias
    centered = forward(Op.SUB, 0, forward(Op.DIV, forward(Op.SUM, 0), Imm(0)))
    squares = forward(Op.MUL, centered, centered)
    variance = forward(Op.DIV, forward(Op.SUM, squares), Imm(0))
    root = forward(Op.SQRT, forward(Op.ADD, variance, Imm(1)))
    rstd = forward(Op.DIV, Imm(2), root)
    xhat = forward(Op.MUL, centered, rstd)
    forward(Op.ADD, forward(Op.MUL, xhat, 1), 2)
    backward = ChainPlan(4, "FCFR")  # dy, weight, xhat, rstd: dx after the parameter grads
    dxhat = backward(Op.MUL, 0, 1)
    m1 = backward(Op.DIV, backward(Op.SUM, dxhat), Imm(0))
    m2 = backward(Op.DIV, backward(Op.SUM, backward(Op.MUL, dxhat, 2)), Imm(0))
    shifted = backward(Op.SUB, backward(Op.SUB, dxhat, m1), backward(Op.MUL, 2, m2))
    backward(Op.MUL, shifted, 3)
    return forward, xhat, rstd, backward


# ``layer_norm_forward``'s ops (y the last register) and its backward pass's after the
# parameter gradients (dx the last) as chains, for a tracer.
_LAYER_NORM, _LN_XHAT, _LN_RSTD, _LAYER_NORM_BACKWARD = _layer_norm_plans()


def layer_norm_forward(
    E: ExactOps, params: Params, grads: Grads, name: str, x: Array, eps: float
) -> tuple[Array, Backward]:
    """Layer norm over the last axis of ``x [N, C]``:
    ``mean = sum(x)/C``, ``d = x - mean``, ``var = sum(d·d)/C``, ``rstd = 1/sqrt(var + eps)``,
    ``xhat = d·rstd``, ``y = xhat·w + b``."""
    weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
    width = int(x.shape[-1])
    fused = E.kernels.fused_layer_norm(x, weight, bias, np.float32(eps)) if E.untraced else None
    if fused is not None:
        y, xhat, rstd = fused

        def fused_backward(dy: Array) -> Array:
            done = E.kernels.fused_layer_norm_backward(dy, xhat, rstd, weight)
            assert done is not None
            dx, grads[f"{name}.weight"], grads[f"{name}.bias"] = done
            return dx

        return y, fused_backward
    imms = np.array([float(width), eps, 1.0], dtype=np.float32) if not E.untraced else None
    chained = None if imms is None else E.run_chain(_LAYER_NORM, [x, weight, bias], imms)
    if chained is not None:
        state = _Normalized(chained[_LN_XHAT], chained[_LN_RSTD])
        y = chained[-1]
    else:
        centered = E.sub(x, mean(E, x, -1))
        variance = mean(E, E.mul(centered, centered), -1)
        rstd = E.div(1.0, E.sqrt(E.add(variance, eps)))
        state = _Normalized(E.mul(centered, rstd), rstd)
        y = E.add(E.mul(state.xhat, weight), bias)

    def backward(dy: Array) -> Array:
        grads[f"{name}.weight"] = E.reshape(E.sum(E.mul(dy, state.xhat), 0), [width])
        grads[f"{name}.bias"] = E.reshape(E.sum(dy, 0), [width])
        if imms is not None:
            inputs = [dy, weight, state.xhat, state.rstd]
            done = E.run_chain(_LAYER_NORM_BACKWARD, inputs, imms)
            if done is not None:
                return done[-1]
        dxhat = E.mul(dy, weight)
        m1 = mean(E, dxhat, -1)
        m2 = mean(E, E.mul(dxhat, state.xhat), -1)
        return E.mul(E.sub(E.sub(dxhat, m1), E.mul(state.xhat, m2)), state.rstd)

    return y, backward


def attention_forward(
    E: ExactOps,
    params: Params,
    grads: Grads,
    name: str,
    x: Array,
    *,
    batch: int,
    time: int,
    heads: int,
    scale: float,
) -> tuple[Array, Backward]:
    """Causal multi-head self-attention of ``x [B·T, C]``, written out:
    q, k, v linears (k without bias), split into heads ``[B, H, T, D]``,
    ``s = matmul_nt(q, k) · scale``, causal fill with ``-inf``, softmax,
    ``o = matmul_nt(p, vᵀ)``, heads merged, output linear."""
    width = int(x.shape[1])
    head = width // heads

    def split(t: Array) -> Array:
        return E.transpose(E.reshape(t, [batch, time, heads, head]), [0, 2, 1, 3])

    def merge(t: Array) -> Array:
        return E.reshape(E.transpose(t, [0, 2, 1, 3]), [batch * time, width])

    q_flat, q_back = linear_forward(E, params, grads, f"{name}.query", x)
    k_flat, k_back = linear_forward(E, params, grads, f"{name}.key", x)
    v_flat, v_back = linear_forward(E, params, grads, f"{name}.value", x)
    q, k, v = split(q_flat), split(k_flat), split(v_flat)
    scores = E.causal_fill(E.mul(E.matmul_nt(q, k), scale), float("-inf"))
    probabilities = softmax_probabilities(E, scores)
    o = E.matmul_nt(probabilities, E.swap_last(v))
    y, out_back = linear_forward(E, params, grads, f"{name}.output", merge(o))

    def backward(dy: Array) -> Array:
        d_merged = out_back(dy)
        do = split(d_merged)
        dp = E.matmul_nt(do, v)
        dv = E.matmul_nt(E.swap_last(probabilities), E.swap_last(do))
        ds = E.mul(E.causal_fill(softmax_backward(E, probabilities, dp), 0.0), scale)
        dq = E.matmul_nt(ds, E.swap_last(k))
        dk = E.matmul_nt(E.swap_last(ds), E.swap_last(q))
        dx_q = q_back(merge(dq))
        dx_k = k_back(merge(dk))
        dx_v = v_back(merge(dv))
        return E.add(E.add(dx_q, dx_k), dx_v)

    return y, backward
