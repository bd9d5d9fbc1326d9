"""The verifier: honest proofs pass, every malformed or inconsistent proof fails with a reason."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from agents.learning import cheats
from agents.learning.proof import (
    CheckpointEntry,
    Manifest,
    decode_checkpoint,
    encode_batches,
    encode_checkpoint,
    encode_model,
)
from agents.learning.selection import sample_segments
from agents.learning.solver import train
from agents.learning.verifier import (
    Replayer,
    VerificationInputError,
    verify,
)
from tests.learning.conftest import Workspace


def randomness(i: int) -> bytes:
    return hashlib.sha256(b"randomness" + i.to_bytes(4, "big")).digest()


@pytest.fixture
def honest(workspace: Workspace) -> Manifest:
    return train(workspace.task, workspace.store, workspace.backend, spec_cid=workspace.spec_cid)


def run(workspace: Workspace, manifest: Manifest, i: int = 0, **kwargs: Any) -> Any:
    return verify(
        workspace.task,
        manifest,
        workspace.store,
        randomness(i),
        Replayer(workspace.backend),
        spec_cid=workspace.spec_cid,
        **kwargs,
    )


def test_honest_proof_passes_with_zero_distance_on_the_same_backend(
    workspace: Workspace, honest: Manifest
) -> None:
    verdict = run(workspace, honest)
    assert verdict.passed, verdict.reasons
    body = verdict.to_json()
    assert body["verdict"] == "pass" and body["reasons"] == []
    # The first and last segments, three random ones; an honest proof raises no screening flag.
    assert len(body["segments"]) == 5 and all(s["distance"] == 0 for s in body["segments"])
    assert all(s["replay_root"] == s["claimed_root"] for s in body["segments"])
    expected = sample_segments(randomness(0), 10, 3)
    assert body["selected"] == expected


def test_top_update_segments_are_added(workspace: Workspace, honest: Manifest) -> None:
    from agents.learning.spec import parse_spec

    data = parse_spec(workspace.spec.model_dump(mode="json")).model_dump(mode="json")
    data["verification"]["top_updates"] = 2
    spec = parse_spec(data)
    ws = Workspace(spec, workspace.store.root)
    manifest = train(ws.task, ws.store, ws.backend, spec_cid=ws.spec_cid)
    verdict = run(ws, manifest)
    assert verdict.passed and len(verdict.selected) == 7
    assert [s.sampled for s in verdict.segments] == [True] * 5 + [False] * 2


def _swap(entries: list[CheckpointEntry], i: int, j: int) -> list[CheckpointEntry]:
    out = list(entries)
    out[i], out[j] = out[j], out[i]
    return out


def _put(workspace: Workspace, data: bytes) -> str:
    return workspace.store.put_bytes(data)


def _state(workspace: Workspace, manifest: Manifest, i: int) -> dict[str, np.ndarray]:
    return dict(decode_checkpoint(workspace.store.get_bytes(manifest.checkpoints[i].cid)))


Tamper = Callable[[Workspace, Manifest], Manifest]

TAMPERS: list[tuple[str, Tamper, str]] = [
    ("other spec", lambda w, m: m.model_copy(update={"spec": "Qm" + "c" * 44}), "for spec"),
    ("fewer steps", lambda w, m: m.model_copy(update={"steps": 36}), "claims 36 steps"),
    (
        "missing segment",
        lambda w, m: m.model_copy(update={"segments": m.segments[:-1]}),
        "the spec needs",
    ),
    (
        "reordered checkpoints",
        lambda w, m: m.model_copy(update={"checkpoints": _swap(m.checkpoints, 2, 3)}),
        "listed as index",
    ),
    (
        "wrong checkpoint root",
        lambda w, m: m.model_copy(update={"checkpoint_root": "0" * 64}),
        "Merkle root",
    ),
    (
        "missing artifact",
        lambda w, m: m.model_copy(update={"final_model": "Qm" + "d" * 44}),
        "not available",
    ),
    (
        "recorded root lies",
        lambda w, m: m.model_copy(
            update={
                "checkpoints": [
                    c.model_copy(update={"cid": m.checkpoints[1].cid}) if c.index == 0 else c
                    for c in m.checkpoints
                ]
            }
        ),
        "state root the manifest records|holds step",
    ),
    (
        "other initialization",
        lambda w, m: cheats.replace_checkpoint(
            w.store, m, 0, {**_state(w, m, 0), "param/layers.0.bias": np.ones(8, np.float32)}
        ),
        "initialization",
    ),
    (
        "extra tensor",
        lambda w, m: cheats.replace_checkpoint(
            w.store, m, 0, {**_state(w, m, 0), "param/bonus": np.ones(1, np.float32)}
        ),
        "unexpected tensors",
    ),
    (
        "wrong final model",
        lambda w, m: m.model_copy(update={"final_model": _put(w, encode_model(_state(w, m, 3)))}),
        "final model",
    ),
    (
        "checkpoint not a checkpoint",
        lambda w, m: m.model_copy(
            update={"final_model": _put(w, encode_checkpoint(_state(w, m, 10)))}
        ),
        "format",
    ),
    (
        "other data order recorded",
        lambda w, m: m.model_copy(
            update={
                "segments": [
                    s.model_copy(
                        update={
                            "batches": _put(
                                w,
                                encode_batches(w.task.segment_batches(s.index)[::-1], s.index * 4),
                            )
                        }
                    )
                    for s in m.segments
                ]
            }
        ),
        "data order",
    ),
]


@pytest.mark.parametrize(("name", "tamper", "words"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampered_proofs_are_rejected_before_any_replay(
    workspace: Workspace, honest: Manifest, name: str, tamper: Tamper, words: str
) -> None:
    verdict = run(workspace, tamper(workspace, honest))
    assert not verdict.passed
    assert verdict.segments == []
    assert any(re.search(words, r) for r in verdict.reasons), verdict.reasons


def test_averaged_checkpoint_fails_exactly_when_its_segments_are_sampled(
    workspace: Workspace, honest: Manifest
) -> None:
    cheat = cheats.average_neighbours(workspace.store, honest, 5)
    outcomes = set()
    for i in range(40):
        verdict = run(workspace, cheat.manifest, i)
        hit = bool(set(verdict.selected) & cheat.faked)
        assert verdict.passed == (not hit)
        for segment in verdict.segments:
            assert segment.passed == (segment.index not in cheat.faked)
        outcomes.add(hit)
    assert outcomes == {True, False}


def test_thresholds(workspace: Workspace, honest: Manifest) -> None:
    with pytest.raises(VerificationInputError, match="32 bytes"):
        verify(
            workspace.task,
            honest,
            workspace.store,
            b"x",
            Replayer(workspace.backend),
            spec_cid=workspace.spec_cid,
        )
    spec = workspace.spec.model_copy(
        update={"verification": workspace.spec.verification.model_copy(update={"tau": None})}
    )
    task = workspace.task.__class__(
        spec, workspace.task.dataset, workspace.task.inputs, workspace.task.targets
    )
    with pytest.raises(VerificationInputError, match="threshold"):
        verify(
            task,
            honest,
            workspace.store,
            randomness(0),
            Replayer(workspace.backend),
            spec_cid=workspace.spec_cid,
        )
    assert run(workspace, honest, tau=0.0).passed  # same backend: distance exactly 0


def test_segments_replayed_side_by_side_give_the_same_verdict(
    workspace: Workspace, honest: Manifest
) -> None:
    # Tolerant mode with native torch replays: the same selection, distances, order and
    # verdicts for any number of replays at once, on honest and cheating proofs.
    cheat = cheats.average_neighbours(workspace.store, honest, 5)
    outcomes = set()
    for i in range(6):
        for manifest in (honest, cheat.manifest):
            one, *others = [run(workspace, manifest, i, workers=n).to_json() for n in (1, 2, 4)]
            assert all(other == one for other in others)
            outcomes.add(one["verdict"])
    assert outcomes == {"pass", "fail"}
