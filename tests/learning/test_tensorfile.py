"""Canonical safetensors: interoperable with the safetensors library, strict on bad input."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from agents.learning.tensorfile import TensorFileError, decode, encode


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "param/b": rng.standard_normal((3, 5)).astype(np.float32),
        "param/a": np.arange(7, dtype=np.int64),
        "step": np.array(12.0, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def test_library_reads_ours_and_we_read_the_library() -> None:
    tensors = _tensors()
    theirs = st_load(encode(tensors, {"format": "x"}))
    ours, _ = decode(st_save(tensors, metadata={"k": "v"}))
    for name, tensor in tensors.items():
        assert np.array_equal(theirs[name], tensor) and theirs[name].dtype == tensor.dtype
        assert np.array_equal(ours[name], tensor) and ours[name].shape == tensor.shape


def test_encoding_is_canonical() -> None:
    tensors = _tensors()
    reordered = dict(reversed(list(tensors.items())))
    fortran = {k: np.asfortranarray(v) if v.ndim > 1 else v for k, v in tensors.items()}
    big_endian = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in tensors.items()}
    first = encode(tensors, {"a": "1"})
    assert encode(reordered, {"a": "1"}) == first
    assert encode(fortran, {"a": "1"}) == first
    assert encode(big_endian, {"a": "1"}) == first
    assert struct.unpack("<Q", first[:8])[0] % 8 == 0


def test_metadata_round_trips() -> None:
    _, metadata = decode(encode({"x": np.zeros(2, np.float32)}, {"format": "f", "n": "3"}))
    assert metadata == {"format": "f", "n": "3"}


def test_unsupported_dtype_is_refused() -> None:
    with pytest.raises(TensorFileError, match="float32 or int64"):
        encode({"x": np.zeros(2, np.float64)})


def _file(header: object, body: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


MALFORMED = [
    (b"abc", "too short"),
    (struct.pack("<Q", 10**9) + b"{}", "does not fit"),
    (struct.pack("<Q", 2) + b"[]", "not a mapping"),
    (struct.pack("<Q", 3) + b"{x}", "not JSON"),
    (_file({"x": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)), "dtype"),
    (_file({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)), "size"),
    (_file({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4)), "shape"),
    (_file({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}}, bytes(4)), "offsets"),
    (_file({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(8)), "no tensor"),
    (
        _file(
            {
                "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "y": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            },
            bytes(4),
        ),
        "overlaps",
    ),
    (_file({"x": {"dtype": "F32", "shape": [1]}}, bytes(4)), "malformed"),
    (_file({"__metadata__": {"a": 1}}), "strings"),
]


@pytest.mark.parametrize(("data", "words"), MALFORMED)
def test_malformed_files_are_rejected(data: bytes, words: str) -> None:
    with pytest.raises(TensorFileError, match=words):
        decode(data, "test file")
