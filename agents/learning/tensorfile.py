"""Tensors on disk: safetensors files written canonically and read strictly.

Checkpoints, batch indices, models and datasets are safetensors files: an
8-byte little-endian header length, a JSON header, then raw little-endian
tensor data. No pickle is involved anywhere, so reading an untrusted proof
never runs code. This module writes one canonical form, so the same tensors
always give the same bytes (and so the same CID), whatever the version of any
library:

- the header is ``canonical_json`` of ``{name: {"dtype", "shape", "data_offsets"}}``
  plus ``"__metadata__"`` (string → string) when there is metadata, padded with
  spaces to a multiple of 8 bytes;
- tensors are laid out in name order (UTF-8 bytes), back to back, no padding.

The reader accepts any valid safetensors file of the supported dtypes (F32,
I64) and checks every offset, shape and size before touching the data. Its
header is strict JSON (``agents.learning.strictjson``) at most three levels
deep; a tensor has at most 8 dimensions, each below 2**31, and at most 2**40
bytes; a file that breaks any rule raises ``TensorFileError`` and nothing else.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.errors import VeritrainError
from agents.learning import strictjson
from agents.store.base import canonical_json

DTYPES: dict[str, np.dtype[Any]] = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}
_KINDS = {("f", 4): "F32", ("i", 8): "I64"}
MAX_HEADER_BYTES = 16 << 20
MAX_TENSORS = 100_000
MAX_DIMENSIONS = 8
MAX_DIMENSION = 2**31 - 1
MAX_TENSOR_BYTES = 1 << 40


class TensorFileError(VeritrainError):
    """A tensor file is malformed, too large, or not what it should be."""


def encode(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """The canonical safetensors bytes of ``tensors`` (float32 or int64 arrays)."""
    header: dict[str, Any] = {}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors, key=lambda n: n.encode()):
        array = np.asarray(tensors[name])
        key = _KINDS.get((array.dtype.kind, array.dtype.itemsize))
        if key is None:
            raise TensorFileError(f"tensor {name}: dtype {array.dtype} is not float32 or int64")
        data = np.ascontiguousarray(array, dtype=DTYPES[key]).tobytes()
        header[name] = {
            "dtype": key,
            "shape": [int(d) for d in array.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = canonical_json(header)
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def decode(
    data: bytes | bytearray | memoryview,
    what: str = "tensor file",
    *,
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors (read-only arrays over ``data``) and metadata of a safetensors file.

    The header may be at most ``max_header_bytes`` long (callers that know what the
    file must hold pass a tighter bound). Raises ``TensorFileError`` naming ``what``
    for anything malformed; nothing else, whatever the bytes.
    """
    view = memoryview(data).toreadonly()
    if len(view) < 8:
        raise TensorFileError(f"{what}: {len(view)} bytes is too short for a safetensors file")
    (size,) = struct.unpack("<Q", view[:8])
    if size > min(max_header_bytes, MAX_HEADER_BYTES) or 8 + size > len(view):
        raise TensorFileError(f"{what}: header length {size} does not fit the file")
    # A header is {name: {"dtype", "shape": [...], "data_offsets": [...]}}: three levels.
    header = strictjson.loads(
        view[8 : 8 + size], f"{what} header", max_depth=3, error=TensorFileError
    )
    if not isinstance(header, dict) or len(header) > MAX_TENSORS + 1:
        raise TensorFileError(f"{what}: header is not a mapping of tensors")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise TensorFileError(f"{what}: __metadata__ must map strings to strings")
    body = view[8 + size :]
    spans = []
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        tensors[name], span = _tensor(name, entry, body, what)
        spans.append(span)
    end = 0
    for start, stop in sorted(spans):
        if start != end:
            raise TensorFileError(f"{what}: tensor data overlaps or leaves gaps")
        end = stop
    if end != len(body):
        raise TensorFileError(f"{what}: {len(body) - end} bytes of data belong to no tensor")
    return tensors, dict(metadata)


def _tensor(
    name: str, entry: Any, body: memoryview, what: str
) -> tuple[np.ndarray, tuple[int, int]]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise TensorFileError(f"{what}: tensor {name[:64]!r} has a malformed header entry")
    dtype = DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        shown = str(entry["dtype"])[:32]
        raise TensorFileError(f"{what}: tensor {name[:64]!r} has unsupported dtype {shown!r}")
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not (
        isinstance(shape, list)
        and len(shape) <= MAX_DIMENSIONS
        and all(_is_int(d) and 0 <= d <= MAX_DIMENSION for d in shape)
        # numpy refuses shapes whose extent overflows, even with a zero dimension.
        and math.prod(max(d, 1) for d in shape) * dtype.itemsize <= MAX_TENSOR_BYTES
    ):
        shown = str(shape)[:64]
        raise TensorFileError(f"{what}: tensor {name[:64]!r} has an invalid shape {shown}")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_int(o) for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= len(body)
    ):
        shown = str(offsets)[:64]
        raise TensorFileError(f"{what}: tensor {name[:64]!r} has invalid data offsets {shown}")
    start, stop = offsets
    if stop - start != math.prod(shape) * dtype.itemsize:
        raise TensorFileError(f"{what}: tensor {name[:64]!r} data size does not match its shape")
    return np.frombuffer(body[start:stop], dtype=dtype).reshape(shape), (start, stop)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
