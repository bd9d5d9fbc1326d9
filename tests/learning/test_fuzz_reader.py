"""Property-based fuzzing of the proof reader (``make test-all``).

Whatever bytes a solver writes, reading them ends with a value that satisfies the
format's promises or with the format's own error, never another exception: the
manifest (``parse_manifest``: ``ProofError``), safetensors files
(``tensorfile.decode``: ``TensorFileError``), batches and checkpoints
(``decode_batches``, ``decode_checkpoint``: either of those), strict JSON, and a
whole proof through ``verify`` (always a verdict). Inputs are drawn three ways:
random bytes, random JSON-like values in the places the formats read, and
mutations (flips, insertions, deletions, cuts) of valid artifacts, which reach
deepest because most of their bytes stay valid.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.errors import VeritrainError
from agents.learning import strictjson
from agents.learning.malformed import raw_tensorfile
from agents.learning.proof import (
    Manifest,
    ProofDirectory,
    ProofError,
    decode_batches,
    decode_checkpoint,
    encode_batches,
    encode_checkpoint,
    parse_manifest,
)
from agents.learning.solver import train
from agents.learning.tensorfile import TensorFileError, decode, encode
from agents.learning.verifier import Replayer, verify
from tests.learning.conftest import Workspace, real_spec

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- what the fuzzers draw -------------------------------------------------------------------

integers = st.one_of(
    st.integers(-3, 70),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64]),
)
# Every code point, lone surrogates included (json.dumps writes them as \\udxxx escapes).
texts = st.text(st.characters(blacklist_categories=()), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    integers,
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.sampled_from(["F32", "I64", "F64", "BF16", "veritrain-checkpoint/1", "²", "٠"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(texts, inner, max_size=6)),
    max_leaves=20,
)


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """JSON text of a value under up to 3,000 levels of lists or objects: past the parser's
    recursion limit (json.dumps cannot write it, so it is written here)."""
    depth = draw(st.integers(0, 3000))
    inner = json.dumps(draw(scalars), allow_nan=True).encode()
    if draw(st.booleans()):
        return b"[" * depth + inner + b"]" * depth
    return b'{"k":' * depth + inner + b"}" * depth


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few random edits: flips, insertions, deletions, a cut."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["flip", "insert", "delete", "cut", "set"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete" and data:
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == "cut":
            del data[at:]
        elif edit == "set" and data:
            data[at] = draw(st.sampled_from(b'[]{}",:0123456789-.eE \\\x00\xff'))
    return bytes(data)


def _tensors() -> dict[str, np.ndarray]:
    return {
        "param/w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "param/b": np.array([1.5, -2.0], np.float32),
        "step": np.array(4.0, np.float32),
        "z": np.zeros((0, 3), np.int64),
    }


VALID_FILE = encode(_tensors(), {"format": "veritrain-checkpoint/1"})
VALID_BATCHES = encode_batches(np.arange(12, dtype=np.int64).reshape(3, 4), 12)


def _entries(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"x": value}


@st.composite
def tensor_entries(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """Header entries whose offsets mostly tile a body that fits them, then a drawn flaw or two:
    this reaches the checks behind the JSON ones (sizes, gaps, overlaps, leftover bytes)."""
    entries: dict[str, Any] = {}
    offset = 0
    for name in draw(st.lists(texts, max_size=4, unique=True)):
        dtype = draw(st.sampled_from(["F32", "I64"]))
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        size = int(np.prod(shape, dtype=np.int64)) * (4 if dtype == "F32" else 8)
        start = offset + draw(st.sampled_from([0, 0, 0, -4, 4]))
        stop = start + size + draw(st.sampled_from([0, 0, 0, -4, 4]))
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [start, stop]}
        offset = max(offset, stop)
    body = bytes(max(0, offset + draw(st.sampled_from([0, 0, 0, -4, 4]))))
    return entries, body


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    """A safetensors file whose header holds drawn values where the format reads them."""
    entries, body = draw(tensor_entries())
    for name in draw(st.lists(texts, max_size=3)):
        entry = {
            "dtype": draw(st.one_of(st.sampled_from(["F32", "I64"]), json_values)),
            "shape": draw(st.one_of(st.lists(integers, max_size=10), json_values)),
            "data_offsets": draw(st.one_of(st.lists(integers, max_size=3), json_values)),
        }
        if draw(st.booleans()):
            entry = _entries(draw(json_values)) | entry
        entries[name] = entry
    if draw(st.booleans()):
        entries["__metadata__"] = draw(st.one_of(st.dictionaries(texts, texts), json_values))
    header: Any = entries
    flaw = draw(st.sampled_from(["none", "none", "top", "nested", "entry"]))
    if flaw == "top":
        header = draw(json_values)
    elif flaw == "entry" and entries:
        entries[draw(st.sampled_from(sorted(entries)))] = draw(json_values)
    text = json.dumps(header, allow_nan=True).encode()
    if flaw == "nested":
        text = b'{"x":' + draw(nested()) + b"}"
    return raw_tensorfile(text, body + draw(st.binary(max_size=8)))


# -- safetensors ---------------------------------------------------------------------------


def _decoded_or_refused(data: bytes) -> None:
    try:
        tensors, metadata = decode(data, "fuzzed")
    except TensorFileError:
        return
    (size,) = struct.unpack("<Q", data[:8])
    body = len(data) - 8 - size
    assert sum(t.nbytes for t in tensors.values()) == body
    assert all(
        not t.flags.writeable and t.dtype in (np.float32, np.int64) for t in tensors.values()
    )
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes_as_a_tensor_file(data: bytes) -> None:
    _decoded_or_refused(data)


@FUZZ
@given(headers())
def test_drawn_headers(data: bytes) -> None:
    _decoded_or_refused(data)


@FUZZ
@given(mutated(VALID_FILE))
def test_mutated_tensor_files(data: bytes) -> None:
    _decoded_or_refused(data)
    with contextlib.suppress(ProofError, TensorFileError):
        decode_checkpoint(data)


@FUZZ
@given(st.one_of(mutated(VALID_BATCHES), headers()))
def test_mutated_batches(data: bytes) -> None:
    try:
        batches, first = decode_batches(data)
    except (ProofError, TensorFileError):
        return
    assert batches.dtype == np.int64 and batches.ndim == 2
    assert isinstance(first, int) and 0 <= first < 10**10


# -- strict JSON and the manifest ---------------------------------------------------------


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=128),
        st.text(max_size=64).map(str.encode),
        json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
        nested(),
    )
)
def test_strict_json_on_random_text(data: bytes) -> None:
    try:
        value = strictjson.loads(data, "fuzzed", max_depth=4, error=ProofError)
    except ProofError:
        return
    # What it accepts is plain JSON that Python's own parser reads the same way.
    assert json.loads(data) == value


MANIFEST = {
    "format": "veritrain-proof/1",
    "spec": "Qm" + "a" * 44,
    "backend": "native",
    "steps": 8,
    "checkpoint_interval": 4,
    "checkpoints": [
        {"index": i, "step": 4 * i, "cid": "Qm" + "b" * 44, "state_root": "c" * 64}
        for i in range(3)
    ],
    "segments": [
        {"index": i, "start": i, "end": i + 1, "batches": "Qm" + "d" * 44} for i in range(2)
    ],
    "final_model": "Qm" + "e" * 44,
    "checkpoint_root": "f" * 64,
}
MANIFEST_BYTES = json.dumps(MANIFEST, separators=(",", ":")).encode()


@st.composite
def manifest_values(draw: st.DrawFn) -> Any:
    """The valid manifest with one node (anywhere in it) replaced by a drawn value."""
    value = json.loads(MANIFEST_BYTES)
    node, path = value, []
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        node = node[key]
    replacement = draw(json_values)
    if not path:
        return replacement
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = replacement
    return value


def _manifest_or_refused(data: bytes) -> None:
    try:
        manifest = parse_manifest(data, "fuzzed")
    except ProofError:
        return
    assert isinstance(manifest, Manifest)
    assert parse_manifest(json.dumps(manifest.to_json()).encode()) == manifest


@FUZZ
@given(manifest_values())
def test_manifests_with_a_drawn_node(value: Any) -> None:
    _manifest_or_refused(json.dumps(value, allow_nan=True).encode())


@FUZZ
@given(mutated(MANIFEST_BYTES))
def test_mutated_manifests(data: bytes) -> None:
    _manifest_or_refused(data)


# -- a whole proof ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proof(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Manifest, Path]:
    workspace = Workspace(real_spec(), tmp_path_factory.mktemp("fuzz") / "proof")
    manifest = train(
        workspace.task, workspace.store, workspace.backend, spec_cid=workspace.spec_cid
    )
    return workspace, manifest, workspace.store.root


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_proof_with_one_mutated_artifact_gets_a_verdict(
    proof: tuple[Workspace, Manifest, Path], tmp_path_factory: pytest.TempPathFactory, data: Any
) -> None:
    workspace, manifest, root = proof
    copy = tmp_path_factory.mktemp("mutant") / "proof"
    shutil.copytree(root, copy)
    store = ProofDirectory(copy)
    position = data.draw(st.integers(1, len(manifest.cids()) - 1), label="position")
    original = store.get_bytes(manifest.cids()[position])
    crafted = store.put_bytes(data.draw(mutated(original), label="artifact"))
    checkpoints, segments = list(manifest.checkpoints), list(manifest.segments)
    update: dict[str, Any] = {}
    if position == 1:
        update["final_model"] = crafted
    elif position < 2 + len(checkpoints):
        index = position - 2
        checkpoints[index] = checkpoints[index].model_copy(update={"cid": crafted})
        update["checkpoints"] = checkpoints
    else:
        index = position - 2 - len(checkpoints)
        segments[index] = segments[index].model_copy(update={"batches": crafted})
        update["segments"] = segments
    try:
        verdict = verify(
            workspace.task,
            manifest.model_copy(update=update),
            ProofDirectory(copy, read_only=True),
            bytes(32),
            Replayer(workspace.backend),
            spec_cid=workspace.spec_cid,
        )
    except VeritrainError as exc:
        pytest.fail(f"verify raised instead of deciding: {exc!r}")
    # A mutated artifact that is read fails the proof; one that is not (a checkpoint or the
    # batches of a segment not selected) leaves it passing.
    assert verdict.passed or (verdict.reasons and verdict.fault is not None)
    shutil.rmtree(copy.parent)


def test_the_fuzzers_start_from_valid_artifacts() -> None:
    assert decode(VALID_FILE)[0].keys() == _tensors().keys()
    assert decode_batches(VALID_BATCHES)[1] == 12
    assert parse_manifest(MANIFEST_BYTES).steps == 8
    assert decode_checkpoint(encode_checkpoint({"step": np.array(0, np.float32)}))
