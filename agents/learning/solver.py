"""The honest solver: train a task exactly as its spec says and write the proof while training.

Every ``k`` steps the batch indices of the segment just finished and the checkpoint
are stored, the checkpoint's state root computed, and both recorded in a journal
(``journal.json`` beside the proof). A writer thread does this, in checkpoint order, while
the training thread goes on with the next segment (at most ``WRITE_AHEAD`` checkpoints
wait for it): a store makes each artifact durable before it is named (``fsync``), and
those waits were the training thread's. After the last step the writer's queue is
drained, then the final model is stored and the manifest returned; a run that stops
(a failure, a crash point) drains it too, so the journal holds every checkpoint handed
over before it, and a failed write ends training with its error.

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

import numpy as np

from agents.commitment import state_root
from agents.errors import VeritrainError
from agents.files import write_atomically
from agents.learning.backends import Backend
from agents.learning.layout import State, step_of
from agents.learning.proof import (
    CheckpointEntry,
    Manifest,
    SegmentEntry,
    build_manifest,
    decode_checkpoint,
    encode_batches,
    encode_checkpoint,
    encode_model,
)
from agents.learning.task import Task
from agents.store import ArtifactStore, StoreError

JOURNAL_FORMAT = "veritrain-journal/1"
# Checkpoints the training thread may hand over before it waits for the writer.
WRITE_AHEAD = 2

Progress = Callable[[int], None]
"""Called with the number of steps done (including steps done before a resume)."""


class SolverError(VeritrainError):
    """Training could not produce a proof (bad journal, store failure, ...)."""


@dataclass
class Journal:
    """What a solver has durably written so far; ``path`` is ``None`` when nothing is kept.

    On disk: JSON lines, a header ``{"format", "spec", "backend"}`` and then one line
    per stored checkpoint, ``{"checkpoint": {...}, "segment": {...} | null}``. A line cut
    short by a crash is ignored.
    """

    path: Path | None
    spec: str
    backend: str
    checkpoints: list[CheckpointEntry]
    segments: list[SegmentEntry]

    def start(self) -> None:
        """Rewrite the file from the entries held (after a resume dropped some)."""
        if self.path is None:
            return
        lines = [json.dumps({"format": JOURNAL_FORMAT, "spec": self.spec, "backend": self.backend})]
        for checkpoint in self.checkpoints:
            segment = self.segments[checkpoint.index - 1] if checkpoint.index else None
            lines.append(self._line(checkpoint, segment))
        write_atomically(self.path, "".join(line + "\n" for line in lines).encode())

    @staticmethod
    def _line(checkpoint: CheckpointEntry, segment: SegmentEntry | None) -> str:
        return json.dumps(
            {
                "checkpoint": checkpoint.model_dump(),
                "segment": segment.model_dump() if segment is not None else None,
            }
        )

    def append(self, checkpoint: CheckpointEntry, segment: SegmentEntry | None) -> None:
        """Record a stored checkpoint (and the segment that ends there)."""
        if segment is not None:
            self.segments.append(segment)
        self.checkpoints.append(checkpoint)
        if self.path is not None:
            with self.path.open("a") as out:
                out.write(self._line(checkpoint, segment) + "\n")

    @classmethod
    def load(cls, path: Path | None, spec: str, backend: str) -> Journal:
        """The journal at ``path`` if it belongs to this spec and backend, else an empty one."""
        fresh = cls(path, spec, backend, [], [])
        if path is None or not path.exists():
            return fresh
        lines = path.read_bytes().split(b"\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            return fresh
        if not isinstance(header, dict) or header.get("format") != JOURNAL_FORMAT:
            return fresh
        if header.get("spec") != spec:
            raise SolverError(f"{path} belongs to another task ({header.get('spec')})")
        if header.get("backend") != backend:
            raise SolverError(
                f"{path} was written by backend {header.get('backend')!r}, not {backend!r}: "
                "a proof is trained with one backend"
            )
        for line in lines[1:]:
            try:
                record = json.loads(line)
                checkpoint = CheckpointEntry.model_validate(record["checkpoint"])
                segment = record["segment"]
                segment = SegmentEntry.model_validate(segment) if segment is not None else None
            except (ValueError, KeyError, TypeError):
                break  # a line cut short by a crash, and anything after it
            if checkpoint.index != len(fresh.checkpoints) or (segment is None) != (
                checkpoint.index == 0
            ):
                break
            if segment is not None:
                fresh.segments.append(segment)
            fresh.checkpoints.append(checkpoint)
        return fresh


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


def _store_checkpoint(
    store: ArtifactStore,
    journal: Journal,
    k: int,
    index: int,
    state: State,
    batches: np.ndarray | None,
) -> None:
    """Store checkpoint ``index`` (and, when given, the batches of segment ``index − 1``),
    then record both in the journal."""
    entry = None
    try:
        if batches is not None:
            segment = index - 1
            cid = store.put_bytes(encode_batches(batches, segment * k))
            entry = SegmentEntry(index=segment, start=segment, end=index, batches=cid)
        cid = store.put_bytes(encode_checkpoint(state))
    except StoreError as exc:
        raise SolverError(f"storing checkpoint {index} failed: {exc}") from exc
    checkpoint = CheckpointEntry(
        index=index, step=step_of(state), cid=cid, state_root=state_root(state).hex()
    )
    journal.append(checkpoint, entry)


class _Writer:
    """Stores handed-over checkpoints on a thread of its own, in order (see the module
    docstring); ``close`` waits for them."""

    def __init__(self, store: ArtifactStore, journal: Journal, k: int) -> None:
        self._store, self._journal, self._k = store, journal, k
        self._queue: queue.Queue[tuple[int, State, np.ndarray] | None] = queue.Queue(WRITE_AHEAD)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def put(self, index: int, state: State, batches: np.ndarray) -> None:
        """Hand checkpoint ``index`` over (waits while ``WRITE_AHEAD`` are queued); raises
        the error of a write that failed before."""
        self._raise()
        self._queue.put((index, state, batches))

    def close(self, *, raise_error: bool = True) -> None:
        """Wait until every handed-over checkpoint is stored and journaled (or a write
        failed: the ones after it are dropped) and raise that failure."""
        self._queue.put(None)
        self._thread.join()
        if raise_error:
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # a write failed: the journal ends before it
            index, state, batches = item
            try:
                _store_checkpoint(self._store, self._journal, self._k, index, state, batches)
            except BaseException as exc:  # raised again on the training thread
                self._error = exc


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
    # The spec travels with its proof, so an exported proof is complete.
    stored = store.put_bytes(spec.canonical_bytes())
    spec_cid = spec_cid or stored
    k = spec.checkpoint_interval
    journal = Journal.load(journal_path, spec_cid, backend.name)
    state = _resume_point(journal, store)
    journal.start()
    if state is None:
        state = task.initial_state()
        _store_checkpoint(store, journal, k, 0, state, None)
    done = len(journal.checkpoints) - 1 if journal.checkpoints else 0
    if step_of(state) != done * k:
        raise SolverError(f"checkpoint {done} holds step {step_of(state)}, not {done * k}")
    if progress is not None:
        progress(done * k)
    session = backend.start(task, state)
    writer = _Writer(store, journal, k)
    try:
        for segment in range(done, spec.segment_count):
            batches = task.segment_batches(segment)
            session.run(batches, progress)
            writer.put(segment + 1, session.state(), batches)
    except BaseException:
        writer.close(raise_error=False)  # the journal keeps what was handed over
        raise
    writer.close()
    final = session.state()
    try:
        final_model = store.put_bytes(encode_model(final))
    except StoreError as exc:
        raise SolverError(f"storing the final model failed: {exc}") from exc
    return build_manifest(
        spec_cid=spec_cid,
        backend=backend.name,
        steps=spec.steps,
        checkpoint_interval=k,
        checkpoints=journal.checkpoints,
        segments=journal.segments,
        final_model=final_model,
    )
