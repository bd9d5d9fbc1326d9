"""What crosses a cut between two pipeline stages, as bytes.

Forward, for a slice of ``n`` samples of ``D`` values each:

- no compression: the ``n × D`` binary32 values;
- ``direct``: the codes (``bits`` each, ``agents.learning.compression.pack_codes``),
  then ``lo`` and ``step`` (``n`` binary32 each);
- ``aq``: ``n`` flag bytes (1: the sample was seen before), then, for the seen rows,
  their codes, ``lo`` and ``step``, then the other rows' values in full.

Backward: the ``n × D`` binary32 gradient values, or with ``backward_bits`` their codes,
``lo`` and ``step``. Every number is little-endian. A message whose length does not
match what its header implies is refused (``CodecError``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.learning.compression import pack_codes, packed_size, unpack_codes
from agents.swarm.errors import SwarmError

F32 = np.dtype("<f4")


class CodecError(SwarmError):
    """Bytes that are not the message a cut expects."""


@dataclass(frozen=True)
class Rows:
    """An AQ-SGD message in numpy: ``codes`` ``[n, D]``, ``lo`` and ``step`` ``[n, 1]``
    (zeros in rows that travel in full), ``full`` ``[n, D]`` (zeros in rows that travel
    quantized) and ``seen`` (``bool[n]``: which rows travel quantized)."""

    codes: np.ndarray
    lo: np.ndarray
    step: np.ndarray
    full: np.ndarray
    seen: np.ndarray


def encode_full(values: np.ndarray) -> bytes:
    """Rows in full."""
    return np.ascontiguousarray(values, dtype=F32).tobytes()


def decode_full(data: bytes, n: int, d: int) -> np.ndarray:
    if len(data) != 4 * n * d:
        raise CodecError(f"{len(data)} bytes are not {n} rows of {d} values")
    return np.frombuffer(data, dtype=F32).reshape(n, d).astype(np.float32)


def encode_quantized(codes: np.ndarray, lo: np.ndarray, step: np.ndarray, bits: int) -> bytes:
    """Quantized rows: codes, then ``lo`` and ``step``."""
    return (
        pack_codes(codes, bits)
        + np.ascontiguousarray(lo, dtype=F32).tobytes()
        + np.ascontiguousarray(step, dtype=F32).tobytes()
    )


def quantized_size(n: int, d: int, bits: int) -> int:
    """Bytes of ``n`` quantized rows of ``d`` values."""
    return packed_size(n * d, bits) + 8 * n


def decode_quantized(
    data: bytes, n: int, d: int, bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(data) != quantized_size(n, d, bits):
        raise CodecError(f"{len(data)} bytes are not {n} rows of {d} {bits}-bit codes")
    packed = packed_size(n * d, bits)
    codes = unpack_codes(data[:packed], n * d, bits).reshape(n, d)
    lo = np.frombuffer(data[packed : packed + 4 * n], dtype=F32).reshape(n, 1).astype(np.float32)
    step = np.frombuffer(data[packed + 4 * n :], dtype=F32).reshape(n, 1).astype(np.float32)
    return codes, lo, step


def encode_aq(
    seen: np.ndarray,
    codes: np.ndarray,
    lo: np.ndarray,
    step: np.ndarray,
    full: np.ndarray,
    bits: int,
) -> bytes:
    """An AQ-SGD message: flags, the seen rows quantized, the others in full."""
    mask = np.asarray(seen, dtype=bool)
    return (
        mask.astype(np.uint8).tobytes()
        + encode_quantized(codes[mask], lo[mask], step[mask], bits)
        + encode_full(full[~mask])
    )


def decode_aq(data: bytes, n: int, d: int, bits: int) -> Rows:
    if len(data) < n:
        raise CodecError(f"{len(data)} bytes hold no {n} flags")
    flags = np.frombuffer(data[:n], dtype=np.uint8)
    if flags.max(initial=0) > 1:
        raise CodecError("a flag byte is neither 0 nor 1")
    mask = flags.astype(bool)
    k = int(mask.sum())
    at = n + quantized_size(k, d, bits)
    codes_k, lo_k, step_k = decode_quantized(data[n:at], k, d, bits)
    rest = decode_full(data[at:], n - k, d)
    codes = np.zeros((n, d), np.float32)
    lo = np.zeros((n, 1), np.float32)
    step = np.zeros((n, 1), np.float32)
    full = np.zeros((n, d), np.float32)
    codes[mask], lo[mask], step[mask] = codes_k, lo_k, step_k
    full[~mask] = rest
    return Rows(codes, lo, step, full, mask)
