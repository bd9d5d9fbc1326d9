"""What a proof can cost its verifier: bounded memory, and a verdict whatever the store says.

Memory is measured with tracemalloc (numpy's buffers included), so the figures do
not depend on what else runs on the machine. The bounds are the ones docs/proof.md
states: an artifact is never held beyond the size the spec implies, a tensor-file
header takes at most 32 times its size once parsed, and a crafted proof makes the
verifier allocate no more than an honest one does plus one artifact's room.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.learning.malformed import CRAFTS, craft
from agents.learning.proof import (
    Manifest,
    ProofDirectory,
    ProofError,
    artifact_limits,
    parse_manifest,
)
from agents.learning.solver import train
from agents.learning.tensorfile import TensorFileError, decode
from agents.learning.verifier import Replayer, Verdict, verify
from agents.store import AddOptions, ArtifactStore, BackendError, InvalidCIDError
from agents.store.cid import CID, DAG_PB, RAW
from agents.store.dagpb import encode_node
from agents.store.embedded import EmbeddedStore
from agents.store.unixfs import encode_inner
from tests.learning.conftest import Workspace

RANDOMNESS = bytes(range(32))
HEADER_FACTOR = 32


def peak(run: Callable[[], Any]) -> tuple[Any, int]:
    """``run()``'s result and the most memory it held at once (bytes, tracemalloc)."""
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def honest(workspace: Workspace) -> Manifest:
    manifest = train(
        workspace.task, workspace.store, workspace.backend, spec_cid=workspace.spec_cid
    )
    workspace.store.write_manifest(manifest)
    return manifest


def check(workspace: Workspace, manifest: Manifest, store: ArtifactStore | None = None) -> Verdict:
    return verify(
        workspace.task,
        manifest,
        store if store is not None else workspace.store,
        RANDOMNESS,
        Replayer(workspace.backend),
        spec_cid=workspace.spec_cid,
    )


class Relay(ArtifactStore):
    """Another store's content through the generic interface (streamed by ``open``), with
    faults injected for chosen CIDs."""

    def __init__(self, inner: ArtifactStore, faults: dict[str, BaseException] | None = None):
        self.inner = inner
        self.faults = faults or {}
        self.opened: list[str] = []

    def _fault(self, cid: str) -> None:
        if cid in self.faults:
            raise self.faults[cid]

    def put_bytes(self, data: bytes, options: AddOptions | None = None) -> str:
        return self.inner.put_bytes(data, options)

    def put_file(self, path: Path, options: AddOptions | None = None) -> str:
        return self.inner.put_file(path, options)

    def open(self, cid: str) -> Iterator[bytes]:
        self.opened.append(cid)
        self._fault(cid)
        return self.inner.open(cid)

    def has(self, cid: str) -> bool:
        return self.inner.has(cid)

    def pin(self, cid: str) -> None:
        self.inner.pin(cid)

    def unpin(self, cid: str) -> None:
        self.inner.unpin(cid)

    def pins(self) -> list[str]:
        return self.inner.pins()


# -- memory --------------------------------------------------------------------------------


def test_an_oversized_artifact_is_refused_without_being_read(
    workspace: Workspace, honest: Manifest
) -> None:
    path = workspace.store.artifacts / honest.checkpoints[0].cid
    path.unlink()
    with path.open("wb") as f:
        f.truncate(512 << 20)  # sparse: costs no disk
    verdict, used = peak(lambda: check(workspace, honest))
    assert not verdict.passed and "the spec allows" in verdict.reasons[0]
    assert used < 1 << 20, used


def test_a_store_stream_is_cut_at_the_spec_limit(
    workspace: Workspace, honest: Manifest, tmp_path: Path
) -> None:
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    for cid in honest.cids():
        store.put_bytes(workspace.store.get_bytes(cid))
    big = store.put_bytes(b"\x00" * (16 << 20))
    checkpoints = list(honest.checkpoints)
    checkpoints[0] = checkpoints[0].model_copy(update={"cid": big})
    crafted = honest.model_copy(update={"checkpoints": checkpoints})
    verdict, used = peak(lambda: check(workspace, crafted, store))
    assert not verdict.passed and "larger than" in verdict.reasons[0]
    assert verdict.fault is not None and verdict.fault.kind == "malformed"
    limit = artifact_limits(workspace.spec).checkpoint
    assert used < limit + (2 << 20), used  # the limit and a piece or two of 256 KiB


ROOM = 1 << 20
HEADERS = {
    "empty lists": b'{"a":[' + b"[]," * (ROOM // 3 - 4) + b"[]]}",
    "empty objects": b'{"a":{' + b",".join(b'"%d":{}' % i for i in range(ROOM // 11)) + b"}}",
    "zeros": b'{"a":[' + b"0," * (ROOM // 2 - 4) + b"0]}",
    "empty strings": b'{"a":[' + b'"",' * (ROOM // 3 - 4) + b'""]}',
    "tensors": b"{"
    + b",".join(
        b'"%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}' % i for i in range(ROOM // 56)
    )
    + b"}",
}


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_a_parsed_header_takes_at_most_32_times_its_size(name: str) -> None:
    header = HEADERS[name]
    data = struct.pack("<Q", len(header)) + header

    def parse() -> None:
        with contextlib.suppress(TensorFileError):
            decode(data, max_header_bytes=len(header))

    _, used = peak(parse)
    assert used <= HEADER_FACTOR * len(header), (used, len(header))


@pytest.mark.parametrize("name", sorted(CRAFTS))
def test_a_crafted_proof_costs_no_more_than_an_honest_one_and_one_artifact(
    workspace: Workspace, honest: Manifest, name: str
) -> None:
    limits = artifact_limits(workspace.spec)
    _, honest_peak = peak(lambda: check(workspace, honest))
    proof = craft(name, workspace.spec, workspace.store, honest)

    def crafted() -> Verdict | str:
        try:
            manifest = parse_manifest(proof.manifest, limit=limits.manifest)
        except ProofError as exc:
            return str(exc)
        return check(workspace, manifest)

    outcome, used = peak(crafted)
    assert isinstance(outcome, str) or not outcome.passed
    room = max(limits.checkpoint, limits.manifest) + HEADER_FACTOR * max(
        limits.checkpoint_header, limits.manifest
    )
    assert used <= honest_peak + room, (used, honest_peak, room)


# -- whose fault ---------------------------------------------------------------------------


def test_the_verifiers_own_store_failure_raises_instead_of_a_verdict(
    workspace: Workspace, honest: Manifest
) -> None:
    store = Relay(workspace.store, {honest.checkpoints[0].cid: BackendError("node unreachable")})
    with pytest.raises(BackendError, match="unreachable"):
        check(workspace, honest, store)


def test_a_dag_too_deep_to_walk_is_the_proofs_fault(workspace: Workspace, honest: Manifest) -> None:
    cid = honest.checkpoints[0].cid
    verdict = check(workspace, honest, Relay(workspace.store, {cid: RecursionError()}))
    assert not verdict.passed and verdict.fault is not None
    assert (verdict.fault.kind, verdict.fault.position, verdict.fault.cid) == ("malformed", 2, cid)


def test_a_deep_dag_in_a_real_store_is_the_proofs_fault(
    workspace: Workspace, honest: Manifest, tmp_path: Path
) -> None:
    """Blocks put straight into the store, as a peer could serve them: a file DAG 5,000
    links deep, which the reader refuses long before the bottom (no content on the way)."""
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    for cid in honest.cids():
        store.put_bytes(workspace.store.get_bytes(cid))
    leaf = b"a leaf"
    child = CID(1, RAW, hashlib.sha256(leaf).digest())
    store._blocks.put(child, [leaf])
    size = len(leaf)
    for _ in range(5000):
        block = encode_node([(child.to_bytes(), size)], encode_inner(len(leaf), [len(leaf)]))
        child = CID(0, DAG_PB, hashlib.sha256(block).digest())
        store._blocks.put(child, [block])
        size += len(block)
    deep = str(child)
    assert store.has(deep)
    crafted = honest.model_copy(update={"final_model": deep})
    verdict = check(workspace, crafted, store)
    assert verdict.fault is not None and (verdict.fault.kind, verdict.fault.position) == (
        "malformed",
        1,
    )
    assert "no importer writes" in verdict.reasons[0]


def test_a_dag_repeating_an_empty_leaf_is_the_proofs_fault(
    workspace: Workspace, honest: Manifest, tmp_path: Path
) -> None:
    """A final model of two 80 KB blocks that link an empty leaf 4,000,000 times, as a peer
    could serve them: available, refused after a bounded walk instead of hours of one."""
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    for cid in honest.cids():
        store.put_bytes(workspace.store.get_bytes(cid))
    child, size, tsize = CID(1, RAW, hashlib.sha256(b"").digest()), 0, 0
    store._blocks.put(child, [b""])
    for _ in range(2):
        block = encode_node([(child.to_bytes(), tsize)] * 2000, encode_inner(0, [size] * 2000))
        child = CID(0, DAG_PB, hashlib.sha256(block).digest())
        store._blocks.put(child, [block])
        tsize = len(block) + 2000 * tsize
    crafted = honest.model_copy(update={"final_model": str(child)})
    verdict = check(workspace, crafted, store)
    assert verdict.fault is not None and (verdict.fault.kind, verdict.fault.position) == (
        "malformed",
        1,
    )
    assert "no importer writes" in verdict.reasons[0]


def test_a_cid_the_store_cannot_parse_is_unavailable(
    workspace: Workspace, honest: Manifest, tmp_path: Path
) -> None:
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    for cid in honest.cids():
        store.put_bytes(workspace.store.get_bytes(cid))
    bogus = "Qm" + "0" * 44  # fits the manifest's CID text, but 0 is no base-58 digit
    with pytest.raises(InvalidCIDError):
        store.has(bogus)
    crafted = honest.model_copy(update={"final_model": bogus})
    verdict = check(workspace, crafted, store)
    assert verdict.fault is not None and verdict.fault.kind == "unavailable"
    assert verdict.fault.position == 1 and bogus in verdict.reasons[0]


def test_reads_go_only_as_far_as_the_first_fault(workspace: Workspace, honest: Manifest) -> None:
    """A rejected proof is not read further: no segment is replayed, no batches are read."""
    proof = craft("step-nan", workspace.spec, workspace.store, honest)
    relay = Relay(workspace.store)
    verdict = check(workspace, parse_manifest(proof.manifest), relay)
    assert verdict.segments == [] and verdict.fault is not None
    batches = {s.batches for s in honest.segments}
    assert not batches & set(relay.opened)


def test_the_manifest_is_not_read_past_its_limit(workspace: Workspace, honest: Manifest) -> None:
    store = ProofDirectory(workspace.store.root, read_only=True)
    limit = artifact_limits(workspace.spec).manifest
    (workspace.store.root / "manifest.json").write_bytes(b" " * (limit + 1))
    with pytest.raises(ProofError, match="the spec allows"):
        store.manifest_bytes(limit)
