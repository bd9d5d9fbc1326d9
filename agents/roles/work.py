"""Local work of the agents, on top of the learning engine: examine a spec, train, replay, profile.

Each job reads and writes artifacts through the store and returns plain data
for the decision functions (chain-ready values: ``0x`` hex roots, binary32
bit patterns). Jobs run in a worker thread (:class:`WorkRunner`); a job that
was cut short by a crash is run again and resumes from what it left on disk
(training continues from its last checkpoint).
"""

from __future__ import annotations

import hashlib
import logging
import math
import struct
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.commitment import merkle_root
from agents.errors import VeritrainError
from agents.node import failpoints
from agents.roles.situation import PoolParameters, SpecFacts, WorkState
from agents.roles.tasks import TaskView
from agents.store import ArtifactStore, canonical_json

log = logging.getLogger(__name__)

# Reported for a segment that could not be replayed at all (the proof failed a check before
# replay): binary32 +infinity, larger than any threshold, so the chain's verdict is a fail.
UNREPLAYABLE = 0x7F800000
# The smallest positive binary32 (a subnormal): an exact-mode mismatch never reports 0.
SMALLEST_POSITIVE = 0x00000001

Progress = Callable[[int, int], None]  # (steps done, steps in all)


def binary32_bits(value: float) -> int:
    """The bit pattern of ``value`` rounded to binary32 (to nearest, ties to even)."""
    if math.isnan(value):
        return 0x7FC00000
    try:
        packed = struct.pack("<f", value)
    except OverflowError:
        return UNREPLAYABLE if value > 0 else 0xFF800000
    return int.from_bytes(packed, "little")


def bits_to_float(bits: int) -> float:
    """The binary32 value of a bit pattern."""
    return float(struct.unpack("<f", int(bits).to_bytes(4, "little"))[0])


# -- examining a spec ------------------------------------------------------------------------


def examine_spec(store: ArtifactStore, view: TaskView, params: PoolParameters) -> SpecFacts:
    """What the spec of ``view`` asks for, or why it cannot be worked on.

    Checks that the spec artifact exists and hashes to the spec hash on chain,
    parses, matches the task's mode, and selects as many segments as the pool
    expects distances for.
    """
    from agents.learning.opcount import op_count
    from agents.learning.spec import spec_from_bytes

    if view.spec_cid is None:
        return SpecFacts(problem="no spec CID")
    try:
        data = store.get_bytes(view.spec_cid)
    except VeritrainError as exc:
        return SpecFacts(problem=f"spec {view.spec_cid} unreadable: {exc}")
    try:
        spec = spec_from_bytes(data, f"spec {view.spec_cid}")
    except VeritrainError as exc:
        return SpecFacts(problem=str(exc))
    if "0x" + spec.spec_hash().hex() != (view.spec_hash or "").lower():
        return SpecFacts(problem="the spec does not hash to the spec hash on chain")
    exact = spec.verification.tolerance == "exact"
    if exact != (view.mode == "exact"):
        return SpecFacts(
            problem=f"the task is {view.mode} on chain, the spec {spec.verification.tolerance}"
        )
    # Training needs the dataset (or the recipe to rebuild it) and any parent model: a task
    # that cannot be trained must not be claimed, or the stake is lost at its deadline.
    dataset = spec.dataset
    if dataset.source is None and not store.has(dataset.cid):
        return SpecFacts(problem=f"dataset {dataset.cid} is not in the store and has no source")
    if spec.parent is not None and not store.has(spec.parent):
        return SpecFacts(problem=f"parent model {spec.parent} is not in the store")
    segments = spec.segment_count
    chosen = spec.verification.segments + spec.verification.top_updates
    if chosen != params.sample_count(segments):
        return SpecFacts(
            problem=f"the spec verifies {chosen} segments, the pool expects "
            f"{params.sample_count(segments)} distances"
        )
    return SpecFacts(
        ops=op_count(spec).task, steps=spec.steps, segments=segments, exact=exact, problem=None
    )


def check_submittable(spec: Any, params: PoolParameters) -> str | None:
    """Why the pool would not get a verifiable task from ``spec`` (``None``: it would)."""
    chosen = spec.verification.segments + spec.verification.top_updates
    expected = params.sample_count(spec.segment_count)
    if chosen != expected:
        return (
            f"the spec verifies {chosen} segments (verification.segments + top_updates), "
            f"but this pool takes {expected} distances per report (segmentsToSample "
            f"{params.segments_to_sample}); set verification.segments accordingly"
        )
    return None


# -- the jobs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hardware:
    """Where local work runs."""

    device: str = "auto"  # auto | cpu | cuda
    threads: int = 1  # CPU threads of training and replay (torch and exact kernels); 0: all

    def torch_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def backend_options(self) -> dict[str, Any]:
        """Options of the native backend: device, and threads (0: torch's default)."""
        return {"device": self.torch_device(), "threads": self.threads}

    def exact_options(self) -> dict[str, Any]:
        """Options of the exact backend (its CPU path): threads (0: numba's default)."""
        return {"threads": self.threads}


def _load_task(store: ArtifactStore, spec_cid: str) -> Any:
    from agents.learning.spec import spec_from_bytes
    from agents.learning.task import open_task

    spec = spec_from_bytes(store.get_bytes(spec_cid), f"spec {spec_cid}")
    return open_task(spec, store)


def train_job(
    store: ArtifactStore,
    inputs: Mapping[str, Any],
    workdir: Path,
    hardware: Hardware,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train the task (resuming from ``workdir``'s journal) and store the proof.

    Returns ``proof_cid`` (the manifest), ``checkpoint_root`` and ``segments``.
    With ``inputs["adversary"] == "fake-half"`` the proof skips training on half
    of the segments (``agents.learning.cheats.copy_forward``): devnets only.
    """
    from agents.learning.backends import get_backend
    from agents.learning.solver import train

    spec_cid = str(inputs["spec_cid"])
    task = _load_task(store, spec_cid)
    spec = task.spec
    exact = spec.verification.tolerance == "exact"
    if exact:
        backend = get_backend("exact", **hardware.exact_options())
    else:
        backend = get_backend("native", **hardware.backend_options())
    total = spec.steps
    if inputs.get("adversary") == "fake-half":
        from agents.learning.cheats import copy_forward

        manifest = copy_forward(task, store, spec_cid, backend, fraction=0.5, seed=0).manifest
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        checkpoints = 0

        def on_step(done: int) -> None:
            nonlocal checkpoints
            if progress is not None:
                progress(done, total)
            # A crash point after each checkpoint's steps, for the crash tests.
            if done and done % spec.checkpoint_interval == 0:
                checkpoints += 1
                failpoints.hit("checkpoint-written", str(checkpoints))

        manifest = train(
            task,
            store,
            backend,
            spec_cid=spec_cid,
            journal_path=workdir / "journal.json",
            progress=on_step,
        )
    proof_cid = store.put_json(manifest.to_json())
    store.pin(proof_cid)
    return {
        "proof_cid": proof_cid,
        "checkpoint_root": "0x" + manifest.checkpoint_root,
        "segments": len(manifest.segments),
    }


def replay_job(
    store: ArtifactStore,
    inputs: Mapping[str, Any],
    hardware: Hardware,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Verify the committed proof against the chain's randomness and threshold.

    Returns ``distances`` (binary32 bit patterns, one per selected segment, as
    many as the pool expects), ``trace_roots_root`` (Merkle root over the
    segments' replay trace roots, or their replayed state roots where the
    backend does not trace), ``verdict`` and ``reasons``.
    """
    from agents.learning.backends import get_backend
    from agents.learning.proof import parse_manifest
    from agents.learning.verifier import default_replay_backend, verify
    from agents.roles.replay import ObservedReplayer

    spec_cid, proof_cid = str(inputs["spec_cid"]), str(inputs["proof_cid"])
    expected = int(inputs["samples"])
    task = _load_task(store, spec_cid)
    exact = task.spec.verification.tolerance == "exact"
    tau = 0.0 if exact else bits_to_float(int(inputs["threshold"]))
    randomness = bytes.fromhex(str(inputs["randomness"])[2:])
    name = default_replay_backend()
    options = hardware.backend_options() if name == "native" else hardware.exact_options()
    replayer = ObservedReplayer(get_backend(name, **options), expected, progress)
    reasons: list[str] = []
    try:
        manifest = parse_manifest(store.get_bytes(proof_cid), f"proof {proof_cid}")
    except VeritrainError as exc:
        manifest = None
        reasons.append(str(exc))
    if manifest is not None and "0x" + manifest.checkpoint_root != str(inputs["checkpoint_root"]):
        reasons.append("the proof's checkpoint root is not the one committed on chain")
    if manifest is None or reasons:
        distances = [UNREPLAYABLE] * expected
        roots = [hashlib.sha256(r.encode()).digest() for r in reasons] or [bytes(32)]
        return _replay_result(distances, roots, reasons)
    verdict = verify(
        task,
        manifest,
        store,
        randomness,
        replayer,
        spec_cid=spec_cid,
        tau=tau,
        manifest_cid=proof_cid,
        trace=True,  # the trace roots are what the verifier commits to on chain
    )
    if verdict.reasons and not verdict.segments:
        distances = [UNREPLAYABLE] * expected
        roots = [hashlib.sha256(r.encode()).digest() for r in verdict.reasons]
        return _replay_result(distances, roots, verdict.reasons)
    distances, roots = [], []
    for segment in verdict.segments:
        bits = binary32_bits(segment.distance)
        if not segment.passed and bits_to_float(bits) <= tau:
            # Rounded to binary32 a failing distance must still exceed τ on chain.
            bits = max(binary32_bits(tau) + 1, SMALLEST_POSITIVE)
        distances.append(bits)
        roots.append(bytes.fromhex(segment.trace_root or segment.replay_root))
    if verdict.reasons and all(s.passed for s in verdict.segments):
        # A check failed after some replays: the report must fail too.
        distances.append(UNREPLAYABLE)
    distances = _fit(distances, expected)
    return _replay_result(distances, roots, verdict.reasons)


def _fit(distances: list[int], expected: int) -> list[int]:
    """Exactly ``expected`` values, in order, always keeping the worst (it decides the verdict).

    More values than the pool takes: the first ``expected``, the last of them replaced by the
    worst if it was cut. Fewer: padded with the worst (``+inf`` when there is none).
    """
    if not distances:
        return [UNREPLAYABLE] * expected
    worst = max(distances, key=bits_to_float)
    if len(distances) >= expected:
        kept = distances[:expected]
        if expected and worst not in kept:
            kept[-1] = worst
        return kept
    return distances + [worst] * (expected - len(distances))


def _replay_result(distances: list[int], roots: list[bytes], reasons: list[str]) -> dict[str, Any]:
    root = merkle_root(roots) if roots else bytes(32)
    if root == bytes(32):  # the pool refuses an empty commitment
        root = hashlib.sha256(b"veritrain/no-trace").digest()
    return {
        "distances": distances,
        "trace_roots_root": "0x" + root.hex(),
        "verdict": "fail" if reasons or any(d == UNREPLAYABLE for d in distances) else "pass",
        "reasons": list(reasons),
    }


def profile_job(store: ArtifactStore, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Profile the task; returns the threshold as binary32 bits and the stored profile's CID."""
    from agents.learning.profiler import profile

    task = _load_task(store, str(inputs["spec_cid"]))
    result = profile(task, segments=int(inputs.get("segments", 3)))
    document = result.to_json()
    document["spec"] = inputs["spec_cid"]
    cid = store.put_bytes(canonical_json(_json_safe(document)))
    store.pin(cid)
    return {"threshold": binary32_bits(result.tau), "profile_cid": cid, "tau": result.tau}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


# -- warming up ------------------------------------------------------------------------------

# A small task of the kind the jobs run: the built-in digits, a two-layer MLP, exact mode.
_WARM_SPEC: dict[str, Any] = {
    "version": 1,
    "name": "warm-up",
    "dataset": {"cid": "", "source": {"builtin": "digits"}, "preprocessing": {"scale": 0.0625}},
    "model": {"kind": "mlp", "inputs": 64, "hidden": [16], "outputs": 10},
    "loss": "cross_entropy",
    "optimizer": {"kind": "sgd", "momentum": 0.9},
    "schedule": {"kind": "constant", "lr": 0.05},
    "steps": 4,
    "batch_size": 8,
    "seed": 1,
    "checkpoint_interval": 2,
    "verification": {"segments": 1, "metric": "l2", "tolerance": "exact"},
}


def warm_up(hardware: Hardware, *, trace: bool) -> list[bytes]:
    """Load what jobs use before the first job needs it: the learning engine and torch, the
    dataset builders, the exact kernels' compiled code and the hashing engine (its
    self-check), by training a small exact task for a few steps in memory (``trace``: also
    traced, as a verifier replays) and one step with the native backend.

    Returns the state root after the exact steps, once per run (untraced, then traced).
    Nothing is stored; a job that starts meanwhile only waits for the imports it shares.
    """
    from agents.commitment import state_root
    from agents.learning import datasets
    from agents.learning.backends import get_backend
    from agents.learning.spec import parse_spec
    from agents.learning.task import Task

    dataset = datasets.digits()
    document = {**_WARM_SPEC, "dataset": {**_WARM_SPEC["dataset"]}}
    document["dataset"]["cid"] = datasets.dataset_cid(dataset)
    task = Task.bind(parse_spec(document, "warm-up spec"), dataset)
    exact = get_backend("exact", **hardware.exact_options())
    roots = []
    for traced in (False, True) if trace else (False,):
        session = exact.start(task, task.initial_state(), trace=traced)
        session.run(task.batches(0, 2))
        roots.append(state_root(session.state()))
        session.trace_root()
    native = get_backend("native", **{**hardware.backend_options(), "device": "cpu"})
    native.start(task, task.initial_state()).run(task.batches(0, 1))
    return roots


# -- running jobs ----------------------------------------------------------------------------


Job = Callable[[], dict[str, Any]]


class WorkRunner:
    """Runs jobs in worker threads, one per key, and reports their states.

    The runtime polls :meth:`states` from its loop; nothing here touches the
    agent's database (its connection belongs to the loop's thread).
    """

    def __init__(self, on_finished: Callable[[], None] | None = None) -> None:
        # ``on_finished`` is called (from the worker thread) after a job's state is final.
        self._on_finished = on_finished
        self._lock = threading.Lock()
        self._states: dict[str, WorkState] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._started: dict[str, float] = {}

    def start(self, key: str, job: Job) -> None:
        """Run ``job`` unless ``key`` is already running."""
        with self._lock:
            current = self._states.get(key)
            if current is not None and current.status == "running":
                return
            self._states[key] = WorkState(key, "running")
            self._started[key] = time.monotonic()
            thread = threading.Thread(target=self._run, args=(key, job), name=key, daemon=True)
            self._threads[key] = thread
        thread.start()

    def _run(self, key: str, job: Job) -> None:
        try:
            result = job()
        except VeritrainError as exc:
            log.warning("work %s failed: %s", key, exc)
            state = WorkState(key, "failed", error=str(exc))
        except Exception as exc:  # a bug: keep the agent alive, log where
            log.error("work %s crashed: %s\n%s", key, exc, traceback.format_exc())
            state = WorkState(key, "failed", error=f"{type(exc).__name__}: {exc}")
        else:
            state = WorkState(key, "done", result)
        with self._lock:
            self._states[key] = state
        if self._on_finished is not None:
            self._on_finished()

    def elapsed(self, key: str) -> float:
        """Seconds since ``key`` was last started (0 if it never was)."""
        with self._lock:
            started = self._started.get(key)
        return time.monotonic() - started if started is not None else 0.0

    def states(self) -> dict[str, WorkState]:
        with self._lock:
            return dict(self._states)

    def running(self) -> list[str]:
        with self._lock:
            return [k for k, s in self._states.items() if s.status == "running"]

    def forget(self, key: str) -> None:
        """Drop a finished job's state (after its result is persisted)."""
        with self._lock:
            state = self._states.get(key)
            if state is not None and state.status != "running":
                del self._states[key]
