"""Fixtures for the artifact store tests: stores in temporary directories, Kubo's vectors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from agents.store.embedded import EmbeddedStore
from agents.store.server import RpcServer, ServerLimits

# A copy of the shared vectors travels with the tests, so a fresh clone has them;
# test_vectors checks that it still equals the shared file where that exists.
VECTORS = Path(__file__).resolve().parent / "kubo-cids.json"
SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "kubo-cids.json"


def vector_input(spec: dict[str, Any]) -> bytes:
    """Rebuild a vector's input as kubo-cids.json describes it."""
    if "bytes" in spec:
        return str(spec["bytes"]).encode()
    chacha = spec["chacha"]
    key = hashlib.sha256(chacha["seed"].encode()).digest()
    encryptor = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    return encryptor.update(bytes(chacha["size"]))


def load_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return vectors


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    """An embedded store without fsync (durability is not what these tests look at)."""
    return EmbeddedStore(tmp_path / "store", fsync=False)


@pytest.fixture
def served(store: EmbeddedStore) -> Iterator[tuple[EmbeddedStore, str]]:
    """An embedded store behind ``store serve``'s RPC server on a free loopback port."""
    with RpcServer(store, "127.0.0.1", 0, ServerLimits(request_timeout=10)) as server:
        yield store, server.url
