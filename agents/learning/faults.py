"""The fault record: what a verifier commits to when a check rejects a proof, and its check.

A verifier that rejects a proof without replaying it (the proof cannot be read,
parsed or checked against its spec) reports a fail, and it commits to *why* with
a small record that anyone can check against the solver's own commitments:

    {"cid": <CID or null>, "format": "veritrain-fault/1", "kind": <kind>,
     "manifest": <the committed manifest CID>, "position": <int or null>}

as canonical JSON (sorted keys, no spaces). ``kind``, ``position`` and ``cid`` are
the verdict's ``Fault`` (``agents.learning.verifier``): the fault class, the
artifact's place in ``Manifest.cids()`` and its CID. Free text (the reason a
person reads) is not part of it, so two honest verifiers of the same proof
write the same bytes. The commitment is ``sha256(record)``: a one-leaf Merkle
root (PROTOCOL.md §4), posted where a replaying verifier posts the root of its
trace roots.

``confirm`` re-runs the one check the record names, reading only the manifest
and the artifacts that check needs: a claim that the artifact at ``position`` is
malformed or inconsistent is confirmed iff that check fails there, with that
kind; a claim against an honest artifact is not.
"""

from __future__ import annotations

import hashlib
from typing import Any

from agents.errors import VeritrainError
from agents.learning import strictjson
from agents.learning.proof import Manifest, artifact_limits, cid_limits, read_manifest
from agents.learning.task import Task
from agents.learning.verifier import (
    Fault,
    ProofReader,
    RejectionError,
    check_final_model,
    check_initialization,
    is_own_fault,
    structure_reasons,
)
from agents.store import ArtifactStore, Retrieval, canonical_json

FORMAT = "veritrain-fault/1"
KINDS = ("manifest", "structure", "unavailable", "malformed", "inconsistent")


class FaultRecordError(VeritrainError):
    """A fault record is not one (wrong format, unknown kind, bad fields)."""


def record(fault: Fault, manifest_cid: str) -> bytes:
    """The canonical bytes of the fault record of ``fault`` in the proof ``manifest_cid``."""
    return canonical_json(
        {
            "cid": fault.cid,
            "format": FORMAT,
            "kind": fault.kind,
            "manifest": manifest_cid,
            "position": fault.position,
        }
    )


def commitment(data: bytes) -> bytes:
    """What a verifier posts for the record ``data``: its sha256 (a one-leaf Merkle root)."""
    return hashlib.sha256(data).digest()


def parse(data: bytes) -> tuple[Fault, str]:
    """The fault and manifest CID of a record; raises ``FaultRecordError`` if it is none."""
    value: Any = strictjson.loads(data, "fault record", max_depth=1, error=FaultRecordError)
    if not isinstance(value, dict) or set(value) != {
        "cid",
        "format",
        "kind",
        "manifest",
        "position",
    }:
        raise FaultRecordError("a fault record has exactly cid, format, kind, manifest, position")
    if value["format"] != FORMAT or value["kind"] not in KINDS:
        raise FaultRecordError(f"not a {FORMAT} record of a known kind")
    position, cid, manifest = value["position"], value["cid"], value["manifest"]
    if not (position is None or (isinstance(position, int) and not isinstance(position, bool))):
        raise FaultRecordError("position is an integer or null")
    if not (cid is None or isinstance(cid, str)) or not isinstance(manifest, str):
        raise FaultRecordError("cid and manifest are CIDs")
    if record(Fault(value["kind"], position, cid), manifest) != bytes(data):
        raise FaultRecordError("a fault record is canonical JSON")
    return Fault(value["kind"], position, cid), manifest


def confirm(
    task: Task,
    store: ArtifactStore,
    data: bytes,
    *,
    spec_cid: str,
    committed_root: str | None = None,
    retrieval_timeout: float | None = None,
) -> bool:
    """Whether the record ``data`` names a real fault of the proof it names.

    ``committed_root`` is the checkpoint root the solver committed on chain (hex, no
    ``0x``): a manifest that disagrees with it is a ``structure`` fault. Raises for the
    checker's own trouble (its store's backend), like ``verify``; an unparseable record
    is a ``FaultRecordError``. An ``unavailable`` fault holds when the store (a Kubo node:
    with its peers) cannot retrieve the artifact within ``retrieval_timeout`` seconds
    (``None``: the store's own setting).
    """
    fault, manifest_cid = parse(data)
    limits = artifact_limits(task.spec)
    try:
        manifest = read_manifest(store, manifest_cid, limits.manifest, "manifest")
    except VeritrainError as exc:
        if is_own_fault(exc):
            raise
        return fault.kind == "manifest"
    if fault.kind == "manifest":
        return False
    structure = structure_reasons(task, manifest, spec_cid)
    if committed_root is not None and manifest.checkpoint_root != committed_root:
        structure.append("the checkpoint root is not the committed one")
    if fault.kind == "structure" or structure:
        return fault.kind == "structure" and bool(structure)
    cids = manifest.cids()
    if fault.position is None or not 0 < fault.position < len(cids):
        return False
    if cids[fault.position] != fault.cid:
        return False
    if fault.kind == "unavailable":
        limit = cid_limits(manifest, limits)[fault.position]
        try:
            return not store.available(fault.cid, Retrieval(retrieval_timeout, limit))
        except VeritrainError as exc:
            if is_own_fault(exc):
                raise
            return True
    return _check_at(task, manifest, store, fault) == fault


def _check_at(task: Task, manifest: Manifest, store: ArtifactStore, fault: Fault) -> Fault | None:
    """The fault the verifier's own check of the artifact at ``fault.position`` finds, if any.

    The checks are the verifier's, in its order: the final model is judged only once the
    last checkpoint holds (a verifier reads that first), checkpoint 0 against the seed's
    initialization once it reads.
    """
    proof = ProofReader(task, manifest, store)
    position = fault.position
    assert position is not None
    checkpoints = len(manifest.checkpoints)
    try:
        if position == 1:
            check_final_model(task, proof)
        elif position == 2:
            check_initialization(task, proof)
        elif position < 2 + checkpoints:
            proof.checkpoint(position - 2)
        else:
            proof.batches(position - 2 - checkpoints)
    except RejectionError as exc:
        return exc.fault if exc.fault.position == position else None
    return None
