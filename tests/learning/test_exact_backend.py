"""Proofs with the exact kernels: exact mode verifies with equal roots and zero distances,
a resumed exact run writes the same proof, and the exact replayer accepts native proofs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from agents.learning import cheats
from agents.learning.backends import get_backend
from agents.learning.proof import Manifest
from agents.learning.solver import train
from agents.learning.verifier import (
    Replayer,
    VerificationInputError,
    default_replay_backend,
    verify,
)
from tests.learning.conftest import Workspace, real_spec

pytest.importorskip("agents.learning.backends.exact", reason="the exact kernels are not installed")


def randomness(i: int) -> bytes:
    return hashlib.sha256(b"exact" + bytes([i])).digest()


@pytest.fixture
def exact_workspace(tmp_path: Path) -> Workspace:
    spec = real_spec(verification={"segments": 3, "tolerance": "exact"}, steps=24)
    workspace = Workspace(spec, tmp_path)
    workspace.backend = get_backend("exact")
    return workspace


def test_the_verifier_defaults_to_the_exact_replayer() -> None:
    assert default_replay_backend() == "exact"


def test_exact_proof_verifies_with_equal_roots(exact_workspace: Workspace) -> None:
    w = exact_workspace
    manifest = train(w.task, w.store, w.backend, spec_cid=w.spec_cid)
    for i in range(3):
        verdict = verify(
            w.task,
            manifest,
            w.store,
            randomness(i),
            Replayer(get_backend("exact")),
            spec_cid=w.spec_cid,
            trace=True,
        )
        assert verdict.passed, verdict.to_json()
        for segment in verdict.segments:
            assert segment.replay_root == segment.claimed_root
            assert segment.distance == 0 and set(segment.distances.values()) == {0.0}
            assert segment.trace_root is not None and len(segment.trace_root) == 64


def test_segments_replayed_side_by_side_give_the_same_verdict(exact_workspace: Workspace) -> None:
    w = exact_workspace
    honest = train(w.task, w.store, w.backend, spec_cid=w.spec_cid)
    cheat = cheats.average_neighbours(w.store, honest, 2)

    def verdicts(manifest: Manifest, i: int) -> list[dict[str, Any]]:
        return [
            verify(
                w.task,
                manifest,
                w.store,
                randomness(i),
                Replayer(get_backend("exact")),
                spec_cid=w.spec_cid,
                trace=True,
                workers=workers,
            ).to_json()
            for workers in (1, 2, 3)
        ]

    outcomes = set()
    for i in range(4):
        for manifest in (honest, cheat.manifest):
            one, *others = verdicts(manifest, i)
            assert all(other == one for other in others)
            assert all(s["trace_root"] for s in one["segments"])
            outcomes.add(one["verdict"])
    assert outcomes == {"pass", "fail"}
    # The second selected segment's batches do not decode: the first is replayed, then the
    # proof is rejected with that fault, however many replay at once.
    selected = verify(
        w.task, honest, w.store, randomness(0), Replayer(w.backend), spec_cid=w.spec_cid
    ).selected
    broken = w.store.put_bytes(b"not batches")
    segments = [
        s.model_copy(update={"batches": broken}) if s.index == selected[1] else s
        for s in honest.segments
    ]
    one, *others = verdicts(honest.model_copy(update={"segments": segments}), 0)
    assert all(other == one for other in others)
    assert one["verdict"] == "fail" and [s["index"] for s in one["segments"]] == selected[:1]
    with pytest.raises(VerificationInputError, match="workers"):
        verify(
            w.task,
            honest,
            w.store,
            randomness(0),
            Replayer(w.backend),
            spec_cid=w.spec_cid,
            workers=0,
        )


def test_exact_mode_rejects_a_native_proof(exact_workspace: Workspace) -> None:
    w = exact_workspace
    manifest = train(w.task, w.store, get_backend("native"), spec_cid=w.spec_cid)
    verdict = verify(
        w.task,
        manifest,
        w.store,
        randomness(0),
        Replayer(get_backend("exact")),
        spec_cid=w.spec_cid,
    )
    assert not verdict.passed
    assert any("state root differs" in r for r in verdict.reasons)


def test_resumed_exact_run_writes_the_same_proof(
    exact_workspace: Workspace, tmp_path: Path
) -> None:
    w = exact_workspace
    journal = tmp_path / "journal.json"

    def crash(done: int) -> None:
        if done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(w.task, w.store, w.backend, spec_cid=w.spec_cid, journal_path=journal, progress=crash)
    resumed = train(w.task, w.store, w.backend, spec_cid=w.spec_cid, journal_path=journal)
    assert resumed == train(w.task, w.store, w.backend, spec_cid=w.spec_cid)


def test_exact_replayer_accepts_an_honest_native_proof(tmp_path: Path) -> None:
    w = Workspace(real_spec(), tmp_path)
    manifest = train(w.task, w.store, w.backend, spec_cid=w.spec_cid)
    verdict = verify(
        w.task,
        manifest,
        w.store,
        randomness(1),
        Replayer(get_backend("exact")),
        spec_cid=w.spec_cid,
    )
    assert verdict.passed, verdict.to_json()
    assert 0 < max(s.distance for s in verdict.segments) < 1e-4
