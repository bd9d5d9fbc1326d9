"""matmul_nt and the reductions against plain numpy loops in the defined order:
bit-identical on random shapes, K = 1, large K, edge values, and thread counts."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from agents.exact import cpu as cpu_module
from agents.exact.kernels import Kernels
from tests.exact import reference as ref
from tests.exact.conftest import assert_bits_equal
from tests.exact.edge import edge_values, random_inputs


def _values(rng: np.random.Generator, shape: tuple[int, ...], special: bool) -> np.ndarray:
    n = int(np.prod(shape))
    if special:
        values = random_inputs(rng, n)
        values[rng.integers(0, n, max(1, n // 50))] = rng.choice(edge_values(), max(1, n // 50))
    else:
        values = rng.standard_normal(n).astype(np.float32)
    return values.reshape(shape)


SHAPES = [
    (1, 1, 1),
    (3, 1, 4),  # K = 1
    (1, 7, 1),
    (5, 17, 3),
    (8, 64, 10),
    (33, 257, 19),
    (2, 4096, 3),  # large K
    (64, 64, 128),
]


@pytest.fixture
def parallel_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every CPU kernel that has a parallel variant to it, however small the work."""
    monkeypatch.setattr(cpu_module, "PARALLEL_MIN_WORK", 1)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("special", [False, True], ids=["normal", "special"])
def test_matmul_nt_matches_loop(path: Kernels, shape: tuple[int, int, int], special: bool) -> None:
    m, k, n = shape
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, b = _values(rng, (m, k), special), _values(rng, (n, k), special)
    got = path.to_numpy(path.matmul_nt(path.from_numpy(a), path.from_numpy(b)))
    assert_bits_equal(got, ref.matmul_nt(a, b), f"{path.name} matmul {shape}")


def test_matmul_nt_batched(path: Kernels) -> None:
    rng = np.random.default_rng(5)
    a = _values(rng, (2, 3, 6, 9), False)
    b = _values(rng, (2, 3, 5, 9), False)
    got = path.to_numpy(path.matmul_nt(path.from_numpy(a), path.from_numpy(b)))
    assert_bits_equal(got, ref.matmul_nt(a, b), "batched matmul")


def test_matmul_entries_match_scalar_dot(cpu: Kernels) -> None:
    # The vectorized reference itself against a one-product-at-a-time loop.
    rng = np.random.default_rng(6)
    a, b = _values(rng, (4, 300), True), _values(rng, (5, 300), True)
    got = cpu.matmul_nt(a, b)
    for i in range(4):
        for j in range(5):
            want = ref.canon(np.array([ref.dot_scalar(a[i], b[j])], dtype=np.float32))
            assert_bits_equal(got[i, j : j + 1], want, f"entry {i},{j}")


def test_matmul_is_not_blas(cpu: Kernels) -> None:
    # Sequential order differs from pairwise/blocked summation on cancelling data.
    a = np.array([[1.0, 1e8, -1e8, 1.0] * 8], dtype=np.float32)
    b = np.ones((1, 32), dtype=np.float32)
    assert cpu.matmul_nt(a, b)[0, 0] == ref.matmul_nt(a, b)[0, 0]


def test_signed_zero_and_accumulator_start(path: Kernels) -> None:
    # acc starts at +0.0: a dot product of -0 products is +0, a sum of -0s is +0.
    a = np.array([[-0.0, -0.0]], dtype=np.float32)
    b = np.array([[1.0, 1.0]], dtype=np.float32)
    got = path.to_numpy(path.matmul_nt(path.from_numpy(a), path.from_numpy(b)))
    assert got.view(np.uint32)[0, 0] == 0
    s = path.to_numpy(path.sum(path.from_numpy(np.array([-0.0, -0.0], dtype=np.float32)), 0))
    assert s.view(np.uint32)[0] == 0


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("special", [False, True], ids=["normal", "special"])
def test_sum_and_amax_match_loop(path: Kernels, axis: int, special: bool) -> None:
    rng = np.random.default_rng(axis + 10)
    x = _values(rng, (6, 129, 5), special)
    ax = axis % 3
    got = path.to_numpy(path.sum(path.from_numpy(x), ax))
    assert_bits_equal(got, ref.sum_axis(x, ax), f"{path.name} sum axis {axis}")
    got = path.to_numpy(path.amax(path.from_numpy(x), ax))
    assert_bits_equal(got, ref.amax_axis(x, ax), f"{path.name} amax axis {axis}")


@pytest.mark.usefixtures("parallel_always")
def test_parallel_kernels_match_loops(cpu: Kernels) -> None:
    rng = np.random.default_rng(3)
    x = _values(rng, (512, 300), True)
    assert_bits_equal(cpu.sum(x, 1), ref.sum_axis(x, 1), "parallel sum")
    assert_bits_equal(cpu.amax(x, 1), ref.amax_axis(x, 1), "parallel amax")
    assert_bits_equal(cpu.sum(x, 0), ref.sum_axis(x, 0), "sum over rows")
    a, b = _values(rng, (2, 37, 50), True), _values(rng, (2, 23, 50), True)
    assert_bits_equal(cpu.matmul_nt(a, b), ref.matmul_nt(a, b), "parallel matmul")


@pytest.mark.usefixtures("parallel_always")
def test_thread_count_does_not_change_bits(cpu: Kernels) -> None:
    rng = np.random.default_rng(4)
    a, b = _values(rng, (96, 200), True), _values(rng, (80, 200), True)
    x = _values(rng, (300, 400), True)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            results.append((cpu.matmul_nt(a, b), cpu.sum(x, 1), cpu.amax(x, 0)))
    finally:
        numba.set_num_threads(before)
    for got in results[1:]:
        for g, w in zip(got, results[0], strict=True):
            assert_bits_equal(g, w, "threads")


def test_empty_reductions_are_positive_zero(path: Kernels) -> None:
    a, b = np.zeros((5, 0), np.float32), np.zeros((3, 0), np.float32)
    got = path.to_numpy(path.matmul_nt(path.from_numpy(a), path.from_numpy(b)))
    assert got.shape == (5, 3) and (got.view(np.uint32) == 0).all()
    x = np.zeros((4, 0, 3), np.float32)
    got = path.to_numpy(path.sum(path.from_numpy(x), 1))
    assert got.shape == (4, 1, 3) and (got.view(np.uint32) == 0).all()


def test_scalars_keep_their_shape(path: Kernels) -> None:
    s = np.array(3.0, np.float32)
    got = path.to_numpy(path.add(path.from_numpy(s), np.float32(1.0)))
    assert got.shape == () and got == 4.0


@pytest.mark.usefixtures("parallel_always")
def test_one_thread_never_enters_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    launched = []

    def refuse(*args: object) -> None:
        launched.append(args)
        raise AssertionError("a parallel kernel was launched")

    for name in ("_matmul_parallel", "_sum_parallel", "_amax_parallel"):
        monkeypatch.setattr(cpu_module, name, refuse)
    one = cpu_module.CpuKernels(threads=1)
    rng = np.random.default_rng(6)
    a, b = _values(rng, (40, 30), True), _values(rng, (24, 30), True)
    x = _values(rng, (64, 50), True)
    assert_bits_equal(one.matmul_nt(a, b), ref.matmul_nt(a, b), "serial matmul")
    assert_bits_equal(one.sum(x, 1), ref.sum_axis(x, 1), "serial sum")
    assert_bits_equal(one.amax(x, 0), ref.amax_axis(x, 0), "serial amax")
    assert not launched
    if numba.config.NUMBA_NUM_THREADS > 1:  # type: ignore[attr-defined]
        with pytest.raises(AssertionError, match="parallel kernel"):
            cpu_module.CpuKernels().matmul_nt(a, b)
