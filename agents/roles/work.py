"""The local work of the agents, on top of the learning engine: train, replay, profile,
measure a solver's own drift, warm up.

Each job reads and writes artifacts through the store and returns its typed
result (``agents.roles.jobs``). Jobs run in a worker thread
(``agents.roles.runner``); a job that was cut short by a crash is run again and
resumes from what it left on disk (training continues from its last checkpoint).
Every job runs on the agent's ``Hardware`` (device and threads).
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.commitment import Root
from agents.errors import VeritrainError
from agents.exact.float32 import from_bits32, to_bits
from agents.learning.backends import get_backend
from agents.learning.task import Task
from agents.node import failpoints
from agents.node.logs import event
from agents.roles.admission import TermsMismatchError, sample_terms_problem
from agents.roles.hardware import Hardware
from agents.roles.jobs import (
    DriftJob,
    DriftResult,
    ProfileJob,
    ProfileResult,
    ReplayJob,
    ReplayResult,
    TrainJob,
    TrainResult,
)
from agents.roles.report import encode_report, rejected
from agents.store import ArtifactStore, canonical_json

if TYPE_CHECKING:
    from agents.learning.verifier import Verdict
    from agents.roles.replay import ObservedReplayer

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, in all): steps of training, segments of replay


def load_task(store: ArtifactStore, spec_cid: str) -> Task:
    """The task of the spec stored under ``spec_cid``, bound to its dataset."""
    from agents.learning.spec import spec_from_bytes
    from agents.learning.task import open_task

    spec = spec_from_bytes(store.get_bytes(spec_cid), f"spec {spec_cid}")
    return open_task(spec, store)


def train_job(
    store: ArtifactStore,
    job: TrainJob,
    workdir: Path,
    hardware: Hardware,
    progress: Progress | None = None,
) -> TrainResult:
    """Train the task (resuming from ``workdir``'s journal) and store the proof.

    Exact-mode tasks train with the exact backend, tolerant ones with native torch, both
    on ``hardware`` (a swarm's workers, where the solver is one and the task fits it).
    Devnets only: with ``job.adversary == "fake-half"`` the proof skips
    training on half of the segments (``agents.learning.cheats.copy_forward``); with
    ``"fake-segment:<i>"`` it trains only half the steps of segment ``i``
    (``agents.learning.cheats.fewer_steps``), a fake no screening flags; with
    ``"malformed:<craft>"`` the honest proof is turned into that malformed one
    (``agents.learning.malformed``) and committed instead.
    """
    from agents.learning.solver import train

    task = load_task(store, job.spec_cid)
    spec = task.spec
    name = "exact" if spec.verification.tolerance == "exact" else "native"
    backend, alone = hardware.training_backend(name, spec)
    if alone is not None:
        event(log, "the swarm cannot train this task", task=job.spec_cid, reason=alone)
    event(log, "training", task=job.spec_cid, backend=backend.describe())
    total = spec.steps
    if job.adversary == "fake-half":
        from agents.learning.cheats import copy_forward

        manifest = copy_forward(task, store, job.spec_cid, backend, fraction=0.5, seed=0).manifest
    elif job.adversary is not None and job.adversary.startswith("fake-segment:"):
        from agents.learning.cheats import fewer_steps

        segment = int(job.adversary.removeprefix("fake-segment:"))
        if not 0 <= segment < spec.segment_count:
            raise VeritrainError(f"solver.adversary: the task has no segment {segment}")
        faked = frozenset({segment})
        manifest = fewer_steps(task, store, job.spec_cid, backend, segments=faked).manifest
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
            spec_cid=job.spec_cid,
            journal_path=workdir / "journal.json",
            progress=on_step,
        )
    if job.adversary is not None and job.adversary.startswith("malformed:"):
        from agents.learning.malformed import craft

        malformed = craft(job.adversary.removeprefix("malformed:"), spec, store, manifest)
        proof_cid = store.put_bytes(malformed.manifest)
        store.pin(proof_cid)
        return TrainResult(
            proof_cid=proof_cid,
            checkpoint_root=Root.parse(malformed.checkpoint_root),
            segments=len(manifest.segments),
        )
    proof_cid = store.put_json(manifest.to_json())
    store.pin(proof_cid)
    return TrainResult(
        proof_cid=proof_cid,
        checkpoint_root=Root.parse(manifest.checkpoint_root),
        segments=len(manifest.segments),
    )


def replay_job(
    store: ArtifactStore,
    job: ReplayJob,
    hardware: Hardware,
    progress: Progress | None = None,
) -> ReplayResult:
    """Verify the committed proof against the chain's randomness and threshold, with a trace,
    and encode the report (``agents.roles.report``).

    Whatever the solver committed, this returns a report: a proof that cannot be read,
    parsed or checked fails, with the commitment to its fault record, which is also
    stored (and pinned) so that anyone can check the claim. Only the verifier's own
    trouble (its store's backend, its disk, a bug) raises, and the job is run again; and a
    task whose S or s on chain is not its spec's raises ``TermsMismatchError``: that is the
    submitter's inconsistency, and no report blames the solver for it.
    """
    from agents.learning.faults import record as fault_record
    from agents.learning.proof import artifact_limits, read_manifest
    from agents.learning.verifier import Fault, default_replay_backend, is_own_fault, verify
    from agents.roles.replay import ObservedReplayer

    task = load_task(store, job.spec_cid)
    exact = task.spec.verification.tolerance == "exact"
    tau = 0.0 if exact else from_bits32(job.threshold)
    expected = min(job.segments, job.sampled + 2)
    name = "exact" if exact else default_replay_backend()
    replayer = ObservedReplayer(get_backend(name, **hardware.options(name)), expected, progress)

    def reject(fault: Fault, reason: str) -> ReplayResult:
        data = fault_record(fault, job.proof_cid)
        _publish(store, data)
        return rejected(data, [reason], expected)

    # Checked before anything of the proof is read: the terms are the submitter's, and a
    # mismatch must not become a fault record against the solver. No report is made (a
    # verifier's admission declines such tasks, so an honest one never holds this claim).
    terms = sample_terms_problem(job.segments, job.sampled, task.spec)
    if terms is not None:
        raise TermsMismatchError(f"no verdict on proof {job.proof_cid}: {terms}")
    limit = artifact_limits(task.spec).manifest
    what = f"proof {job.proof_cid}"
    try:
        manifest = read_manifest(store, job.proof_cid, limit, what)
    except VeritrainError as exc:
        if is_own_fault(exc):
            raise
        return reject(Fault("manifest"), str(exc))
    if Root.parse(manifest.checkpoint_root) != job.checkpoint_root:
        return reject(
            Fault("structure"), "the proof's checkpoint root is not the one committed on chain"
        )
    started = time.monotonic()
    selected_at: list[float] = []
    verdict = verify(
        task,
        manifest,
        store,
        bytes(job.randomness),
        replayer,
        spec_cid=job.spec_cid,
        tau=tau,
        manifest_cid=job.proof_cid,
        trace=True,  # the trace roots are what the verifier commits to on chain
        workers=hardware.cores(),  # the replays' cores: a traced replay takes two of them
        on_selected=lambda _selected: selected_at.append(time.monotonic()),
    )
    _log_replay_times(verdict, replayer, started, selected_at)
    report = encode_report(verdict, expected)
    if report.fault_record is not None:
        _publish(store, report.fault_record.encode())
    return report


def _log_replay_times(
    verdict: Verdict, replayer: ObservedReplayer, started: float, selected_at: list[float]
) -> None:
    """Log where a verification's time went: ``segments`` replayed; ``checks_s``, from its
    start until the checkpoints were read and screened and the selection known (the
    sample's replays run meanwhile); ``replays_s``, from the first replay's start to the
    last one's end; ``seconds`` in all."""
    ended = time.monotonic()
    fields: dict[str, Any] = {"segments": len(verdict.segments)}
    if selected_at:
        fields["checks_s"] = round(selected_at[0] - started, 3)
    if replayer.first_start is not None and replayer.last_end is not None:
        fields["replays_s"] = round(replayer.last_end - replayer.first_start, 3)
    event(log, "verification times", **fields, seconds=round(ended - started, 3))


def _publish(store: ArtifactStore, record: bytes) -> None:
    """Keep a fault record in the store, where a dispute (or an auditor) reads it."""
    store.pin(store.put_bytes(record))


def profile_job(store: ArtifactStore, job: ProfileJob, hardware: Hardware) -> ProfileResult:
    """Profile the task within ``job.budget`` of its training (the verifier's replayer on
    ``hardware`` trains the window; every honest variant this machine has replays it);
    returns the threshold as binary32 bits and the stored profile's CID."""
    from agents.learning.profiler import profile

    task = load_task(store, job.spec_cid)
    reference = get_backend("exact", **hardware.exact_options())
    result = profile(task, budget=job.budget, reference=reference)
    document = result.to_json()
    document["spec"] = job.spec_cid
    cid = store.put_bytes(canonical_json(_json_safe(document)))
    store.pin(cid)
    return ProfileResult(threshold=to_bits(result.tau), profile_cid=cid, tau=result.tau)


def drift_job(store: ArtifactStore, job: DriftJob, hardware: Hardware) -> DriftResult:
    """How far this solver's training (native torch on ``hardware``, as ``train_job`` runs
    it) drifts from the verifier's exact replay on the task, within ``job.budget`` of its
    training: the profile's window with this solver as its only variant."""
    from agents.learning.profiler import profile

    task = load_task(store, job.spec_cid)
    reference = get_backend("exact", **hardware.exact_options())
    own = get_backend("native", **hardware.native_options())
    result = profile(task, budget=job.budget, reference=reference, variants=[own])
    return DriftResult(max_drift=result.max_drift, model=result.model)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


# -- warming up ------------------------------------------------------------------------------

# What ``train_job`` imports on its first run (``Hardware.training_backend`` asks the swarm).
TRAINING_MODULES = ("agents.learning.solver", "agents.swarm.solver")

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
    traced, as a verifier replays) and one step with the native backend, on ``hardware``;
    and what examining a task before its claim uses, by computing the small task's program
    root (its batches' and constants' hashing kernels, compiled on a first run); and the
    modules a training job imports before its first step (the solver, and the swarm's
    choice of a training backend), which took a tenth of a second and more of its start.

    Returns the state root after the exact steps, once per run (untraced, then traced).
    Nothing is stored; a job that starts meanwhile only waits for the imports it shares.
    """
    from agents.commitment import state_root
    from agents.learning import datasets
    from agents.learning.spec import parse_spec

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
    native = get_backend("native", **hardware.native_options())
    native.start(task, task.initial_state()).run(task.batches(0, 1))
    from agents.dispute.programs import program_root_of

    program_root_of(task)  # as the claim's admission check does (``admission.program_root``)
    for module in TRAINING_MODULES:
        importlib.import_module(module)
    return roots
