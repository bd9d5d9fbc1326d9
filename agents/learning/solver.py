"""The honest solver: train a task exactly as its spec says and write the proof while training.

Every ``k`` steps the live state is copied and handed to a writer thread, which
stores the batch indices of the segment just finished and the checkpoint, computes the
checkpoint's state root, and records both in a journal (``journal.json`` beside
the proof). Training does not wait for any of it. After the last step the
writer stores the final model and the manifest.

A solver that was killed resumes from the last checkpoint in its journal: the
checkpoint is read back (and checked against its recorded state root), a new
session starts from it, and training goes on. With a deterministic backend
(the exact kernels, or native torch on the same machine and settings) the proof
is byte for byte the one an uninterrupted run writes.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.commitment import state_root
from agents.errors import VeritrainError
from agents.learning.backend import Backend
from agents.learning.layout import State, step_of
from agents.learning.proof import (
    CheckpointEntry,
    Manifest,
    SegmentEntry,
    checkpoint_root,
    decode_checkpoint,
    encode_batches,
    encode_checkpoint,
    encode_model,
    read_json_file,
    write_atomically,
)
from agents.learning.task import Task
from agents.store import ArtifactStore, StoreError

JOURNAL_FORMAT = "veritrain-journal/1"

Progress = Callable[[int], None]
"""Called with the number of steps done (including steps done before a resume)."""


class SolverError(VeritrainError):
    """Training could not produce a proof (bad journal, store failure, ...)."""


@dataclass
class Journal:
    """What a solver has durably written so far; ``path`` is ``None`` when nothing is kept."""

    path: Path | None
    spec: str
    backend: str
    checkpoints: list[CheckpointEntry]
    segments: list[SegmentEntry]

    def save(self) -> None:
        if self.path is None:
            return
        data = {
            "format": JOURNAL_FORMAT,
            "spec": self.spec,
            "backend": self.backend,
            "checkpoints": [c.model_dump() for c in self.checkpoints],
            "segments": [s.model_dump() for s in self.segments],
        }
        write_atomically(self.path, json.dumps(data).encode())

    @classmethod
    def load(cls, path: Path | None, spec: str, backend: str) -> Journal:
        """The journal at ``path`` if it belongs to this spec and backend, else an empty one."""
        raw: Any = read_json_file(path) if path is not None else None
        fresh = cls(path, spec, backend, [], [])
        if not isinstance(raw, dict) or raw.get("format") != JOURNAL_FORMAT:
            return fresh
        if raw.get("spec") != spec:
            raise SolverError(
                f"{path} belongs to another task ({raw.get('spec')}); use a new --out"
            )
        if raw.get("backend") != backend:
            raise SolverError(
                f"{path} was written by backend {raw.get('backend')!r}, not {backend!r}: "
                "a proof is trained with one backend"
            )
        try:
            checkpoints = [CheckpointEntry.model_validate(c) for c in raw["checkpoints"]]
            segments = [SegmentEntry.model_validate(s) for s in raw["segments"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise SolverError(f"{path} is damaged ({exc}); remove it to start over") from None
        return cls(path, spec, backend, checkpoints, segments)


def _resume_point(journal: Journal, store: ArtifactStore) -> State | None:
    """The newest journaled checkpoint that reads back with its recorded root (entries after it
    are dropped), or ``None`` if there is none."""
    while journal.checkpoints:
        entry = journal.checkpoints[-1]
        try:
            state = dict(decode_checkpoint(store.get_bytes(entry.cid)))
        except VeritrainError:
            state = None
        if state is not None and state_root(state).hex() == entry.state_root:
            journal.segments = journal.segments[: entry.index]
            return state
        journal.checkpoints.pop()
    journal.segments = []
    return None


class _Writer:
    """One background thread that stores checkpoints in order and keeps the journal."""

    def __init__(self, store: ArtifactStore, journal: Journal, k: int) -> None:
        self._store = store
        self._journal = journal
        self._k = k
        self._jobs: queue.Queue[tuple[int, State, np.ndarray | None] | None] = queue.Queue(8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def submit(self, index: int, state: State, batches: np.ndarray | None) -> None:
        """Queue checkpoint ``index`` (and, when given, the batches of segment ``index − 1``)."""
        if self._error is not None:
            raise SolverError(f"writing checkpoints failed: {self._error}") from self._error
        self._jobs.put((index, state, batches))

    def close(self) -> None:
        """Wait until everything queued is stored; re-raise a failure of the writer."""
        self._jobs.put(None)
        self._thread.join()
        if self._error is not None:
            raise SolverError(f"writing checkpoints failed: {self._error}") from self._error

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._error is not None:
                continue
            try:
                self._write(*job)
            except BaseException as exc:  # reported to the training thread
                self._error = exc

    def _write(self, index: int, state: State, batches: np.ndarray | None) -> None:
        if batches is not None:
            segment = index - 1
            cid = self._store.put_bytes(encode_batches(batches, segment * self._k))
            entry = SegmentEntry(index=segment, start=segment, end=index, batches=cid)
            self._journal.segments.append(entry)
        cid = self._store.put_bytes(encode_checkpoint(state))
        root = state_root(state).hex()
        step = step_of(state)
        self._journal.checkpoints.append(
            CheckpointEntry(index=index, step=step, cid=cid, state_root=root)
        )
        self._journal.save()


def train(
    task: Task,
    store: ArtifactStore,
    backend: Backend,
    *,
    spec_cid: str | None = None,
    journal_path: Path | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Train ``task`` with ``backend``, write every artifact to ``store``, return the manifest.

    With ``journal_path`` the run is resumable: a rerun with the same arguments
    continues after the last checkpoint the journal records.
    """
    spec = task.spec
    spec_cid = spec_cid or store.put_bytes(spec.canonical_bytes())
    k = spec.checkpoint_interval
    journal = Journal.load(journal_path, spec_cid, backend.name)
    state = _resume_point(journal, store)
    writer = _Writer(store, journal, k)
    try:
        if state is None:
            state = task.initial_state()
            writer.submit(0, state, None)
        done = len(journal.checkpoints) - 1 if journal.checkpoints else 0
        if step_of(state) != done * k:
            raise SolverError(f"checkpoint {done} holds step {step_of(state)}, not {done * k}")
        if progress is not None:
            progress(done * k)
        session = backend.start(task, state)
        for segment in range(done, spec.segment_count):
            batches = task.segment_batches(segment)
            session.run(batches, progress)
            writer.submit(segment + 1, session.state(), batches)
    finally:
        writer.close()
    final = session.state()
    try:
        final_model = store.put_bytes(encode_model(final))
    except StoreError as exc:
        raise SolverError(f"storing the final model failed: {exc}") from exc
    roots = [bytes.fromhex(c.state_root) for c in journal.checkpoints]
    return Manifest(
        format="veritrain-proof/1",
        spec=spec_cid,
        backend=backend.name,
        steps=spec.steps,
        checkpoint_interval=k,
        checkpoints=journal.checkpoints,
        segments=journal.segments,
        final_model=final_model,
        checkpoint_root=checkpoint_root(roots).hex(),
    )
