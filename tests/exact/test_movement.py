"""Data movement and gathers (transpose, reshape, index_select, take_along, one_hot,
causal_fill, im2col/col2im, scatter_add): both paths against plain loops."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from agents.exact.cpu import CpuKernels, RecentSwaps
from agents.exact.kernels import Kernels
from tests.exact import reference as ref
from tests.exact.conftest import assert_bits_equal


def _run(path: Kernels, name: str, *args: object) -> np.ndarray:
    converted = [path.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
    return path.to_numpy(getattr(path, name)(*converted))


def im2col_loop(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    b, c, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((b * oh * ow, c * k * k), np.float32)
    for bi, oy, ox, ci, ky, kx in itertools.product(
        range(b), range(oh), range(ow), range(c), range(k), range(k)
    ):
        y, xx = oy * s - p + ky, ox * s - p + kx
        if 0 <= y < h and 0 <= xx < w:
            out[(bi * oh + oy) * ow + ox, (ci * k + ky) * k + kx] = x[bi, ci, y, xx]
    return out


def col2im_loop(cols: np.ndarray, shape: tuple[int, ...], k: int, s: int, p: int) -> np.ndarray:
    b, c, h, w = shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros(shape, np.float32)
    # Definition: per pixel, contributions in increasing (ky, kx).
    for ky, kx in itertools.product(range(k), range(k)):
        for bi, ci, oy, ox in itertools.product(range(b), range(c), range(oh), range(ow)):
            y, xx = oy * s - p + ky, ox * s - p + kx
            if 0 <= y < h and 0 <= xx < w:
                v = cols[(bi * oh + oy) * ow + ox, (ci * k + ky) * k + kx]
                out[bi, ci, y, xx] = np.float32(out[bi, ci, y, xx] + v)
    return ref.canon(out)


GEOMETRIES = [(3, 1, 1), (3, 2, 1), (2, 2, 0), (3, 1, 0), (1, 1, 0), (5, 3, 2)]


@pytest.mark.parametrize(("k", "s", "p"), GEOMETRIES)
def test_im2col_col2im(path: Kernels, k: int, s: int, p: int) -> None:
    rng = np.random.default_rng(k * 100 + s * 10 + p)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    cols = _run(path, "im2col", x, k, s, p)
    assert_bits_equal(cols, im2col_loop(x, k, s, p), f"im2col {k},{s},{p}")
    g = rng.standard_normal(cols.shape).astype(np.float32)
    back = _run(path, "col2im", g, x.shape, k, s, p)
    assert_bits_equal(back, col2im_loop(g, x.shape, k, s, p), f"col2im {k},{s},{p}")


def test_col2im_is_adjoint_of_im2col(path: Kernels) -> None:
    # <im2col(x), g> == <x, col2im(g)> up to rounding: checks the index mapping.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float64)
    g = rng.standard_normal((9, 2 * 9)).astype(np.float32)
    cols = _run(path, "im2col", x.astype(np.float32), 3, 2, 1).astype(np.float64)
    back = _run(path, "col2im", g, (1, 2, 5, 5), 3, 2, 1).astype(np.float64)
    assert abs((cols * g).sum() - (x * back).sum()) < 1e-4


def test_scatter_add_sequential(path: Kernels) -> None:
    rng = np.random.default_rng(2)
    src = rng.standard_normal((50, 4)).astype(np.float32)
    src[rng.integers(0, 50, 5)] *= np.float32(1e7)
    index = rng.integers(0, 6, 50).astype(np.float32)
    want = np.zeros((8, 4), np.float32)
    for p in range(50):
        v = int(index[p])
        want[v] = np.add(want[v], src[p], dtype=np.float32)
    assert_bits_equal(_run(path, "scatter_add", src, index, 8), want, "scatter_add")


def test_gathers(path: Kernels) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 3)).astype(np.float32)
    idx = np.array([4, 0, 0, 2], dtype=np.float32)
    assert_bits_equal(_run(path, "index_select", x, idx, 0), x[[4, 0, 0, 2]], "rows")
    assert_bits_equal(_run(path, "index_select", x, idx[:2] % 3, 2), x[:, :, [1, 0]], "axis 2")
    logits = rng.standard_normal((6, 10)).astype(np.float32)
    target = np.array([[3], [0], [9], [9], [1], [5]], dtype=np.float32)
    taken = _run(path, "take_along", logits, target)
    assert_bits_equal(taken, logits[np.arange(6), target[:, 0].astype(int)][:, None], "take")
    hot = _run(path, "one_hot", target[:, 0], 10)
    assert_bits_equal(hot, np.eye(10, dtype=np.float32)[target[:, 0].astype(int)], "one_hot")


def test_causal_fill_transpose_reshape(path: Kernels) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    filled = _run(path, "causal_fill", x, np.float32(-np.inf))
    want = np.where(np.tril(np.ones((4, 4), bool)), x, np.float32(-np.inf))
    assert_bits_equal(filled, want, "causal_fill")
    assert_bits_equal(_run(path, "transpose", x, (0, 2, 1, 3)), x.transpose(0, 2, 1, 3), "T")
    assert_bits_equal(_run(path, "reshape", x, (6, 16)), x.reshape(6, 16), "reshape")


@pytest.fixture
def switching() -> Iterator[None]:
    """Threads switched as often as the interpreter allows: a race shows up in seconds."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def on_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` on ``count`` threads at once; returns what they raised."""
    raised: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # reported by the test
            raised.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return raised


def test_recent_swaps_shared_by_threads(switching: None) -> None:
    """Threads replaying segments share one kernels object: remembering a transpose evicts the
    oldest while other threads add theirs, and neither may raise (``dictionary changed size
    during iteration``) nor keep more than the bound."""
    swaps = RecentSwaps(16)
    arrays = [np.full(1, i, np.float32) for i in range(64)]

    def remember(i: int) -> None:
        for n in range(60_000):
            swapped = arrays[(i * 7 + n) % len(arrays)]
            swaps.remember(swapped, swapped)
            found = swaps.source_of(swapped)  # unless another thread evicted it meanwhile
            assert found is None or found is swapped

    assert on_threads(6, remember) == []
    assert len(swaps) <= 16


def test_transposes_on_threads_sharing_the_kernels(switching: None) -> None:
    """Transposes and the products that take their sources back, on eight threads sharing one
    ``CpuKernels``: each thread gets its own results, bit for bit, and nothing raises."""
    kernels = CpuKernels(threads=1)
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal((3, 16, 5)).astype(np.float32) for _ in range(8)]
    others = [rng.standard_normal((3, 4, 5)).astype(np.float32) for _ in range(8)]
    wants = [kernels.matmul_nt(a, x) for a, x in zip(others, inputs, strict=True)]
    stop = time.monotonic() + 1.5

    def transpose(i: int) -> None:
        x, a = inputs[i], others[i]
        while time.monotonic() < stop:
            for _ in range(50):
                swapped = kernels.transpose(x, (0, 2, 1))
                assert_bits_equal(swapped, np.swapaxes(x, 1, 2), "transpose")
            # x again, as a swap whose source (swapped) matmul_nt takes instead of transposing.
            product = kernels.matmul_nt(a, kernels.transpose(swapped, (0, 2, 1)))
            assert_bits_equal(product, wants[i], "matmul_nt")

    assert on_threads(8, transpose) == []
