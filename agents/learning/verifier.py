"""The verifier: check a proof against its spec, replay sampled segments, and decide.

``verify`` first runs every check that needs no training; each failure is a
reason to reject, and any reason ends verification before a replay:

- the manifest names this spec, its step count and ``k``; checkpoint ``i`` is
  at step ``i·k`` for ``i = 0 … S``; segment ``i`` runs from checkpoint ``i``
  to ``i + 1``; the checkpoint root is the Merkle root of the state roots;
- every artifact the manifest names is available; every artifact read is
  checked against its CID by the store;
- checkpoint 0 is the seed's initialization (same state root);
- every checkpoint read has the spec's layout (names, shapes, float32), its
  recorded step, and its recorded state root; the final model is the last
  checkpoint's parameters;
- the batch indices of a segment are the seed's data order.

Then the segments are selected (``agents.learning.selection``) and each is
replayed from the solver's checkpoint ``i`` with its recorded batches through
a ``Replayer``; the distance (``agents.learning.distance``) to checkpoint
``i + 1`` must not exceed τ. In exact mode τ = 0 and the replay's state root
must equal the claimed one. The verdict passes iff there is no reason to reject.
With ``workers`` > 1 the selected segments are replayed on ``replays_at_once`` threads
(the kernels and the trace hashing run without the GIL), and the sample's
replays start while the calling thread still checks the other artifacts' availability
and reads and screens the checkpoints: the sample's artifacts are checked for
availability first, each sampled segment is started once they all are and its two
checkpoints and its batches are read, the segments screening adds once it is done. An
unavailable artifact is the same rejection as without early replays. The verdict is the
one a replay of one segment after the other gives, the first trouble in segment order
included: what an early read gives (the batches, a rejection, the verifier's own
trouble) and what an early replay gives are kept and met where reading and replaying
one segment after the other meets them, after every check of the checkpoints and the
selection; the replays a rejection makes useless are dropped (those running are waited
for, those queued cancelled).

Whatever the proof holds, ``verify`` ends with a verdict: every artifact is read
only up to the size the spec implies (``agents.learning.proof.artifact_limits``)
and parsed strictly, and anything unreadable, malformed or inconsistent is a
reason to reject, recorded with its ``Fault`` (what kind, which artifact, where
the manifest names it) so that the claim can be checked later. Only the
verifier's own trouble (its store's backend unreachable, its disk) raises: that
is not the proof's fault, and the caller retries.
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from agents.commitment import state_root
from agents.errors import VeritrainError
from agents.learning.backends import Backend, Session, backend_available
from agents.learning.distance import group_distances, segment_distance
from agents.learning.layout import STEP, State, layout_problems, parameters
from agents.learning.proof import (
    ArtifactLimits,
    Buffer,
    Manifest,
    MissingArtifactError,
    artifact_limits,
    checkpoint_root,
    cid_limits,
    decode_batches,
    decode_checkpoint,
    decode_model,
    read_artifact,
)
from agents.learning.screening import extra_segments, screen_states, updates
from agents.learning.selection import largest_updates, sample_segments
from agents.learning.spec import TaskSpec
from agents.learning.task import Task
from agents.learning.verdict import binary32_tau, rule
from agents.store import ArtifactStore, MissingBlockError, Retrieval
from agents.store import BackendError as StoreBackendError

# The replay backend that decides exact mode: only the exact kernels compute the bits
# the claimed state roots commit to.
EXACT_BACKEND = "exact"


class VerificationInputError(VeritrainError):
    """Verification cannot start: the inputs (not the proof) are unusable."""


FaultKind = Literal["manifest", "structure", "unavailable", "malformed", "inconsistent"]


@dataclass(frozen=True)
class Fault:
    """Why a proof was rejected before (or instead of) a replay, as data a dispute can check.

    ``kind``: ``manifest`` (the manifest itself cannot be read or parsed),
    ``structure`` (the manifest does not describe a proof of this spec, or its
    checkpoint root is not the root of its state roots), ``unavailable`` (an
    artifact it names cannot be had), ``malformed`` (an artifact cannot be read as
    its format: too large, bad header, wrong dtype, ...), ``inconsistent`` (an
    artifact reads but contradicts the spec or the manifest: layout, step, state
    root, data order, initialization, final model). ``position`` is the artifact's
    place in ``Manifest.cids()`` (0 spec, 1 final model, ``2 + i`` checkpoint ``i``,
    ``3 + S + j`` the batches of segment ``j``) and ``cid`` its CID; both are
    ``None`` for the manifest itself and for structure faults.
    """

    kind: FaultKind
    position: int | None = None
    cid: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "position": self.position, "cid": self.cid}


class RejectionError(Exception):
    """A reason to reject the proof (internal: becomes a verdict reason and its fault)."""

    def __init__(self, reason: str, fault: Fault) -> None:
        super().__init__(reason)
        self.fault = fault


def is_own_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is the verifier's own trouble rather than the proof's: its store's
    backend (a node, its disk) failed, or something that is no ``VeritrainError`` (a bug)."""
    return isinstance(exc, StoreBackendError) or not isinstance(exc, VeritrainError)


@dataclass(frozen=True)
class Replay:
    """The state a replay reached and, if the backend traces, the root of its trace."""

    state: State
    trace_root: bytes | None
    # The live session, so the distance can be computed inside the replay's trace.
    session: Session | None = None


def default_replay_backend() -> str:
    """The verifier's default replayer: the exact kernels where installed, else native torch."""
    return "exact" if backend_available("exact") else "native"


class Replayer:
    """Replays segments of a proof through a training backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def replay(self, task: Task, start: State, batches: np.ndarray, trace: bool = False) -> Replay:
        """Run ``batches`` (one row per step) from ``start``; return the end state (and, with
        ``trace`` and a tracing backend, the root of the replay's trace)."""
        session = self.backend.start(task, start, trace=trace)
        session.run(batches)
        return Replay(session.state(), session.trace_root(), session)


@dataclass
class SegmentVerdict:
    """The outcome of replaying one segment."""

    index: int
    first_step: int
    sampled: bool
    distance: float
    distances: dict[str, float]
    claimed_root: str
    replay_root: str
    trace_root: str | None
    passed: bool
    # The binary32 bits this segment's report carries (agents.learning.verdict).
    reported: int = 0

    def to_json(self) -> dict[str, Any]:
        def number(x: float) -> float | str:
            return x if math.isfinite(x) else "inf"

        return {
            "index": self.index,
            "first_step": self.first_step,
            "sampled": self.sampled,
            "distance": number(self.distance),
            "distances": {k: number(v) for k, v in self.distances.items()},
            "claimed_root": self.claimed_root,
            "replay_root": self.replay_root,
            "trace_root": self.trace_root,
            "pass": self.passed,
            "reported": f"0x{self.reported:08x}",
        }


@dataclass
class Verdict:
    """Pass or fail, with every replayed segment and every reason to reject."""

    tau: float
    backend: str
    manifest: str | None
    selected: list[int] = field(default_factory=list)
    segments: list[SegmentVerdict] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    # Set when the proof was rejected by a check rather than by a replay.
    fault: Fault | None = None

    @property
    def passed(self) -> bool:
        return not self.reasons and all(s.passed for s in self.segments)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": "pass" if self.passed else "fail",
            "segments": [s.to_json() for s in self.segments],
            "reasons": list(self.reasons),
            "selected": list(self.selected),
            "tau": self.tau,
            "backend": self.backend,
            "manifest": self.manifest,
            "fault": self.fault.to_json() if self.fault is not None else None,
        }

    def reject(self, reason: str, fault: Fault) -> Verdict:
        """Add a reason found by a check, keeping the first fault; returns ``self``."""
        self.reasons.append(reason)
        if self.fault is None:
            self.fault = fault
        return self


class ProofReader:
    """Reads a proof's artifacts once each, bounded by the spec, checking each as it is read."""

    def __init__(self, task: Task, manifest: Manifest, store: ArtifactStore) -> None:
        self.task = task
        self.manifest = manifest
        self.store = store
        self.limits = artifact_limits(task.spec)
        self._states: dict[int, State] = {}

    def checkpoint_position(self, index: int) -> int:
        return 2 + index

    def batches_position(self, segment: int) -> int:
        return 2 + len(self.manifest.checkpoints) + segment

    def sample_positions(self, segments: list[int]) -> list[int]:
        """The positions (``Fault.position``) of what replaying ``segments`` reads: checkpoints
        ``i`` and ``i + 1`` and the batches of segment ``i``, in increasing order."""
        return sorted(
            {
                p
                for i in segments
                for p in (
                    self.checkpoint_position(i),
                    self.checkpoint_position(i + 1),
                    self.batches_position(i),
                )
            }
        )

    def read(self, cid: str, limit: int, what: str, position: int) -> Buffer:
        """The artifact's bytes; a proof fault becomes a rejection, the verifier's own raises."""
        try:
            return read_artifact(self.store, cid, limit, what)
        except VeritrainError as exc:
            if is_own_fault(exc):
                raise
            raise RejectionError(str(exc), Fault(_kind(exc), position, cid)) from None

    def checkpoint(self, index: int) -> State:
        state = self._states.get(index)
        if state is not None:
            return state
        entry = self.manifest.checkpoints[index]
        what = f"checkpoint {index}"
        position = self.checkpoint_position(index)
        data = self.read(entry.cid, self.limits.checkpoint, what, position)
        malformed = Fault("malformed", position, entry.cid)
        inconsistent = Fault("inconsistent", position, entry.cid)
        try:
            state = dict(
                decode_checkpoint(data, what, max_header_bytes=self.limits.checkpoint_header)
            )
        except VeritrainError as exc:
            raise RejectionError(str(exc), malformed) from None
        problems = layout_problems(self.task.spec, state)
        if problems:
            raise RejectionError(
                f"{what} does not fit the architecture: {'; '.join(problems)}", inconsistent
            )
        # The layout makes ``step`` a float32 scalar; it may still be NaN, infinite or 0.5.
        step = float(state[STEP])
        if step != entry.step:
            raise RejectionError(
                f"{what} holds step {step!r}, the manifest says {entry.step}", inconsistent
            )
        if state_root(state).hex() != entry.state_root:
            raise RejectionError(
                f"{what} does not have the state root the manifest records", inconsistent
            )
        self._states[index] = state
        return state

    def batches(self, segment: int) -> np.ndarray:
        entry = self.manifest.segments[segment]
        what = f"batches of segment {segment}"
        position = self.batches_position(segment)
        data = self.read(entry.batches, self.limits.batches, what, position)
        try:
            batches, first = decode_batches(data, what, max_header_bytes=self.limits.batches_header)
        except VeritrainError as exc:
            raise RejectionError(str(exc), Fault("malformed", position, entry.batches)) from None
        expected = self.task.segment_batches(segment)
        k = self.task.spec.checkpoint_interval
        inconsistent = Fault("inconsistent", position, entry.batches)
        if first != segment * k or batches.shape != expected.shape:
            raise RejectionError(
                f"{what} are not the {expected.shape} indices from step {segment * k}",
                inconsistent,
            )
        if not np.array_equal(batches, expected):
            raise RejectionError(f"{what} are not the seed's data order", inconsistent)
        return batches

    def final_model(self) -> State:
        cid = self.manifest.final_model
        data = self.read(cid, self.limits.model, "final model", 1)
        try:
            return decode_model(data, "final model", max_header_bytes=self.limits.model_header)
        except VeritrainError as exc:
            raise RejectionError(str(exc), Fault("malformed", 1, cid)) from None


def _kind(exc: VeritrainError) -> FaultKind:
    """A read that failed: the artifact is not there, or it is there but unreadable."""
    return (
        "unavailable" if isinstance(exc, (MissingBlockError, MissingArtifactError)) else "malformed"
    )


def structure_reasons(task: Task, manifest: Manifest, spec_cid: str) -> list[str]:
    spec = task.spec
    k, count = spec.checkpoint_interval, spec.segment_count
    reasons = []
    if manifest.spec != spec_cid:
        reasons.append(f"the proof is for spec {manifest.spec}, not {spec_cid}")
    if manifest.steps != spec.steps or manifest.checkpoint_interval != k:
        reasons.append(
            f"the proof claims {manifest.steps} steps with k={manifest.checkpoint_interval}, "
            f"the spec says {spec.steps} steps with k={k}"
        )
    if len(manifest.checkpoints) != count + 1 or len(manifest.segments) != count:
        reasons.append(
            f"the proof has {len(manifest.checkpoints)} checkpoints and {len(manifest.segments)} "
            f"segments, the spec needs {count + 1} and {count}"
        )
        return reasons
    for i, entry in enumerate(manifest.checkpoints):
        if entry.index != i or entry.step != i * k:
            reasons.append(f"checkpoint {i} is listed as index {entry.index} at step {entry.step}")
            break
    for i, segment in enumerate(manifest.segments):
        if (segment.index, segment.start, segment.end) != (i, i, i + 1):
            reasons.append(f"segment {i} does not run from checkpoint {i} to {i + 1}")
            break
    roots = [bytes.fromhex(c.state_root) for c in manifest.checkpoints]
    if checkpoint_root(roots).hex() != manifest.checkpoint_root:
        reasons.append("the checkpoint root is not the Merkle root of the state roots")
    return reasons


def _unavailable(
    manifest: Manifest,
    store: ArtifactStore,
    limits: ArtifactLimits,
    timeout: float | None,
    first: list[int] | None = None,
    start_sample: Callable[[], None] | None = None,
) -> tuple[str, Fault] | None:
    """The first artifact (in ``Manifest.cids()`` order) that cannot be retrieved, if any.

    Available means retrievable within the store's retrieval timeout and the artifact's size
    limit, from the store or (a Kubo node) its peers: a verifier whose node does not hold
    the solver's blocks yet must not call them missing. The check stops at the first
    unavailable artifact (it is the fault), so a proof nobody serves costs one timeout.

    With ``first`` (positions in ``Manifest.cids()``, increasing), those artifacts are checked
    first and ``start_sample`` is called once they are all available, before the others
    are checked; the answer is the same. If one of them is unavailable, the artifacts
    before it are checked in order and the first unavailable of those, or else it, is the
    answer (then at most two timeouts).
    """
    bounds = list(zip(manifest.cids(), cid_limits(manifest, limits), strict=True))
    checked: set[int] = set()
    if first is not None:
        for position in first:
            found = _retrieval_fault(store, position, *bounds[position], timeout)
            if found is None:
                continue
            for before in range(position):
                if before not in first:
                    earlier = _retrieval_fault(store, before, *bounds[before], timeout)
                    if earlier is not None:
                        return earlier
            return found
        checked.update(first)
        if start_sample is not None:
            start_sample()
    for position, (cid, limit) in enumerate(bounds):
        if position not in checked:
            found = _retrieval_fault(store, position, cid, limit, timeout)
            if found is not None:
                return found
    return None


def _retrieval_fault(
    store: ArtifactStore, position: int, cid: str, limit: int, timeout: float | None
) -> tuple[str, Fault] | None:
    """The ``unavailable`` rejection of the artifact at ``position``, or ``None`` if it can be
    retrieved; the verifier's own trouble raises."""
    try:
        store.require_available(cid, Retrieval(timeout, limit))
    except VeritrainError as exc:
        if is_own_fault(exc):
            raise
        # Not retrievable in time, too large, a CID the store cannot parse, or a proof
        # directory without artifacts/.
        return f"artifact {cid} is not available: {exc}", Fault("unavailable", position, cid)
    return None


def replays_at_once(workers: int, trace: bool) -> int:
    """How many segments ``verify`` replays at once with ``workers`` cores: one per core, or
    with a trace one per two cores, since a traced replay hashes its trace on the other cores
    while it steps (two traced replays side by side on two cores took longer and more CPU
    than one after the other)."""
    return max(1, workers // 2) if trace else workers


def _select(
    task: Task,
    proof: ProofReader,
    randomness: bytes,
    on_read: Callable[[int], None] | None = None,
) -> tuple[list[int], list[int]]:
    """The task's sample, then the extra segments: those screening flags
    (``agents.learning.screening``) and the spec's largest updates, each in increasing order.
    Screening reads every checkpoint, in order; ``on_read`` is called with each index read."""
    spec = task.spec
    sampled = sample_segments(randomness, spec.segment_count, spec.verification.segments)
    states = []
    for i in range(spec.segment_count + 1):
        states.append(proof.checkpoint(i))
        if on_read is not None:
            on_read(i)
    norms = updates(states)  # once, for screening and for the largest updates alike
    flagged = extra_segments(screen_states(task, states, norms), sampled)
    top: list[int] = []
    if spec.verification.top_updates:
        top = largest_updates(norms, sampled + flagged, spec.verification.top_updates)
    return sampled, sorted(flagged + top)


def verify(
    task: Task,
    manifest: Manifest,
    store: ArtifactStore,
    randomness: bytes,
    replayer: Replayer,
    *,
    spec_cid: str,
    tau: float | None = None,
    manifest_cid: str | None = None,
    trace: bool = False,
    workers: int = 1,
    retrieval_timeout: float | None = None,
    on_selected: Callable[[list[int]], None] | None = None,
) -> Verdict:
    """Check ``manifest`` (artifacts in ``store``) against ``task`` and replay selected segments.

    ``tau`` overrides the spec's threshold in tolerant mode; exact mode always uses 0.
    ``trace`` asks the replayer for the trace root of every replay (what a verifier
    posts on chain; the exact backend records one, at some cost in time).
    ``workers``: the cores the replays may use (the same verdict for any number); with more
    than one, the sample's replays start while the other artifacts are checked for
    availability and the checkpoints are read, ``replays_at_once`` of them at a time.
    ``retrieval_timeout``: seconds the store may take to retrieve each artifact it does not
    hold (a Kubo node asks its peers; ``None``: the store's own setting); an artifact not
    retrieved by then is the solver's ``unavailable`` fault.
    ``on_selected`` is called with the selected segments once the checks of the
    checkpoints and screening are done (replays of the sample may be running then).
    Raises ``VerificationInputError`` when no threshold is known or the randomness is
    malformed, or ``workers`` is below 1.
    """
    if workers < 1:
        raise VerificationInputError(f"workers must be at least 1, got {workers}")
    spec = task.spec
    if len(randomness) != 32:
        raise VerificationInputError(f"randomness is 32 bytes, got {len(randomness)}")
    exact = spec.verification.tolerance == "exact"
    tau = threshold(spec, tau)
    if exact and replayer.backend.name != EXACT_BACKEND:
        raise VerificationInputError(
            f"an exact-mode spec is decided by the {EXACT_BACKEND} backend; "
            f"{replayer.backend.describe()} cannot reproduce the state roots it commits to"
        )
    verdict = Verdict(tau, replayer.backend.describe(), manifest_cid)
    structure = structure_reasons(task, manifest, spec_cid)
    if structure:
        for reason in structure:
            verdict.reject(reason, Fault("structure"))
        return verdict
    limits = artifact_limits(spec)
    proof = ProofReader(task, manifest, store)
    how = (tau, exact, trace)
    try:
        if workers == 1:
            unavailable = _unavailable(manifest, store, limits, retrieval_timeout)
            if unavailable is not None:
                return verdict.reject(*unavailable)
            _check_ends(task, proof)
            sampled, extra = _select(task, proof, randomness)
            verdict.selected = sampled + extra
            if on_selected is not None:
                on_selected(list(verdict.selected))
            _replay_segments(
                task, proof, replayer, verdict.selected, set(sampled), how, verdict.segments
            )
        else:
            early = sample_segments(randomness, spec.segment_count, spec.verification.segments)
            at_once = replays_at_once(workers, trace)
            with _SideBySide(task, proof, replayer, early, how, at_once) as replays:
                # The sample's replays run while the rest of the proof is checked for
                # availability; an unavailable artifact still rejects the proof (the replays
                # are dropped).
                unavailable = _unavailable(
                    manifest,
                    store,
                    limits,
                    retrieval_timeout,
                    proof.sample_positions(early),
                    replays.start_sample,
                )
                if unavailable is not None:
                    return verdict.reject(*unavailable)
                _check_ends(task, proof)
                sampled, extra = _select(task, proof, randomness, replays.checkpoint_read)
                verdict.selected = sampled + extra
                if on_selected is not None:
                    on_selected(list(verdict.selected))
                replays.finish(verdict.selected, verdict.segments)
    except RejectionError as exc:
        return verdict.reject(str(exc), exc.fault)
    for segment in verdict.segments:
        if not segment.passed:
            verdict.reasons.append(
                f"segment {segment.index}: the replay's state root differs from the claim "
                f"(distance {segment.distance:.3g})"
                if exact
                else f"segment {segment.index}: distance {segment.distance:.3g} exceeds τ={tau:g}"
            )
    return verdict


def input_rejection(
    spec: TaskSpec,
    replayer: Replayer,
    reason: str,
    fault: Fault,
    *,
    tau: float | None = None,
    manifest_cid: str | None = None,
) -> Verdict:
    """The verdict on a proof that fails before ``verify`` can start: its manifest (or, in a
    proof directory, the copy of the dataset it must hold) cannot be read or parsed."""
    verdict = Verdict(threshold(spec, tau), replayer.backend.describe(), manifest_cid)
    return verdict.reject(reason, fault)


def threshold(spec: TaskSpec, tau: float | None = None) -> float:
    """τ: 0 in exact mode, else ``tau`` or the spec's, rounded to binary32 (the chain's
    threshold); raises ``VerificationInputError`` when tolerant mode has none (or an
    unusable one)."""
    verification = spec.verification
    if verification.tolerance == "exact":
        return 0.0
    value = tau if tau is not None else verification.tau
    if value is None or value < 0 or not math.isfinite(value):
        raise VerificationInputError(
            "tolerant mode needs a threshold: set verification.tau in the spec or pass one "
            "(veritrain pol profile proposes τ)"
        )
    return binary32_tau(value)


def _check_ends(task: Task, proof: ProofReader) -> None:
    check_initialization(task, proof)
    proof.checkpoint(task.spec.segment_count)
    check_final_model(task, proof)


def check_initialization(task: Task, proof: ProofReader) -> None:
    """Checkpoint 0 reads and is the seed's initialization."""
    first = proof.checkpoint(0)
    if state_root(first) != state_root(task.initial_state()):
        raise RejectionError(
            "checkpoint 0 is not the initialization the seed fixes",
            Fault("inconsistent", proof.checkpoint_position(0), proof.manifest.checkpoints[0].cid),
        )


def check_final_model(task: Task, proof: ProofReader) -> None:
    """The last checkpoint reads, and the final model is its parameters."""
    last = proof.checkpoint(task.spec.segment_count)
    model = proof.final_model()
    if state_root(model) != state_root(parameters(last)):
        raise RejectionError(
            "the final model is not the last checkpoint's parameters",
            Fault("inconsistent", 1, proof.manifest.final_model),
        )


def _replay_segments(
    task: Task,
    proof: ProofReader,
    replayer: Replayer,
    selected: list[int],
    sampled: set[int],
    how: tuple[float, bool, bool],
    verdicts: list[SegmentVerdict],
) -> None:
    """Append the verdicts of the ``selected`` segments to ``verdicts``, replaying one after
    the other on the calling thread (``how``: τ, exact mode, trace).

    The inputs are read here, in order, until one is rejected; the segments before it are
    replayed and their verdicts appended in order, a replay's exception raised; then the
    rejected input is raised. ``_SideBySide`` keeps to this order with several workers.
    """
    tau, exact, trace = how
    inputs: list[tuple[int, State, State, np.ndarray]] = []
    rejected: RejectionError | None = None
    for index in selected:
        try:
            start, claimed = proof.checkpoint(index), proof.checkpoint(index + 1)
            inputs.append((index, start, claimed, proof.batches(index)))
        except RejectionError as exc:
            rejected = exc
            break
    for index, start, claimed, batches in inputs:
        replay = replayer.replay(task, start, batches, trace)
        verdicts.append(
            _segment_verdict(
                task, proof, replay, index, index in sampled, start, claimed, tau, exact, trace
            )
        )
    if rejected is not None:
        raise rejected


_Read = tuple[State, State, np.ndarray] | Exception


class _SideBySide:
    """The selected segments' replays on ``threads`` threads (``how``: τ, exact mode, trace),
    the sample's started while the calling thread reads and screens the proof.

    ``checkpoint_read(i)``, called as the checkpoints are read in order, starts each sampled
    segment whose two checkpoints are read: its batches are read there and then, and what
    that gives is kept (batches, a rejection, any other exception) to be met in order by
    ``finish``, which reads the rest of the selection's inputs, starts their replays and
    collects every verdict as ``_replay_segments`` does. Leaving the block waits for the
    replays still running and cancels those not begun.
    """

    def __init__(
        self,
        task: Task,
        proof: ProofReader,
        replayer: Replayer,
        sampled: list[int],
        how: tuple[float, bool, bool],
        threads: int,
    ) -> None:
        self._task, self._proof, self._replayer = task, proof, replayer
        self._sampled = set(sampled)
        self._how = how
        self._read: set[int] = set()
        self._inputs: dict[int, _Read] = {}
        self._replays: dict[int, concurrent.futures.Future[SegmentVerdict]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="replay")

    def __enter__(self) -> _SideBySide:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start_sample(self) -> None:
        """Read the sample's inputs and start their replays, in segment order (what a read
        gives is kept for ``finish`` as ``checkpoint_read`` keeps it)."""
        for segment in sorted(self._sampled):
            self._start(segment)

    def checkpoint_read(self, index: int) -> None:
        self._read.add(index)
        for segment in (index - 1, index):
            if segment in self._sampled and {segment, segment + 1} <= self._read:
                self._start(segment)

    def _start(self, index: int) -> None:
        """Read ``index``'s inputs (once) and start its replay if they are good."""
        if index not in self._inputs:
            try:
                start, claimed = self._proof.checkpoint(index), self._proof.checkpoint(index + 1)
                self._inputs[index] = (start, claimed, self._proof.batches(index))
            except Exception as exc:  # met in order by finish
                self._inputs[index] = exc
        read = self._inputs[index]
        if index not in self._replays and not isinstance(read, Exception):
            self._replays[index] = self._pool.submit(self._one, index, *read)

    def _one(self, index: int, start: State, claimed: State, batches: np.ndarray) -> SegmentVerdict:
        tau, exact, trace = self._how
        task = self._task
        replay = self._replayer.replay(task, start, batches, trace)
        sampled = index in self._sampled
        return _segment_verdict(
            task, self._proof, replay, index, sampled, start, claimed, tau, exact, trace
        )

    def finish(self, selected: list[int], verdicts: list[SegmentVerdict]) -> None:
        """Append the verdicts of the ``selected`` segments to ``verdicts``: their inputs met
        in order until one is rejected (any other trouble reading raises at once), the
        replays of those before it collected in order, a replay's exception raised, then
        the rejection."""
        started: list[concurrent.futures.Future[SegmentVerdict]] = []
        rejected: RejectionError | None = None
        for index in selected:
            self._start(index)
            read = self._inputs[index]
            if isinstance(read, RejectionError):
                rejected = read
                break
            if isinstance(read, Exception):
                raise read
            started.append(self._replays[index])
        for future in started:
            verdicts.append(future.result())
        if rejected is not None:
            raise rejected


def _segment_verdict(
    task: Task,
    proof: ProofReader,
    replay: Replay,
    index: int,
    sampled: bool,
    start: State,
    claimed: State,
    tau: float,
    exact: bool,
    trace: bool,
) -> SegmentVerdict:
    spec = task.spec.verification
    trace_root = replay.trace_root
    traced = None
    if trace and replay.session is not None:
        # A tracing backend computes the distance as the last part of its trace, so a
        # disputed distance is adjudicable like any other op (PROTOCOL.md §3).
        traced = replay.session.traced_distances(start, claimed, spec.metric, spec.epsilon)
        if traced is not None:
            trace_root = replay.session.trace_root()
    if traced is not None:
        distances = traced
    else:
        distances = group_distances(start, claimed, replay.state, spec.metric, spec.epsilon)
    distance = segment_distance(distances)
    claimed_root = proof.manifest.checkpoints[index + 1].state_root
    replay_root = state_root(replay.state).hex()
    ruling = rule(
        exact=exact,
        claimed_root=claimed_root,
        replay_root=replay_root,
        distance=distance,
        tau=tau,
    )
    return SegmentVerdict(
        index=index,
        first_step=index * task.spec.checkpoint_interval,
        sampled=sampled,
        distance=distance,
        distances=distances,
        claimed_root=claimed_root,
        replay_root=replay_root,
        trace_root=trace_root.hex() if trace_root is not None else None,
        passed=ruling.passed,
        reported=ruling.reported,
    )
