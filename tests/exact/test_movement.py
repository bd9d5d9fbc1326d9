"""Data movement and gathers (transpose, reshape, index_select, take_along, one_hot,
causal_fill, im2col/col2im, scatter_add): both paths against plain loops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

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
