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
    return _text(json.dumps(header).encode(), body)


def _text(header: bytes, body: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + body


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
    # What an attacker tried: each once ended in an exception other than TensorFileError.
    (_text(b'{"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}"), "nested too deeply"),
    (_text(b'{"x":{"dtype":"F32","shape":[],"data_offsets":[0,' + b"7" * 5000 + b"]}}"), "digits"),
    (_file({"x": {"dtype": "F32", "shape": [0, 2**70], "data_offsets": [0, 0]}}), "22 digits"),
    (_file({"x": {"dtype": "F32", "shape": [0, 2**40], "data_offsets": [0, 0]}}), "shape"),
    (_file({"x": {"dtype": "F32", "shape": [0] + [2**30] * 7, "data_offsets": [0, 0]}}), "shape"),
    (
        _file({"x": {"dtype": "F32", "shape": [1] * 100_000, "data_offsets": [0, 4]}}, bytes(4)),
        "shape",
    ),
    (_file({"x": {"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}}, bytes(4)), "shape"),
    (_file({"x": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, bytes(4)), "dtype"),
    (_file({"x": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, bytes(4)), "shape"),
    (_file({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, True]}}, bytes(4)), "offsets"),
    (_text(b'{"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', bytes(4)), "number"),
    (_text(b'{"x":{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}}', bytes(4)), "NaN"),
    (_text(b'{"\\ud800":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', bytes(4)), "Unicode"),
    (_text(b'{"x":1,"x":2}'), "twice"),
    (_text(b'{"\xff":1}'), "UTF-8"),
    (_file({"__metadata__": []}), "__metadata__"),
    (_file({"__metadata__": None}), "__metadata__"),
    (b"\xff" * 8 + b"{}", "header length"),
]


@pytest.mark.parametrize(("data", "words"), MALFORMED)
def test_malformed_files_are_rejected(data: bytes, words: str) -> None:
    with pytest.raises(TensorFileError, match=words):
        decode(data, "test file")


def test_a_header_larger_than_the_caller_allows_is_not_parsed() -> None:
    data = encode({"x": np.zeros(2, np.float32)})
    assert decode(data, max_header_bytes=len(data))[0]["x"].shape == (2,)
    with pytest.raises(TensorFileError, match="header length"):
        decode(data, max_header_bytes=8)


def test_decoded_arrays_are_read_only() -> None:
    tensors, _ = decode(bytearray(encode({"x": np.zeros(2, np.float32)})))
    with pytest.raises(ValueError, match="read-only"):
        tensors["x"][0] = 1
