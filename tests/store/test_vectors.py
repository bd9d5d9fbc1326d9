"""Kubo's published CIDs: every vector matches through the Python API and the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.store import AddOptions, cid_of_bytes, cid_of_file
from agents.store.embedded import EmbeddedStore
from tests.store.conftest import SHARED_VECTORS, VECTORS, load_vectors, vector_input

VECTOR_CASES = load_vectors()


def _id(vector: dict[str, Any]) -> str:
    spec = vector["input"]
    what = f"bytes{len(spec['bytes'])}" if "bytes" in spec else f"chacha{spec['chacha']['size']}"
    opts = ",".join(f"{k}={v}" for k, v in sorted(vector["options"].items()))
    return f"{what}[{opts}]"


def test_vendored_vectors_equal_the_shared_file() -> None:
    if not SHARED_VECTORS.exists():
        pytest.skip("no shared vectors next to this checkout")
    assert VECTORS.read_bytes() == SHARED_VECTORS.read_bytes()


def test_vectors_cover_the_layout_edges() -> None:
    sizes = {v["input"].get("chacha", {}).get("size") for v in VECTOR_CASES}
    # One chunk, one chunk + 1 byte, 174 chunks (a full root), 174 chunks + 1 byte (depth 2).
    assert {262144, 262145, 45613056, 45613057} <= sizes
    assert len(VECTOR_CASES) >= 13


@pytest.mark.parametrize("vector", VECTOR_CASES, ids=_id)
def test_vector_through_api(vector: dict[str, Any], tmp_path: Path) -> None:
    data = vector_input(vector["input"])
    options = AddOptions(**vector["options"])
    assert cid_of_bytes(data, options) == vector["cid"]
    path = tmp_path / "input"
    path.write_bytes(data)
    assert cid_of_file(path, options) == vector["cid"]


@pytest.mark.parametrize(
    "vector", [v for v in VECTOR_CASES if len(vector_input(v["input"])) <= 1_100_000], ids=_id
)
def test_vector_added_to_embedded_store(vector: dict[str, Any], store: EmbeddedStore) -> None:
    data = vector_input(vector["input"])
    cid = store.put_bytes(data, AddOptions(**vector["options"]))
    assert cid == vector["cid"]
    assert store.get_bytes(cid) == data
