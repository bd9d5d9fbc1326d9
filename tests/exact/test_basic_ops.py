"""Every basic op, on both paths, against numpy float32 (IEEE hardware): bit-identical
on random bit patterns, ordinary values, edge classes and ties."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest

from agents.exact.kernels import Kernels
from tests.exact import reference as ref
from tests.exact.conftest import FAST_SAMPLES, SLOW_SAMPLES, assert_bits_equal
from tests.exact.edge import edge_pairs, edge_values, random_inputs, tie_pairs

Binary = Callable[[np.ndarray, np.ndarray], np.ndarray]

BINARY: list[tuple[str, Binary]] = [
    ("add", ref.add),
    ("sub", ref.sub),
    ("mul", ref.mul),
    ("div", ref.div),
    ("maximum", ref.maximum),
    ("minimum", ref.minimum),
    ("lt", ref.lt),
    ("le", ref.le),
    ("eq", ref.eq),
]
UNARY: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
    ("neg", ref.neg),
    ("abs", ref.abs_),
    ("sqrt", ref.sqrt),
]


def run(path: Kernels, name: str, *args: np.ndarray) -> np.ndarray:
    converted = [path.from_numpy(a) for a in args]
    return path.to_numpy(getattr(path, name)(*converted))


def check_binary(path: Kernels, name: str, reference: Binary, a: np.ndarray, b: np.ndarray) -> None:
    assert_bits_equal(run(path, name, a, b), reference(a, b), f"{path.name}.{name}")


@pytest.mark.parametrize(("name", "reference"), BINARY)
def test_binary_edge_classes(path: Kernels, name: str, reference: Binary) -> None:
    a, b = edge_pairs()
    check_binary(path, name, reference, a, b)
    ta, tb = tie_pairs()
    check_binary(path, name, reference, ta, tb)


@pytest.mark.parametrize(("name", "reference"), BINARY)
def test_binary_random(path: Kernels, name: str, reference: Binary) -> None:
    # Each op its own inputs, the same on every run (``hash`` of a str differs per process).
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    a, b = random_inputs(rng, FAST_SAMPLES), random_inputs(rng, FAST_SAMPLES)
    check_binary(path, name, reference, a, b)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "reference"), BINARY)
def test_binary_random_million(path: Kernels, name: str, reference: Binary) -> None:
    rng = np.random.default_rng(1000 + len(name))
    a, b = random_inputs(rng, SLOW_SAMPLES), random_inputs(rng, SLOW_SAMPLES)
    check_binary(path, name, reference, a, b)


@pytest.mark.parametrize(("name", "reference"), UNARY)
def test_unary(path: Kernels, name: str, reference: Callable[[np.ndarray], np.ndarray]) -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([edge_values(), random_inputs(rng, FAST_SAMPLES)])
    assert_bits_equal(run(path, name, x), reference(x), f"{path.name}.{name}")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "reference"), UNARY)
def test_unary_million(
    path: Kernels, name: str, reference: Callable[[np.ndarray], np.ndarray]
) -> None:
    x = random_inputs(np.random.default_rng(8), SLOW_SAMPLES)
    assert_bits_equal(run(path, name, x), reference(x), f"{path.name}.{name}")


def _select_inputs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    cond = random_inputs(rng, n)
    cond[: n // 4] = 0.0
    cond[n // 4 : n // 3] = -0.0
    return cond, random_inputs(rng, n), random_inputs(rng, n)


def test_select(path: Kernels) -> None:
    c, a, b = _select_inputs(np.random.default_rng(9), FAST_SAMPLES)
    edges = edge_values()
    c = np.concatenate([c, edges])
    a = np.concatenate([a, edges[::-1]])
    b = np.concatenate([b, edges])
    assert_bits_equal(run(path, "select", c, a, b), ref.select(c, a, b), f"{path.name}.select")


@pytest.mark.slow
def test_select_million(path: Kernels) -> None:
    c, a, b = _select_inputs(np.random.default_rng(10), SLOW_SAMPLES)
    assert_bits_equal(run(path, "select", c, a, b), ref.select(c, a, b), f"{path.name}.select")


def _ldexp_inputs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = random_inputs(rng, n)
    e = rng.integers(-320, 320, n).astype(np.float32)
    e[: n // 16] = random_inputs(rng, n // 16)  # non-integers, NaN, inf -> NaN or clamped
    return x, e


def test_ldexp(path: Kernels) -> None:
    x, e = _ldexp_inputs(np.random.default_rng(11), FAST_SAMPLES)
    a, b = edge_pairs()
    with np.errstate(invalid="ignore"):
        rounded = np.round(b.clip(-400, 400))
    x = np.concatenate([x, a, np.array([1.5, 1.75, 1.0, 3.0], dtype=np.float32)])
    e = np.concatenate([e, rounded, np.array([-149, -150, -150, -150], dtype=np.float32)])
    assert_bits_equal(run(path, "ldexp", x, e), ref.ldexp(x, e), f"{path.name}.ldexp")


@pytest.mark.slow
def test_ldexp_million(path: Kernels) -> None:
    x, e = _ldexp_inputs(np.random.default_rng(12), SLOW_SAMPLES)
    assert_bits_equal(run(path, "ldexp", x, e), ref.ldexp(x, e), f"{path.name}.ldexp")


def test_results_are_canonical_nan(path: Kernels) -> None:
    # inf - inf, 0 * inf, 0 / 0, sqrt(-1) and NaN payloads in: all 0x7FC00000 out.
    a = np.array([np.inf, 0.0, 0.0, np.nan], dtype=np.float32)
    b = np.array([np.inf, np.inf, 0.0, 1.0], dtype=np.float32)
    b_nan = np.array([0xFFC00001, 0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF], dtype=np.uint32).view(
        np.float32
    )
    for name in ("sub", "mul", "div", "add", "maximum", "minimum"):
        out = run(path, name, a, b) if name != "add" else run(path, name, a, b_nan)
        nan_bits = out.view(np.uint32)[np.isnan(out)]
        assert nan_bits.size > 0 and (nan_bits == 0x7FC00000).all(), name
    sq = run(path, "sqrt", np.array([-1.0, -np.inf], dtype=np.float32))
    assert (sq.view(np.uint32) == 0x7FC00000).all()


def test_subnormals_are_kept(path: Kernels) -> None:
    tiny = np.array([2.0**-126, 2.0**-149, 2.0**-140], dtype=np.float32)
    half = run(path, "mul", tiny, np.array([0.5, 1.0, 0.5], dtype=np.float32))
    assert (half.astype(np.float64) == [2.0**-127, 2.0**-149, 2.0**-141]).all()
    assert run(path, "add", tiny[1:2], tiny[1:2])[0] == np.float32(2.0**-148)


def test_signed_zeros(path: Kernels) -> None:
    pz, nz = np.array([0.0], dtype=np.float32), np.array([-0.0], dtype=np.float32)
    bits = {
        "max(+0,-0)": run(path, "maximum", pz, nz),
        "max(-0,+0)": run(path, "maximum", nz, pz),
        "min(+0,-0)": run(path, "minimum", pz, nz),
        "min(-0,+0)": run(path, "minimum", nz, pz),
        "-0 + -0": run(path, "add", nz, nz),
        "+0 + -0": run(path, "add", pz, nz),
        "neg(+0)": run(path, "neg", pz),
        "sqrt(-0)": run(path, "sqrt", nz),
    }
    want = {
        "max(+0,-0)": 0x0,
        "max(-0,+0)": 0x0,
        "min(+0,-0)": 0x80000000,
        "min(-0,+0)": 0x80000000,
        "-0 + -0": 0x80000000,
        "+0 + -0": 0x0,
        "neg(+0)": 0x80000000,
        "sqrt(-0)": 0x80000000,
    }
    assert {k: int(v.view(np.uint32)[0]) for k, v in bits.items()} == want


def test_broadcasting_and_immediates(path: Kernels) -> None:
    rng = np.random.default_rng(13)
    a = rng.standard_normal((4, 3, 5)).astype(np.float32)
    row = rng.standard_normal(5).astype(np.float32)
    col = rng.standard_normal((4, 3, 1)).astype(np.float32)
    for name, reference in BINARY:
        for other in (row, col):
            check_binary(path, name, reference, a, other)
            check_binary(path, name, reference, other, a)
        imm = np.float32(0.3)
        got = path.to_numpy(getattr(path, name)(path.from_numpy(a), imm))
        assert_bits_equal(got, reference(a, np.full_like(a, imm)), f"{name} immediate")
        got = path.to_numpy(getattr(path, name)(imm, path.from_numpy(a)))
        assert_bits_equal(got, reference(np.full_like(a, imm), a), f"immediate {name}")


def test_constants_and_environment() -> None:
    from agents.exact import cpu as cpu_module
    from agents.exact.float32 import CANONICAL_NAN, bits, check_denormals_kept

    assert int(bits(np.array([CANONICAL_NAN]))[0]) == 0x7FC00000
    assert int(bits(np.array([cpu_module.NAN]))[0]) == 0x7FC00000  # type: ignore[attr-defined]
    assert int(bits(cpu_module._NAN_CELL)[0]) == 0x7FC00000
    check_denormals_kept()  # this process keeps subnormals (it would raise otherwise)
