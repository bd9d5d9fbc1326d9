"""Local jobs as data: what a decision asks the runtime to compute, and what comes back.

A decision starts a job with typed inputs (``TrainJob``, ``ReplayJob``,
``ProfileJob``, ``DriftJob``, ``OpeningJob``); the runtime runs it (``agents.roles.work``,
``agents.roles.gameplay``) and keeps its typed result (``TrainResult``, ``ReplayResult``,
``ProfileResult``, ``DriftResult``, ``OpeningResult``) in the agent's
database as JSON, so a restarted agent acts on the result it already has.
Values the chain takes are kept as the chain spells them: roots as ``Root``,
binary32 values as their ``uint32`` bit patterns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from agents.commitment import Digest, Root
from agents.learning.drift import DriftModel, rejection_probability


@dataclass(frozen=True)
class TrainJob:
    """Train the task of ``spec_cid`` and store its proof (a solver's job)."""

    kind: ClassVar[str] = "train"
    spec_cid: str
    # Devnets only: "fake-half" fakes half the segments (``agents.learning.cheats``),
    # "malformed:<craft>" commits a malformed proof (``agents.learning.malformed``).
    adversary: str | None = None


@dataclass(frozen=True)
class ReplayJob:
    """Verify a committed proof against the chain's randomness and threshold."""

    kind: ClassVar[str] = "replay"
    spec_cid: str
    proof_cid: str  # as committed: a string that is no CID is a reason to fail the proof
    checkpoint_root: Root
    randomness: Digest
    segments: int  # S, as the task's terms on chain fix it
    sampled: int  # s: the sample is min(S, s + 2) segments
    threshold: int  # τ as binary32 bits (0 in exact mode)


@dataclass(frozen=True)
class ProfileJob:
    """Measure honest drift and propose τ (a profiler's job), spending at most ``budget``
    of the task's training steps."""

    kind: ClassVar[str] = "profile"
    spec_cid: str
    budget: float = 0.1


@dataclass(frozen=True)
class DriftJob:
    """Measure how far this solver's own training drifts from the verifier's replay on a
    spec, before claiming it (a solver's job), within ``budget`` of its training."""

    kind: ClassVar[str] = "drift"
    spec_cid: str
    budget: float = 0.1


@dataclass(frozen=True)
class OpeningJob:
    """Replay segment ``segment`` of a committed proof with the exact kernels and gather what a
    challenge of it (or an answer to one) sends: this agent's trace root of the segment, the
    distance it ends with, and the game's opening (program header, checkpoint proofs)."""

    kind: ClassVar[str] = "opening"
    spec_cid: str
    proof_cid: str
    segment: int
    # Devnets only: "fail" traces a lie that fails the segment, "pass" one whose distance is
    # +0 (a verifier's adversary modes); the game is then played by the same lie.
    lie: str = ""


@dataclass(frozen=True)
class PublicationJob:
    """Read checkpoint ``segment`` of this agent's own committed proof and gather what
    ``publishState`` sends against a fault report: the state's tensors in state order and
    the state root's proof in the committed checkpoint tree."""

    kind: ClassVar[str] = "publication"
    spec_cid: str
    proof_cid: str
    segment: int


JobInputs = TrainJob | ReplayJob | ProfileJob | DriftJob | OpeningJob | PublicationJob


@dataclass(frozen=True)
class TrainResult:
    """The stored proof: what the solver commits."""

    proof_cid: str
    checkpoint_root: Root
    segments: int

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "train",
            "proof_cid": self.proof_cid,
            "checkpoint_root": self.checkpoint_root.chain,
            "segments": self.segments,
        }


@dataclass(frozen=True)
class ReplayResult:
    """A verifier's report: one binary32 distance per segment of the sample, the extra
    segments it replayed with theirs, the trace root of each reported segment in that order
    (its true ones: a forced verifier reports others and seals these), the fault record a
    check found, if any, and the verdict with its reasons."""

    distances: tuple[int, ...]
    trace_roots: tuple[Root, ...]
    verdict: Literal["pass", "fail"]
    reasons: tuple[str, ...] = ()
    extra_segments: tuple[int, ...] = ()
    extra_distances: tuple[int, ...] = ()
    # The fault record (``agents.learning.faults``) the report commits to, when a check
    # rejected the proof; stored in the artifact store too.
    fault_record: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "replay",
            "distances": list(self.distances),
            "extra_segments": list(self.extra_segments),
            "extra_distances": list(self.extra_distances),
            "trace_roots": [r.chain for r in self.trace_roots],
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "fault_record": self.fault_record,
        }


@dataclass(frozen=True)
class ProfileResult:
    """A profiler's threshold (binary32 bits) and its stored profile."""

    threshold: int
    profile_cid: str
    tau: float

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "profile",
            "threshold": self.threshold,
            "profile_cid": self.profile_cid,
            "tau": self.tau,
        }


@dataclass(frozen=True)
class DriftResult:
    """This solver's honest drift on a spec: the largest distance it measured and the model
    fitted to them (``None`` when its training and the replay agreed bit for bit)."""

    max_drift: float
    model: DriftModel | None

    def rejection_risk(self, tau: float, segments: int) -> float:
        """The chance, under the model, that a verification replaying ``segments`` of this
        solver's honest segments finds one above ``tau`` (1 when one measured already is)."""
        if self.max_drift > tau:
            return 1.0
        if self.model is None:
            return 0.0
        return rejection_probability(self.model.exceed_probability(tau), segments)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "drift",
            "max_drift": self.max_drift,
            "model": None if self.model is None else self.model.to_json(),
        }


@dataclass(frozen=True)
class OpeningResult:
    """This agent's trace of one segment and the pool's ``Opening`` of a game over it."""

    segment: int
    trace_root: Root
    distance: int  # binary32 bits of the distance the trace ends with
    program_header: bytes
    start_state: Root
    start_proof: tuple[Root, ...]
    claimed_state: Root
    claimed_proof: tuple[Root, ...]
    # The lie the trace tells (``agents.dispute.replay.Fault`` fields), devnet adversaries only.
    fault: dict[str, int | str] | None = None
    # What the trace ends with, as the pool's ``DistanceProof`` takes it (hex strings): the
    # one-shot claim that a distance stated for this trace root is not the one it ends with.
    distance_proof: tuple[Any, ...] | None = None

    def opening(self) -> tuple[str, str, list[str], str, list[str]]:
        """The ``Opening`` struct as the chain takes it."""
        return (
            "0x" + self.program_header.hex(),
            self.start_state.chain,
            [r.chain for r in self.start_proof],
            self.claimed_state.chain,
            [r.chain for r in self.claimed_proof],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "opening",
            "segment": self.segment,
            "trace_root": self.trace_root.chain,
            "distance": self.distance,
            "program_header": self.program_header.hex(),
            "start_state": self.start_state.chain,
            "start_proof": [r.chain for r in self.start_proof],
            "claimed_state": self.claimed_state.chain,
            "claimed_proof": [r.chain for r in self.claimed_proof],
            "fault": self.fault,
            "distance_proof": None if self.distance_proof is None else list(self.distance_proof),
        }


@dataclass(frozen=True)
class PublicationResult:
    """Checkpoint ``segment`` of a proof as ``publishState`` takes it: ``(shape header,
    float32 little-endian values)`` per tensor in name order, its state root, and the root's
    siblings in the checkpoint tree (lowest first)."""

    segment: int
    state_root: Root
    tensors: tuple[tuple[bytes, bytes], ...]
    proof: tuple[Root, ...]

    def state(self) -> list[tuple[str, str]]:
        """The ``StateTensor[]`` argument as the chain takes it."""
        return [("0x" + header.hex(), "0x" + data.hex()) for header, data in self.tensors]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "publication",
            "segment": self.segment,
            "state_root": self.state_root.chain,
            "tensors": [[h.hex(), d.hex()] for h, d in self.tensors],
            "proof": [r.chain for r in self.proof],
        }


JobResult = (
    TrainResult | ReplayResult | ProfileResult | DriftResult | OpeningResult | PublicationResult
)


def result_from_json(kind: str, data: dict[str, Any]) -> JobResult:
    """A result stored by ``to_json`` for a job of ``kind`` (rows without their own ``kind``
    field are read by the kind of their job)."""
    kind = str(data.get("kind", kind))
    if kind == "train":
        return TrainResult(
            proof_cid=str(data["proof_cid"]),
            checkpoint_root=Root.parse(str(data["checkpoint_root"])),
            segments=int(data["segments"]),
        )
    if kind == "replay":
        return ReplayResult(
            distances=tuple(int(d) for d in data["distances"]),
            trace_roots=tuple(Root.parse(str(r)) for r in data["trace_roots"]),
            verdict="pass" if data.get("verdict") == "pass" else "fail",
            reasons=tuple(str(r) for r in data.get("reasons", ())),
            extra_segments=tuple(int(d) for d in data.get("extra_segments", ())),
            extra_distances=tuple(int(d) for d in data.get("extra_distances", ())),
            fault_record=None if data.get("fault_record") is None else str(data["fault_record"]),
        )
    if kind == "profile":
        return ProfileResult(
            threshold=int(data["threshold"]),
            profile_cid=str(data["profile_cid"]),
            tau=float(data["tau"]),
        )
    if kind == "drift":
        model = data.get("model")
        return DriftResult(
            max_drift=float(data["max_drift"]),
            model=None if model is None else DriftModel.from_json(model),
        )
    if kind == "opening":
        return OpeningResult(
            segment=int(data["segment"]),
            trace_root=Root.parse(str(data["trace_root"])),
            distance=int(data["distance"]),
            program_header=bytes.fromhex(str(data["program_header"])),
            start_state=Root.parse(str(data["start_state"])),
            start_proof=tuple(Root.parse(str(r)) for r in data["start_proof"]),
            claimed_state=Root.parse(str(data["claimed_state"])),
            claimed_proof=tuple(Root.parse(str(r)) for r in data["claimed_proof"]),
            fault=data.get("fault"),
            distance_proof=(
                None if data.get("distance_proof") is None else tuple(data["distance_proof"])
            ),
        )
    if kind == "publication":
        return PublicationResult(
            segment=int(data["segment"]),
            state_root=Root.parse(str(data["state_root"])),
            tensors=tuple(
                (bytes.fromhex(str(h)), bytes.fromhex(str(d))) for h, d in data["tensors"]
            ),
            proof=tuple(Root.parse(str(r)) for r in data["proof"]),
        )
    raise ValueError(f"unknown job kind {kind!r}")
