"""Explicit backward passes against torch autograd in float64, layer by layer and for
whole models, and the loss composites against torch's losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional

from agents.exact.composites import cross_entropy, mse
from agents.exact.cpu import CpuKernels
from agents.exact.eager import EagerKernels
from agents.exact.layers import (
    Grads,
    attention_forward,
    conv2d_forward,
    embedding_forward,
    layer_norm_forward,
    linear_forward,
    relu_forward,
    silu_forward,
)
from agents.exact.ops import ExactOps
from agents.learning.backends.exact_models import ExactCNN, ExactMLP, ExactTransformer
from agents.learning.models import CNN, MLP, CausalSelfAttention, Transformer
from agents.learning.spec import CNNSpec, ConvSpec, MLPSpec, TransformerSpec

RTOL = 2e-4  # float32 round-off through a few layers, relative to the largest entry


@pytest.fixture(scope="module", name="E")
def exact_ops() -> ExactOps:
    return ExactOps(CpuKernels())


def _close(got: np.ndarray | None, want: torch.Tensor | None, what: str) -> None:
    assert got is not None and want is not None, f"{what}: no value"
    reference = want.detach().numpy()
    scale = max(float(np.abs(reference).max()), 1e-30)
    error = float(np.abs(got.astype(np.float64) - reference).max())
    assert got.shape == reference.shape, f"{what}: shape {got.shape} != {reference.shape}"
    assert error <= RTOL * scale, f"{what}: max error {error:.3g} vs scale {scale:.3g}"


def _f32(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _backward(y: torch.Tensor, dy: torch.Tensor | None = None) -> None:
    y.backward(dy)  # type: ignore[no-untyped-call]


def _leaf(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def test_linear_and_relu(E: ExactOps) -> None:
    rng = np.random.default_rng(1)
    x, w, b = _f32(rng, 7, 5), _f32(rng, 4, 5), _f32(rng, 4)
    dy = _f32(rng, 7, 4)
    grads: Grads = {}
    y, back = linear_forward(E, {"l.weight": w, "l.bias": b}, grads, "l", x)
    r, relu_back = relu_forward(E, y)
    dx = back(relu_back(dy))
    tx, tw, tb = _leaf(x), _leaf(w), _leaf(b)
    ty = torch.relu(tx @ tw.T + tb)
    _backward(ty, torch.tensor(dy, dtype=torch.float64))
    _close(r, ty, "forward")
    _close(dx, tx.grad, "dx")
    _close(grads["l.weight"], tw.grad, "dW")
    _close(grads["l.bias"], tb.grad, "db")


def test_silu_against_autograd(E: ExactOps) -> None:
    rng = np.random.default_rng(11)
    x = _f32(rng, 9, 13, scale=6.0)
    dy = _f32(rng, 9, 13)
    y, back = silu_forward(E, x)
    dx = back(dy)
    tx = _leaf(x)
    ty = functional.silu(tx)
    _backward(ty, torch.tensor(dy, dtype=torch.float64))
    # Elementwise, so close per element, not only to the largest entry.
    for got, want, what in ((y, ty, "forward"), (dx, tx.grad, "dx")):
        assert got is not None and want is not None, what
        reference = want.detach().numpy()
        error = np.abs(got.astype(np.float64) - reference)
        assert (error <= 1e-5 * np.abs(reference) + 1e-30).all(), what


def test_silu_is_the_same_sequence_on_both_paths() -> None:
    rng = np.random.default_rng(12)
    edge = np.array(
        [
            0.0,
            -0.0,
            1e-45,
            -1e-45,
            1e-38,
            -88.0,
            -89.5,
            -104.5,
            -200.0,
            88.0,
            120.0,
            3e38,
            -3e38,
            np.inf,
            -np.inf,
            np.nan,
        ],
        dtype=np.float32,
    )
    x = np.concatenate([edge, _f32(rng, 4000, scale=30.0)])
    dy = np.concatenate([np.ones_like(edge), _f32(rng, 4000)])
    results = []
    for kernels in (CpuKernels(), EagerKernels("cpu")):
        ops = ExactOps(kernels)
        y, back = silu_forward(ops, kernels.from_numpy(x))
        dx = back(kernels.from_numpy(dy))
        assert dx is not None
        results.append((kernels.to_numpy(y).view(np.uint32), kernels.to_numpy(dx).view(np.uint32)))
    (y_cpu, dx_cpu), (y_eager, dx_eager) = results
    assert np.array_equal(y_cpu, y_eager) and np.array_equal(dx_cpu, dx_eager)
    y = y_cpu.view(np.float32)[: len(edge)]
    assert y[0] == 0 and y[-1] != y[-1]  # silu(0) = 0, NaN stays NaN
    assert y[13] == np.inf  # silu(+inf) = +inf: exp(-inf) = +0, the sigmoid is 1
    assert (np.abs(y[5:9]) < 1e-36).all()  # far left: the clamped exp makes it vanish


@pytest.mark.parametrize(("stride", "padding"), [(1, 1), (2, 1), (1, 0), (2, 0)])
def test_conv2d(E: ExactOps, stride: int, padding: int) -> None:
    rng = np.random.default_rng(2)
    x, w, b = _f32(rng, 2, 3, 7, 6), _f32(rng, 4, 3, 3, 3), _f32(rng, 4)
    grads: Grads = {}
    params = {"c.weight": w, "c.bias": b}
    y, back = conv2d_forward(E, params, grads, "c", x, stride=stride, padding=padding)
    dy = _f32(rng, *y.shape)
    dx = back(dy)
    tx, tw, tb = _leaf(x), _leaf(w), _leaf(b)
    ty = functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
    _backward(ty, torch.tensor(dy, dtype=torch.float64))
    _close(y, ty, "forward")
    _close(dx, tx.grad, "dx")
    _close(grads["c.weight"], tw.grad, "dW")
    _close(grads["c.bias"], tb.grad, "db")


def test_embedding(E: ExactOps) -> None:
    rng = np.random.default_rng(3)
    table = _f32(rng, 11, 6)
    index = rng.integers(0, 11, (3, 5))
    grads: Grads = {}
    y, back = embedding_forward(E, {"e.weight": table}, grads, "e", index.astype(np.float32))
    dy = _f32(rng, 3, 5, 6)
    back(dy)
    tt = _leaf(table)
    ty = functional.embedding(torch.tensor(index), tt)
    _backward(ty, torch.tensor(dy, dtype=torch.float64))
    _close(y, ty, "forward")
    _close(grads["e.weight"], tt.grad, "dW")


def test_layer_norm(E: ExactOps) -> None:
    rng = np.random.default_rng(4)
    x, w, b = _f32(rng, 9, 12, scale=3.0), _f32(rng, 12), _f32(rng, 12)
    grads: Grads = {}
    y, back = layer_norm_forward(E, {"n.weight": w, "n.bias": b}, grads, "n", x, 1e-5)
    dy = _f32(rng, 9, 12)
    dx = back(dy)
    tx, tw, tb = _leaf(x), _leaf(w), _leaf(b)
    ty = functional.layer_norm(tx, (12,), tw, tb, eps=1e-5)
    _backward(ty, torch.tensor(dy, dtype=torch.float64))
    _close(y, ty, "forward")
    _close(dx, tx.grad, "dx")
    _close(grads["n.weight"], tw.grad, "dW")
    _close(grads["n.bias"], tb.grad, "db")


def test_attention(E: ExactOps) -> None:
    rng = np.random.default_rng(5)
    batch, time, width, heads = 2, 6, 8, 2
    module = CausalSelfAttention(width, heads).double()
    params = {}
    with torch.no_grad():
        for name, p in module.named_parameters():
            value = _f32(rng, *p.shape, scale=0.5)
            p.copy_(torch.tensor(value, dtype=torch.float64))
            params[f"a.{name}"] = value
    x = _f32(rng, batch * time, width)
    grads: Grads = {}
    y, back = attention_forward(
        E, params, grads, "a", x, batch=batch, time=time, heads=heads, scale=module.scale
    )
    dy = _f32(rng, batch * time, width)
    dx = back(dy)
    assert dx is not None
    tx = _leaf(x.reshape(batch, time, width))
    ty = module(tx)
    ty.backward(torch.tensor(dy.reshape(batch, time, width), dtype=torch.float64))
    _close(y.reshape(batch, time, width), ty, "forward")
    _close(dx.reshape(batch, time, width), tx.grad, "dx")
    for name, p in module.named_parameters():
        _close(grads[f"a.{name}"], p.grad, name)


def test_losses(E: ExactOps) -> None:
    rng = np.random.default_rng(6)
    logits = _f32(rng, 10, 7, scale=4.0)
    targets = rng.integers(0, 7, 10)
    loss, grad = cross_entropy(E, logits, targets.astype(np.float32))
    tl = _leaf(logits)
    tloss = functional.cross_entropy(tl, torch.tensor(targets))
    _backward(tloss)
    _close(loss.reshape(()), tloss, "cross-entropy")
    _close(grad, tl.grad, "dlogits")
    output, target = _f32(rng, 5, 3), _f32(rng, 5, 3)
    loss, grad = mse(E, output, target)
    to = _leaf(output)
    tloss = functional.mse_loss(to, torch.tensor(target, dtype=torch.float64))
    _backward(tloss)
    _close(loss.reshape(()), tloss, "mse")
    _close(grad, to.grad, "doutput")


MODELS = [
    (MLPSpec(kind="mlp", inputs=12, hidden=(9, 7), outputs=5), (6, 12)),
    (MLPSpec(kind="mlp", inputs=12, hidden=(9, 7), outputs=5, activation="silu"), (6, 12)),
    (
        CNNSpec(
            kind="cnn",
            input=(2, 7, 7),
            convs=(
                ConvSpec(channels=3, kernel=3, padding=1),
                ConvSpec(channels=4, kernel=3, stride=2, padding=1),
            ),
            hidden=(6,),
            outputs=5,
        ),
        (3, 2, 7, 7),
    ),
    (
        TransformerSpec(kind="transformer", vocab=9, context=5, width=8, heads=2, layers=2, ff=12),
        (3, 5),
    ),
    (
        TransformerSpec(
            kind="transformer",
            vocab=9,
            context=5,
            width=8,
            heads=2,
            layers=2,
            ff=12,
            activation="silu",
        ),
        (3, 5),
    ),
]


@pytest.mark.parametrize(
    ("spec", "input_shape"),
    MODELS,
    ids=["mlp", "mlp-silu", "cnn", "transformer", "transformer-silu"],
)
def test_model_gradients(E: ExactOps, spec: object, input_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7)
    module: torch.nn.Module
    exact: ExactMLP | ExactCNN | ExactTransformer
    if isinstance(spec, MLPSpec):
        module, exact = MLP(spec), ExactMLP(spec)
    elif isinstance(spec, CNNSpec):
        module, exact = CNN(spec), ExactCNN(spec)
    else:
        assert isinstance(spec, TransformerSpec)
        module, exact = Transformer(spec), ExactTransformer(spec)
    module = module.double()
    params = {}
    with torch.no_grad():
        for name, p in module.named_parameters():
            value = _f32(rng, *p.shape, scale=0.5)
            p.copy_(torch.tensor(value, dtype=torch.float64))
            params[name] = value
    if isinstance(spec, TransformerSpec):
        x_int = rng.integers(0, spec.vocab, input_shape)
        x = x_int.astype(np.float32)
        tx: torch.Tensor = torch.tensor(x_int)
    else:
        x = _f32(rng, *input_shape)
        tx = torch.tensor(x, dtype=torch.float64)
    grads: Grads = {}
    out, backward = exact.forward(E, params, grads, x)
    dout = _f32(rng, *out.shape)
    backward(dout)
    tout = module(tx)
    tout.backward(torch.tensor(dout.reshape(tout.shape), dtype=torch.float64))
    _close(out.reshape(tout.shape), tout, "output")
    assert set(grads) == {name for name, _ in module.named_parameters()}
    for name, p in module.named_parameters():
        _close(grads[name], p.grad, name)
