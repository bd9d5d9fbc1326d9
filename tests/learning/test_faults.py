"""Fault records: deterministic, canonical, and confirmed exactly when the fault is real."""

from __future__ import annotations

import hashlib
import json

import pytest

from agents.commitment import merkle_root
from agents.learning import faults
from agents.learning.malformed import CRAFTS, craft
from agents.learning.proof import Manifest, ProofError, artifact_limits, parse_manifest
from agents.learning.solver import train
from agents.learning.verifier import Fault, Replayer, verify
from tests.learning.conftest import Workspace

RANDOMNESS = bytes(range(32))


@pytest.fixture
def honest(workspace: Workspace) -> tuple[Manifest, str]:
    manifest = train(
        workspace.task, workspace.store, workspace.backend, spec_cid=workspace.spec_cid
    )
    return manifest, workspace.store.put_json(manifest.to_json())


def reported(workspace: Workspace, manifest_bytes: bytes) -> tuple[Fault, str]:
    """The fault a verifier reports for the committed manifest bytes, as an agent reads them."""
    cid = workspace.store.put_bytes(manifest_bytes)
    try:
        manifest = parse_manifest(manifest_bytes, limit=artifact_limits(workspace.spec).manifest)
    except ProofError:
        return Fault("manifest"), cid
    verdict = verify(
        workspace.task,
        manifest,
        workspace.store,
        RANDOMNESS,
        Replayer(workspace.backend),
        spec_cid=workspace.spec_cid,
    )
    assert not verdict.passed and verdict.fault is not None, verdict.reasons
    return verdict.fault, cid


def confirm(workspace: Workspace, data: bytes, committed_root: str | None = None) -> bool:
    return faults.confirm(
        workspace.task,
        workspace.store,
        data,
        spec_cid=workspace.spec_cid,
        committed_root=committed_root,
    )


@pytest.mark.parametrize("name", sorted(CRAFTS))
def test_the_fault_of_every_craft_is_confirmed(
    workspace: Workspace, honest: tuple[Manifest, str], name: str
) -> None:
    manifest, honest_cid = honest
    proof = craft(name, workspace.spec, workspace.store, manifest)
    fault, cid = reported(workspace, proof.manifest)
    assert fault.kind == proof.fault
    data = faults.record(fault, cid)
    assert faults.parse(data) == (fault, cid)
    assert confirm(workspace, data)
    # The same claim against the honest proof is refused.
    assert not confirm(workspace, faults.record(fault, honest_cid))


def test_false_claims_against_an_honest_proof_are_refused(
    workspace: Workspace, honest: tuple[Manifest, str]
) -> None:
    manifest, cid = honest
    checkpoints = len(manifest.checkpoints)
    cids = manifest.cids()
    claims = [Fault("manifest"), Fault("structure")]
    for position in (1, 2, 2 + checkpoints - 1, 2 + checkpoints, len(cids) - 1):
        for kind in ("unavailable", "malformed", "inconsistent"):
            claims.append(Fault(kind, position, cids[position]))
    claims += [Fault("malformed", 0, cids[0]), Fault("malformed", len(cids), cids[1])]
    for claim in claims:
        assert not confirm(workspace, faults.record(claim, cid)), claim
    assert not confirm(workspace, faults.record(Fault("structure"), cid), manifest.checkpoint_root)
    assert confirm(workspace, faults.record(Fault("structure"), cid), "0" * 64)


def test_a_claim_must_name_the_right_kind_place_and_artifact(
    workspace: Workspace, honest: tuple[Manifest, str]
) -> None:
    manifest, _ = honest
    proof = craft("step-nan", workspace.spec, workspace.store, manifest)
    fault, cid = reported(workspace, proof.manifest)
    assert fault.kind == "inconsistent" and fault.position == 2 + len(manifest.checkpoints) - 1
    for wrong in (
        Fault("malformed", fault.position, fault.cid),
        Fault("inconsistent", 2, fault.cid),
        Fault("inconsistent", fault.position, manifest.checkpoints[0].cid),
        Fault("unavailable", fault.position, fault.cid),
    ):
        assert not confirm(workspace, faults.record(wrong, cid)), wrong


def test_the_record_is_canonical_and_committed_by_its_hash() -> None:
    fault = Fault("malformed", 7, "Qm" + "a" * 44)
    data = faults.record(fault, "Qm" + "b" * 44)
    assert json.loads(data) == {
        "cid": "Qm" + "a" * 44,
        "format": "veritrain-fault/1",
        "kind": "malformed",
        "manifest": "Qm" + "b" * 44,
        "position": 7,
    }
    assert b" " not in data
    commitment = faults.commitment(data)
    assert commitment == hashlib.sha256(data).digest() == merkle_root([commitment])
    for bad in (
        data.replace(b'"position":7', b'"position":7.0'),
        data.replace(b'"kind":"malformed"', b'"kind":"other"'),
        data.replace(b"veritrain-fault/1", b"veritrain-fault/2"),
        data.replace(b",", b", "),
        data[:-1] + b',"extra":1}',
        data.replace(b'"position":7', b'"position":true'),
    ):
        with pytest.raises(faults.FaultRecordError):
            faults.parse(bad)
