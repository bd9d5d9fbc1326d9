"""Activation compression: the quantizer's properties, the exact kernels and torch agreeing
bit for bit on it, what travels, and how AQ-SGD's buffers change after a step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from agents.exact.cpu import CpuKernels
from agents.exact.eager import EagerKernels
from agents.exact.ops import ExactOps
from agents.learning.compression import (
    Quantized,
    TorchOps,
    commit_buffers,
    dequantize,
    forward_cut,
    levels,
    pack_codes,
    packed_size,
    quantize,
    receive_cut,
    unpack_codes,
)
from tests.exact.conftest import assert_bits_equal

BITS = (2, 3, 4, 8)


def _engines() -> dict[str, Any]:
    return {
        "cpu": ExactOps(CpuKernels()),
        "eager": ExactOps(EagerKernels("cpu")),
        "torch": TorchOps("cpu"),
    }


def _np(E: Any, x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(E.to_numpy(x))


def _rows(seed: int, count: int = 300, width: int = 37) -> np.ndarray:
    """Rows at many scales and offsets, with edge rows: constant, ±0, subnormal, huge."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-30, 30, (count, 1))
    rows = rng.normal(size=(count, width)) * scale + rng.normal(size=(count, 1)) * scale * 3
    rows = rows.astype(np.float32)
    rows[0] = 0.0
    rows[1] = -0.0
    rows[2, ::2] = -0.0
    rows[3] = 7.25
    rows[4] = np.float32(2.0**-140) * rng.integers(-50, 50, width)
    rows[5] = np.float32(1e37) * rng.uniform(-1, 1, width)
    rows[6] = np.float32(-3.0)
    rows[6, 5] = np.float32(4.0)
    rows[7, :2] = [np.float32(-3e38), np.float32(3e38)]  # the range overflows
    return rows


def _same(got: np.ndarray, want: np.ndarray, context: str) -> None:
    """Bit-for-bit equality, any NaN matching any NaN (payloads are the kernels' business)."""
    g, w = np.array(got, np.float32), np.array(want, np.float32)
    both = np.isnan(g) & np.isnan(w)
    g[both] = 0.0
    w[both] = 0.0
    assert_bits_equal(g, w, context)


@pytest.mark.parametrize("bits", BITS)
def test_codes_are_integers_in_range_and_within_half_a_step(bits: int) -> None:
    E = ExactOps(CpuKernels())
    x = _rows(bits)
    q = quantize(E, E.array(x), bits)
    codes, lo, step = (_np(E, v) for v in (q.codes, q.lo, q.step))
    back = _np(E, dequantize(E, q))
    assert np.array_equal(codes, np.round(codes))
    assert codes.min() >= 0
    assert codes.max() <= (1 << bits) - 1
    assert np.array_equal(lo[:, 0], x.min(axis=1))
    finite = np.isfinite(step[:, 0]) & (step[:, 0] > 0)
    # Rounding t to an integer errs by half a step at most; lo + code·step adds two roundings.
    err = np.abs(back.astype(np.float64) - x)[finite]
    bound = (step.astype(np.float64) * 0.5 * (1 + 1e-5) + np.abs(x) * 2**-22)[finite]
    assert (err <= bound).all(), float((err - bound).max())
    # A row's smallest value comes back exactly, and a constant row entirely.
    assert np.array_equal(back[:, :].min(axis=1)[finite], x.min(axis=1)[finite])
    assert np.array_equal(back[3], x[3])


def test_ties_round_to_even() -> None:
    E = ExactOps(CpuKernels())
    # lo = 0, hi = 3, two bits: step 1, so t = x.
    x = np.array([[0.0, 0.5, 1.5, 2.5, 1.49999988, 3.0]], np.float32)
    codes = _np(E, quantize(E, E.array(x), 2).codes)
    assert codes.tolist() == [[0.0, 0.0, 2.0, 2.0, 1.0, 3.0]]


@pytest.mark.parametrize("bits", BITS)
def test_exact_paths_and_torch_quantize_alike(bits: int) -> None:
    x = _rows(100 + bits, count=2000)
    results = {}
    for name, E in _engines().items():
        q = quantize(E, E.array(x), bits)
        results[name] = [_np(E, v) for v in (q.codes, q.lo, q.step, dequantize(E, q))]
    for name in ("eager", "torch"):
        for part, got, want in zip(
            ("codes", "lo", "step", "value"), results[name], results["cpu"], strict=True
        ):
            _same(got, want, f"{name} {part} at {bits} bits")


def test_levels_refuses_other_widths() -> None:
    assert [levels(b) for b in BITS] == [3, 7, 15, 255]
    with pytest.raises(ValueError, match="5 bits"):
        levels(5)


@pytest.mark.parametrize("bits", BITS)
def test_codes_pack_and_unpack(bits: int) -> None:
    rng = np.random.default_rng(bits)
    for count in (1, 2, 7, 8, 9, 100, 1001):
        codes = rng.integers(0, 1 << bits, count).astype(np.float32)
        data = pack_codes(codes, bits)
        assert len(data) == packed_size(count, bits) == -(-count * bits // 8)
        assert np.array_equal(unpack_codes(data, count, bits), codes)
        with pytest.raises(ValueError, match="bytes hold no"):
            unpack_codes(data + b"\0", count, bits)


def test_two_bit_codes_pack_four_to_a_byte_low_bits_first() -> None:
    assert pack_codes(np.array([1, 2, 3, 0, 3], np.float32), 2) == bytes([0b00111001, 0b11])


@pytest.mark.parametrize("engine", ["cpu", "torch"])
def test_aq_passes_new_samples_in_full_and_seen_ones_as_buffer_plus_change(engine: str) -> None:
    E = _engines()[engine]
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 10)).astype(np.float32)
    buffer = (a + rng.normal(size=(4, 10)) * 0.01).astype(np.float32)
    seen = np.array([True, False, True, False])
    flags = E.array(seen.astype(np.float32).reshape(4, 1))
    sent = forward_cut(E, "aq", 2, E.array(a), E.array(buffer), flags, seen)
    value = _np(E, sent.value)
    assert_bits_equal(value[~seen], a[~seen], "first pass in full")
    assert sent.quantized is not None
    change = _np(E, dequantize(E, sent.quantized))
    # The seen rows are their buffers plus the quantized change: close to a, not a.
    want = (buffer + change)[seen]
    assert_bits_equal(value[seen], want, "buffer + change")
    assert np.abs(value[seen] - a[seen]).max() < 0.02
    # What the receiver rebuilds from the seen rows' codes and the others' values is the same.
    q = sent.quantized
    mask = seen.reshape(4, 1).astype(np.float32)
    travelled = Quantized(
        E.array(_np(E, q.codes) * mask),
        E.array(_np(E, q.lo) * mask),
        E.array(_np(E, q.step) * mask),
        2,
    )
    full = E.array(a * (1 - mask))
    got = receive_cut(E, "aq", travelled, full, E.array(buffer), flags)
    assert_bits_equal(_np(E, got), value, "receiver")


@pytest.mark.parametrize("engine", ["cpu", "torch"])
def test_direct_passes_the_quantized_activation(engine: str) -> None:
    E = _engines()[engine]
    a = np.random.default_rng(2).normal(size=(3, 8)).astype(np.float32)
    sent = forward_cut(E, "direct", 3, E.array(a))
    assert sent.quantized is not None
    assert_bits_equal(_np(E, sent.value), _np(E, dequantize(E, sent.quantized)), "value")
    assert not np.array_equal(_np(E, sent.value), a)
    got = receive_cut(E, "direct", sent.quantized, None)
    assert_bits_equal(_np(E, got), _np(E, sent.value), "receiver")


@pytest.mark.parametrize("engine", ["cpu", "eager", "torch"])
def test_buffers_take_each_samples_first_value_of_the_step(engine: str) -> None:
    E = _engines()[engine]
    buffer = np.full((6, 2), 9.0, np.float32)
    seen = np.array([0, 1, 0, 0, 0, 1], np.float32)
    # Two slices of two: sample 3 occurs twice (the step straddles two epochs).
    step_rows = np.array([3, 1, 3, 0])
    values = [
        np.array([[1.0, -0.0], [2.0, 2.5]], np.float32),
        np.array([[3.0, 3.5], [4.0, 4.5]], np.float32),
    ]
    new_buffer, new_seen = commit_buffers(
        E, E.array(buffer), E.array(seen), step_rows, [E.array(v) for v in values]
    )
    want = buffer.copy()
    want[3] = [1.0, 0.0]  # the first occurrence; -0 stored as +0
    want[1] = [2.0, 2.5]
    want[0] = [4.0, 4.5]
    assert_bits_equal(_np(E, new_buffer), want, "buffer")
    assert _np(E, new_seen).tolist() == [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
