"""What crosses a cut as bytes: round trips, sizes, and refusals of bytes that do not fit."""

from __future__ import annotations

import numpy as np
import pytest

from agents.swarm import codec


def _quantized(rng: np.random.Generator, n: int, d: int, bits: int) -> tuple[np.ndarray, ...]:
    codes = rng.integers(0, 1 << bits, (n, d)).astype(np.float32)
    lo = rng.normal(size=(n, 1)).astype(np.float32)
    step = rng.uniform(0, 1, (n, 1)).astype(np.float32)
    return codes, lo, step


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize(("n", "d"), [(1, 1), (3, 5), (4, 1536), (7, 33)])
def test_quantized_rows_round_trip(bits: int, n: int, d: int) -> None:
    rng = np.random.default_rng(bits * 100 + n)
    codes, lo, step = _quantized(rng, n, d, bits)
    data = codec.encode_quantized(codes, lo, step, bits)
    assert len(data) == codec.quantized_size(n, d, bits) == -(-n * d * bits // 8) + 8 * n
    got = codec.decode_quantized(data, n, d, bits)
    for g, w in zip(got, (codes, lo, step), strict=True):
        assert g.tobytes() == w.tobytes()
    with pytest.raises(codec.CodecError, match="are not"):
        codec.decode_quantized(data[:-1], n, d, bits)


def test_full_rows_keep_every_bit() -> None:
    values = np.array([[0.0, -0.0, np.inf], [np.nan, 1e-45, -3.5]], np.float32)
    data = codec.encode_full(values)
    assert len(data) == 24
    assert codec.decode_full(data, 2, 3).tobytes() == values.tobytes()
    with pytest.raises(codec.CodecError, match="are not 2 rows of 4"):
        codec.decode_full(data, 2, 4)


@pytest.mark.parametrize("seen", [[], [True] * 4, [False] * 4, [True, False, False, True]])
def test_aq_messages_carry_seen_rows_quantized_and_others_in_full(seen: list[bool]) -> None:
    n, d, bits = len(seen), 6, 2
    rng = np.random.default_rng(n)
    codes, lo, step = _quantized(rng, n, d, bits)
    full = rng.normal(size=(n, d)).astype(np.float32)
    mask = np.array(seen, dtype=bool)
    data = codec.encode_aq(mask, codes, lo, step, full, bits)
    k = int(mask.sum())
    assert len(data) == n + codec.quantized_size(k, d, bits) + 4 * (n - k) * d
    got = codec.decode_aq(data, n, d, bits)
    assert got.seen.tolist() == seen
    assert got.codes[mask].tobytes() == codes[mask].tobytes()
    assert got.lo[mask].tobytes() == lo[mask].tobytes()
    assert got.full[~mask].tobytes() == full[~mask].tobytes()
    # Rows that did not travel one way are zeros in that part.
    assert not got.codes[~mask].any() and not got.full[mask].any()
    assert not got.lo[~mask].any() and not got.step[~mask].any()


def test_aq_messages_that_do_not_fit_are_refused() -> None:
    rng = np.random.default_rng(0)
    codes, lo, step = _quantized(rng, 2, 3, 4)
    full = np.zeros((2, 3), np.float32)
    data = codec.encode_aq(np.array([True, False]), codes, lo, step, full, 4)
    with pytest.raises(codec.CodecError):
        codec.decode_aq(data + b"\0", 2, 3, 4)
    with pytest.raises(codec.CodecError, match="neither 0 nor 1"):
        codec.decode_aq(b"\x02" + data[1:], 2, 3, 4)
    with pytest.raises(codec.CodecError, match="hold no 2 flags"):
        codec.decode_aq(b"\x01", 2, 3, 4)
    # A flag flipped changes how the rest must be read: the length no longer fits.
    with pytest.raises(codec.CodecError):
        codec.decode_aq(b"\x01\x01" + data[2:], 2, 3, 4)
