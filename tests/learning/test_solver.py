"""The honest solver: the proof it writes, and resuming after a crash."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from agents.commitment import state_root
from agents.learning.proof import (
    decode_batches,
    decode_checkpoint,
    decode_model,
    encode_batches,
    encode_checkpoint,
    encode_model,
)
from agents.learning.solver import SolverError, train
from agents.store import StoreError
from tests.learning.conftest import Workspace


def test_proof_lists_every_checkpoint_and_segment(workspace: Workspace) -> None:
    manifest = train(
        workspace.task, workspace.store, workspace.backend, spec_cid=workspace.spec_cid
    )
    spec = workspace.spec
    assert [c.step for c in manifest.checkpoints] == list(range(0, spec.steps + 1, 4))
    assert [(s.start, s.end) for s in manifest.segments] == [(i, i + 1) for i in range(10)]
    first = decode_checkpoint(workspace.store.get_bytes(manifest.checkpoints[0].cid))
    assert state_root(first) == state_root(workspace.task.initial_state())
    for entry in manifest.checkpoints:
        state = decode_checkpoint(workspace.store.get_bytes(entry.cid))
        assert state_root(state).hex() == entry.state_root
    batches, first_step = decode_batches(workspace.store.get_bytes(manifest.segments[3].batches))
    assert first_step == 12 and np.array_equal(batches, workspace.task.segment_batches(3))
    last = decode_checkpoint(workspace.store.get_bytes(manifest.checkpoints[-1].cid))
    model = decode_model(workspace.store.get_bytes(manifest.final_model))
    assert all(np.array_equal(model[n], last[n]) for n in model) and "step" not in model


class CrashError(Exception):
    pass


def _crash_at(step: int):  # type: ignore[no-untyped-def]
    def progress(done: int) -> None:
        if done == step:
            raise CrashError

    return progress


@pytest.mark.parametrize("crash_step", [1, 9, 16, 39])
def test_resumed_run_writes_the_same_proof(
    workspace: Workspace, tmp_path: Path, crash_step: int
) -> None:
    args = (workspace.task, workspace.store, workspace.backend)
    journal = tmp_path / "journal.json"
    with pytest.raises(CrashError):
        train(
            *args, spec_cid=workspace.spec_cid, journal_path=journal, progress=_crash_at(crash_step)
        )
    assert journal.exists()
    resumed = train(*args, spec_cid=workspace.spec_cid, journal_path=journal)
    straight = train(*args, spec_cid=workspace.spec_cid)
    assert resumed == straight


def test_journal_of_another_task_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    with pytest.raises(CrashError):
        train(
            workspace.task,
            workspace.store,
            workspace.backend,
            spec_cid=workspace.spec_cid,
            journal_path=journal,
            progress=_crash_at(5),
        )
    with pytest.raises(SolverError, match="another task"):
        train(
            workspace.task,
            workspace.store,
            workspace.backend,
            spec_cid="Qm" + "z" * 44,
            journal_path=journal,
        )


def test_damaged_last_checkpoint_is_retrained(workspace: Workspace, tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    args = (workspace.task, workspace.store, workspace.backend)
    with pytest.raises(CrashError):
        train(*args, spec_cid=workspace.spec_cid, journal_path=journal, progress=_crash_at(21))
    newest = max(workspace.store.artifacts.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(b"garbage")
    resumed = train(*args, spec_cid=workspace.spec_cid, journal_path=journal)
    assert resumed == train(*args, spec_cid=workspace.spec_cid)
    for cid in resumed.cids()[1:]:
        workspace.store.get_bytes(cid)  # every artifact reads back with its CID


def test_journal_cut_short_by_a_crash_is_read_up_to_the_cut(
    workspace: Workspace, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.json"
    args = (workspace.task, workspace.store, workspace.backend)
    with pytest.raises(CrashError):
        train(*args, spec_cid=workspace.spec_cid, journal_path=journal, progress=_crash_at(30))
    lines = journal.read_text().splitlines()
    assert len(lines) >= 4
    journal.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    resumed = train(*args, spec_cid=workspace.spec_cid, journal_path=journal)
    assert resumed == train(*args, spec_cid=workspace.spec_cid)
    assert len(journal.read_text().splitlines()) == workspace.spec.segment_count + 2


def test_stacked_task_starts_from_its_parent_model(workspace: Workspace, tmp_path: Path) -> None:
    from agents.learning.initialization import ParentModelError
    from agents.learning.spec import parse_spec
    from agents.learning.task import open_task
    from agents.learning.verifier import Replayer, verify

    parent = train(workspace.task, workspace.store, workspace.backend, spec_cid=workspace.spec_cid)
    data = workspace.spec.model_dump(mode="json") | {"parent": parent.final_model, "seed": 1}
    child_spec = parse_spec(data)
    child = open_task(child_spec, workspace.store)
    first = child.initial_state()
    model = decode_model(workspace.store.get_bytes(parent.final_model))
    assert all(np.array_equal(first[n], model[n]) for n in model)
    child_cid = workspace.store.put_bytes(child_spec.canonical_bytes())
    manifest = train(child, workspace.store, workspace.backend, spec_cid=child_cid)
    verdict = verify(
        child, manifest, workspace.store, bytes(32), Replayer(workspace.backend), spec_cid=child_cid
    )
    assert verdict.passed, verdict.reasons
    # The seed's own initialization is not checkpoint 0 of a stacked task.
    orphan = verify(
        workspace.task.__class__.bind(child_spec, workspace.task.dataset),
        manifest,
        workspace.store,
        bytes(32),
        Replayer(workspace.backend),
        spec_cid=child_cid,
    )
    assert not orphan.passed and "initialization" in orphan.reasons[0]
    wrong = dict(model)
    wrong.pop("param/layers.0.bias")
    with pytest.raises(ParentModelError, match="no tensor"):
        workspace.task.__class__.bind(child_spec, workspace.task.dataset, wrong).initial_state()


def test_a_store_failure_names_the_checkpoint_and_the_run_resumes(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = (workspace.task, workspace.store, workspace.backend)
    journal = tmp_path / "journal.json"
    put_bytes = workspace.store.put_bytes
    calls = []

    def failing(data: bytes) -> str:
        # The spec, checkpoint 0, then per segment its batches and its checkpoint: the
        # fifth call stores the batches of segment 1, part of checkpoint 2.
        calls.append(len(data))
        if len(calls) == 5:
            raise StoreError("disk full")
        return put_bytes(data)

    monkeypatch.setattr(workspace.store, "put_bytes", failing)
    with pytest.raises(SolverError, match="storing checkpoint 2 failed: disk full"):
        train(*args, spec_cid=workspace.spec_cid, journal_path=journal)
    monkeypatch.setattr(workspace.store, "put_bytes", put_bytes)
    resumed = train(*args, spec_cid=workspace.spec_cid, journal_path=journal)
    assert resumed == train(*args, spec_cid=workspace.spec_cid)


def test_checkpoints_are_stored_off_the_training_thread_and_drained_at_a_crash(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The training thread hands checkpoints to a writer thread; a run that stops waits for it,
    so the journal lists every checkpoint whose steps were done (here 0 … 5 of k = 4, the
    crash in step 22), in order."""
    put_bytes = workspace.store.put_bytes
    threads: list[str] = []

    def recording(data: bytes) -> str:
        threads.append(threading.current_thread().name)
        return put_bytes(data)

    monkeypatch.setattr(workspace.store, "put_bytes", recording)
    journal = tmp_path / "journal.json"
    args = (workspace.task, workspace.store, workspace.backend)
    with pytest.raises(CrashError):
        train(*args, spec_cid=workspace.spec_cid, journal_path=journal, progress=_crash_at(22))
    # The spec and checkpoint 0 before training starts, then each segment's batches and
    # checkpoint on the writer.
    assert threads[:2] == [threading.current_thread().name] * 2
    assert set(threads[2:]) == {"checkpoint-writer"} and len(threads) == 2 + 2 * 5
    lines = journal.read_text().splitlines()
    indices = [json.loads(line)["checkpoint"]["index"] for line in lines[1:]]
    assert indices == [0, 1, 2, 3, 4, 5]


def test_proof_bytes_are_those_of_the_documented_encoders_in_segment_order(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Every artifact and journal line the writer thread produces is the one a plain loop over
    the segments writes with the proof's encoders and the state root."""
    journal = tmp_path / "journal.json"
    manifest = train(
        workspace.task,
        workspace.store,
        workspace.backend,
        spec_cid=workspace.spec_cid,
        journal_path=journal,
    )
    task, spec = workspace.task, workspace.spec
    session = workspace.backend.start(task, task.initial_state())
    states = [task.initial_state()]
    for segment in range(spec.segment_count):
        session.run(task.segment_batches(segment))
        states.append(session.state())
    k = spec.checkpoint_interval
    records = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    assert len(records) == len(states) == len(manifest.checkpoints)
    for index, (state, record, entry) in enumerate(
        zip(states, records, manifest.checkpoints, strict=True)
    ):
        assert workspace.store.get_bytes(entry.cid) == encode_checkpoint(state)
        assert entry.state_root == state_root(state).hex() == record["checkpoint"]["state_root"]
        assert record["checkpoint"]["cid"] == entry.cid and record["checkpoint"]["index"] == index
        if index:
            stored = manifest.segments[index - 1]
            batches = task.segment_batches(index - 1)
            assert workspace.store.get_bytes(stored.batches) == encode_batches(
                batches, (index - 1) * k
            )
            assert record["segment"]["batches"] == stored.batches
        else:
            assert record["segment"] is None
    assert workspace.store.get_bytes(manifest.final_model) == encode_model(states[-1])
