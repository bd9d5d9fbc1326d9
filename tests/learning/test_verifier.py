"""The verifier: honest proofs pass, every malformed or inconsistent proof fails with a reason."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from agents.learning import cheats
from agents.learning.layout import STEP, State
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
from agents.learning.task import Task
from agents.learning.verifier import (
    Replay,
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


def run(
    workspace: Workspace,
    manifest: Manifest,
    i: int = 0,
    replayer: Replayer | None = None,
    **kwargs: Any,
) -> Any:
    return verify(
        workspace.task,
        manifest,
        workspace.store,
        randomness(i),
        replayer or Replayer(workspace.backend),
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


def test_update_norms_are_computed_once_for_screening_and_top_updates(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.learning import screening
    from agents.learning import verifier as verifier_module
    from agents.learning.spec import parse_spec

    data = parse_spec(workspace.spec.model_dump(mode="json")).model_dump(mode="json")
    data["verification"]["top_updates"] = 2
    ws = Workspace(parse_spec(data), workspace.store.root)
    manifest = train(ws.task, ws.store, ws.backend, spec_cid=ws.spec_cid)
    before = run(ws, manifest)
    calls: list[int] = []
    norms = screening.updates

    def counted(states: Any) -> list[float]:
        calls.append(len(states))
        return norms(states)

    monkeypatch.setattr(screening, "updates", counted)
    monkeypatch.setattr(verifier_module, "updates", counted)
    verdict = run(ws, manifest)
    assert calls == [ws.spec.segment_count + 1]  # one pass over the S + 1 checkpoints
    assert verdict.selected == before.selected and len(verdict.selected) == 7


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


class RecordingReplayer(Replayer):
    """Replays as its backend does, noting each segment it begins (``begun`` is set at the
    first); the replay of segment ``failing`` raises instead."""

    def __init__(self, workspace: Workspace, failing: int | None = None) -> None:
        super().__init__(workspace.backend)
        self.interval = workspace.spec.checkpoint_interval
        self.failing = failing
        self.begun = threading.Event()
        self.replayed: list[int] = []
        self._lock = threading.Lock()

    def replay(self, task: Task, start: State, batches: np.ndarray, trace: bool = False) -> Replay:
        index = int(start[STEP]) // self.interval
        with self._lock:
            self.replayed.append(index)
        self.begun.set()
        if index == self.failing:
            raise RuntimeError(f"the replay of segment {index} broke")
        return super().replay(task, start, batches, trace)


def _lying_checkpoint(manifest: Manifest, index: int) -> Manifest:
    """Checkpoint ``index`` names checkpoint ``index - 1``'s artifact: it reads, holding the
    wrong step (rejected as it is read)."""
    entries = [
        c.model_copy(update={"cid": manifest.checkpoints[index - 1].cid}) if c.index == index else c
        for c in manifest.checkpoints
    ]
    return manifest.model_copy(update={"checkpoints": entries})


def _undecodable_batches(workspace: Workspace, manifest: Manifest, segment: int) -> Manifest:
    broken = workspace.store.put_bytes(b"not batches")
    entries = [
        s.model_copy(update={"batches": broken}) if s.index == segment else s
        for s in manifest.segments
    ]
    return manifest.model_copy(update={"segments": entries})


def test_checks_met_while_the_sample_replays_decide_as_one_segment_after_the_other(
    workspace: Workspace, honest: Manifest
) -> None:
    # With several workers the sample's replays start while the checkpoints are still read:
    # a checkpoint rejected after they started, a sampled segment's batches read early and
    # rejected, or both, give the verdict of reading everything first and replaying in order.
    last = workspace.spec.segment_count - 1
    selected = run(workspace, honest).selected
    sampled = sample_segments(randomness(0), last + 1, workspace.spec.verification.segments)
    assert selected == sampled and 0 < selected[1] < selected[2] < last - 1
    late = _lying_checkpoint(honest, last)  # read after every sampled segment but two began
    cases = {
        "late checkpoint": late,
        "late checkpoint, early batches": _undecodable_batches(workspace, late, selected[1]),
        "early batches": _undecodable_batches(workspace, honest, selected[2]),
    }
    verdicts = {}
    for name, manifest in cases.items():
        one, *others = [run(workspace, manifest, workers=n).to_json() for n in (1, 2, 3)]
        assert all(other == one for other in others), name
        verdicts[name] = one
    for name in ("late checkpoint", "late checkpoint, early batches"):
        assert verdicts[name]["segments"] == [] and verdicts[name]["verdict"] == "fail"
        assert verdicts[name]["fault"]["position"] == 2 + last  # the checkpoint, not the batches
    early = verdicts["early batches"]
    assert [s["index"] for s in early["segments"]] == selected[:2]
    assert early["fault"] == {
        "kind": "malformed",
        "position": 2 + (last + 2) + selected[2],
        "cid": early["fault"]["cid"],
    }


def test_a_replay_that_raises_is_dropped_when_a_check_rejects_the_proof(
    workspace: Workspace, honest: Manifest
) -> None:
    last = workspace.spec.segment_count - 1
    selected = run(workspace, honest).selected
    late = _lying_checkpoint(honest, last)
    rejection = run(workspace, late).to_json()
    for workers in (1, 2, 3):
        # The replay of the first random segment raises: after a check rejected the proof, the
        # rejection is the verdict; with a proof that passes the checks, the exception raises.
        replayer = RecordingReplayer(workspace, failing=selected[1])
        verdict = run(workspace, late, replayer=replayer, workers=workers)
        assert verdict.to_json() == rejection
        assert set(replayer.replayed) <= set(selected[:-1])  # never the unread checkpoint's
        with pytest.raises(RuntimeError, match=f"segment {selected[1]} broke"):
            run(
                workspace,
                honest,
                replayer=RecordingReplayer(workspace, failing=selected[1]),
                workers=workers,
            )


def test_the_sample_replays_while_the_checkpoints_are_screened(
    workspace: Workspace, honest: Manifest
) -> None:
    def began_before_selection(workers: int) -> bool:
        replayer = RecordingReplayer(workspace)
        known: list[tuple[list[int], bool]] = []

        def selected(segments: list[int]) -> None:
            # Two workers have begun the sample's first segment by now (on another thread:
            # waited for); one worker replays nothing before the selection is known.
            begun = replayer.begun.wait(timeout=60) if workers > 1 else replayer.begun.is_set()
            known.append((segments, begun))

        verdict = run(workspace, honest, replayer=replayer, workers=workers, on_selected=selected)
        assert verdict.passed and [segments for segments, _ in known] == [verdict.selected]
        assert sorted(replayer.replayed) == verdict.selected
        return known[0][1]

    assert not began_before_selection(1)
    assert began_before_selection(2)


class OverlapReplayer(Replayer):
    """Replays as its backend does, each replay waiting a moment for more than ``limit`` to
    run; ``most`` is the most replays that ran at once."""

    def __init__(self, workspace: Workspace, limit: int) -> None:
        super().__init__(workspace.backend)
        self.limit = limit
        self.running = 0
        self.most = 0
        self._changed = threading.Condition()

    def replay(self, task: Task, start: State, batches: np.ndarray, trace: bool = False) -> Replay:
        with self._changed:
            self.running += 1
            self.most = max(self.most, self.running)
            self._changed.notify_all()
            self._changed.wait_for(lambda: self.running > self.limit, timeout=0.2)
        try:
            return super().replay(task, start, batches, trace)
        finally:
            with self._changed:
                self.running -= 1

    def began(self) -> bool:
        """Whether a replay has begun (on another thread: waited for)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.most > 0, timeout=60)


@pytest.mark.parametrize(
    ("workers", "trace", "at_once"), [(2, False, 2), (2, True, 1), (3, True, 1), (4, True, 2)]
)
def test_a_traced_replay_takes_two_of_the_workers_cores(
    workspace: Workspace, honest: Manifest, workers: int, trace: bool, at_once: int
) -> None:
    # A traced replay hashes its trace on another core while it steps: on two cores one
    # replay at a time, still begun while the checkpoints are read; the same verdict.
    replayer = OverlapReplayer(workspace, at_once)
    begun: list[bool] = []
    verdict = run(
        workspace,
        honest,
        replayer=replayer,
        trace=trace,
        workers=workers,
        on_selected=lambda _segments: begun.append(replayer.began()),
    )
    assert replayer.most == at_once and begun == [True]
    one = run(workspace, honest, trace=trace).to_json()
    assert verdict.to_json() == one and verdict.passed
