"""Fused CPU kernels (used when nothing is traced) give the bits of the op-by-op
sequences they replace, special values included."""

from __future__ import annotations

import numpy as np
import pytest

from agents.exact.composites import softmax_backward, softmax_probabilities
from agents.exact.cpu import CpuKernels
from agents.exact.layers import Grads, layer_norm_forward
from agents.exact.ops import ExactOps, Tracer
from agents.exact.optim import adam_scalars, adam_update, sgd_update
from tests.exact.conftest import assert_bits_equal
from tests.exact.edge import edge_values

F32 = np.float32


def _pair() -> tuple[ExactOps, ExactOps]:
    """(fused, op by op): a tracer turns the fused kernels off."""
    kernels = CpuKernels()
    return ExactOps(kernels), ExactOps(kernels, Tracer(kernels))


def _values(rng: np.random.Generator, *shape: int, special: bool) -> np.ndarray:
    values = (rng.standard_normal(shape) * 3).astype(F32)
    if special:
        flat = values.reshape(-1)
        picks = rng.integers(0, flat.size, max(1, flat.size // 20))
        flat[picks] = rng.choice(edge_values(), picks.size)
    return values


@pytest.mark.parametrize("special", [False, True], ids=["normal", "special"])
def test_layer_norm(special: bool) -> None:
    rng = np.random.default_rng(1)
    x, w, b = (
        _values(rng, 37, 24, special=special),
        _values(rng, 24, special=False),
        _values(rng, 24, special=False),
    )
    dy = _values(rng, 37, 24, special=special)
    results = []
    for E in _pair():
        grads: Grads = {}
        y, back = layer_norm_forward(E, {"n.weight": w, "n.bias": b}, grads, "n", x, 1e-5)
        dx = back(dy)
        results.append((y, dx, grads["n.weight"], grads["n.bias"]))
    for got, want, what in zip(results[0], results[1], ("y", "dx", "dw", "db"), strict=True):
        assert_bits_equal(got, want, what)


@pytest.mark.parametrize("special", [False, True], ids=["normal", "special"])
def test_softmax(special: bool) -> None:
    rng = np.random.default_rng(2)
    x = _values(rng, 3, 5, 17, special=special)
    x[0, 0, 3:] = -np.inf  # a masked row, as attention has
    dp = _values(rng, 3, 5, 17, special=special)
    results = []
    for E in _pair():
        p = softmax_probabilities(E, x)
        results.append((p, softmax_backward(E, p, dp)))
    assert_bits_equal(results[0][0], results[1][0], "softmax")
    assert_bits_equal(results[0][1], results[1][1], "softmax backward")


@pytest.mark.parametrize("special", [False, True], ids=["normal", "special"])
@pytest.mark.parametrize("beta1", [0.9, 0.3])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam(special: bool, beta1: float, weight_decay: float) -> None:
    rng = np.random.default_rng(3)
    p, g = _values(rng, 301, special=special), _values(rng, 301, special=special)
    m, v = _values(rng, 301, special=False), np.abs(_values(rng, 301, special=False))
    scalars = adam_scalars(F32(0.003), F32(beta1), F32(0.999), 7)
    results = [
        adam_update(
            E, p, g, m, v, scalars=scalars, beta1=F32(beta1), beta2=F32(0.999),
            eps=F32(1e-8), weight_decay=F32(weight_decay),
        )
        for E in _pair()
    ]  # fmt: skip
    for got, want, what in zip(results[0], results[1], ("param", "m", "v"), strict=True):
        assert_bits_equal(got, want, what)


@pytest.mark.parametrize("special", [False, True], ids=["normal", "special"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd(special: bool, momentum: float) -> None:
    rng = np.random.default_rng(4)
    p, g = _values(rng, 300, special=special), _values(rng, 300, special=special)
    buffer = _values(rng, 300, special=False) if momentum else None
    results = [
        sgd_update(E, p, g, buffer, lr=F32(0.05), momentum=F32(momentum), weight_decay=F32(1e-4))
        for E in _pair()
    ]
    assert_bits_equal(results[0][0], results[1][0], "param")
    if momentum:
        assert results[0][1] is not None and results[1][1] is not None
        assert_bits_equal(results[0][1], results[1][1], "momentum")
    else:
        assert results[0][1] is None and results[1][1] is None


def test_pow32() -> None:
    from agents.exact.optim import pow32

    assert pow32(F32(0.9), 0) == 1 and pow32(F32(0.9), 1) == F32(0.9)
    r = F32(1.0)
    for _ in range(5):
        r = F32(r * F32(0.9))
    assert abs(float(pow32(F32(0.9), 5)) - float(r)) <= 2e-7
    assert abs(float(pow32(F32(0.999), 1000)) - 0.999**1000) < 1e-5
