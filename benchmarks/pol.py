"""Proof-of-learning figures: the digits MLP's costs and detection rates, and the honest
drift of every example.

For the digits MLP example (examples/digits-mlp.yaml):

- ``train_s``: plain training, no proof (one session over every step);
- ``train_with_proof_s``: the honest solver, writing every checkpoint, batch
  indices, the final model and the manifest into a proof directory;
- ``verify_s``: the verifier with the spec's defaults (``s`` sampled segments)
  and the default replayer, pre-replay checks included;
- ``verify_over_train`` = ``verify_s / train_s``;
- ``verify_traced_s``: the same verification recording every replay's trace root
  (what a verifier posts on chain), and ``verify_traced_over_train``;
- ``detection_half_faked_formula``: ``1 − C(S/2, s) / C(S, s)`` at the spec's S and s;
- ``detection_half_faked_empirical``: the rejection rate over cheating runs
  (solvers skipping half the segments, each run with fresh randomness), with a
  95 % Wilson interval;
- ``honest_max_distance``: the largest distance of a replayed honest segment
  (proofs trained with the default backend and with gradient accumulation);
- ``cheat_min_distance``: the smallest distance of a replayed faked segment.

Under ``examples``, for each example spec (examples/*.yaml), the honest drift of
every segment of its whole training, for every pair of a solver backend (native
torch with one and several threads, with gradient accumulation over two
microbatches, on CUDA where present, the exact kernels) and a replay backend (the
exact kernels, the verifier's default, and native torch as a tolerant replayer): each solver
trains the task, and each replayer replays every segment from the solver's
checkpoint and is compared with the next one, as a verifier does.

- ``pairs``: per ``solver -> replayer``, ``max``, ``median`` and ``per_segment``
  distances (a replayer that is the solver's own deterministic backend gives 0);
- ``honest_max_distance``, ``honest_median_distance``: over every segment of every
  pair of different backends; ``honest_max_per_segment``: the largest per segment;
- ``tau`` (the spec's) and ``tau_over_honest_max``; ``profile_tau`` (what
  ``veritrain pol profile`` proposes here), ``profile_tau_over_honest_max``, its
  ``profile_cost_ratio`` and ``profile_exceed_probability`` (per segment, under
  the profile's model), and ``honest_over_profile_tau`` (the fraction of honest
  segments above it: 0 when the model holds).

Training times are the fastest of interleaved repetitions in one process (the
least disturbed by other load on the machine), verification the median. The
``*_cpu_s`` figures are the process's CPU time for the same runs (every
backend here runs on one thread): on a machine shared with other work they
move much less than wall-clock time, so their ratios are the steadier ones.
"""

from __future__ import annotations

import hashlib
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.learning import cheats
from agents.learning.backends import Backend, get_backend
from agents.learning.distance import group_distances, segment_distance
from agents.learning.layout import State
from agents.learning.profiler import profile
from agents.learning.proof import ProofDirectory
from agents.learning.selection import detection_probability
from agents.learning.solver import train
from agents.learning.spec import load_spec
from agents.learning.task import open_task
from agents.learning.verifier import Replayer, default_replay_backend, verify

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE = EXAMPLES / "digits-mlp.yaml"
REPEATS = 4
CHEAT_PROOFS = 6
RUNS_PER_CHEAT = 10
HONEST_RUNS = 5


def _randomness(label: str, i: int) -> bytes:
    return hashlib.sha256(f"bench/{label}/{i}".encode()).digest()


def _wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def run() -> dict[str, Any]:
    figures = digits_figures()
    figures["examples"] = {
        path.stem: example_drift(path) for path in sorted(EXAMPLES.glob("*.yaml"))
    }
    return figures


def solver_backends() -> list[Backend]:
    """How honest solvers train here: native torch (one thread, several, two microbatches,
    CUDA where present) and the exact kernels."""
    solvers = [get_backend("native", threads=1)]
    cores = os.cpu_count() or 1
    if cores > 1:
        solvers.append(get_backend("native", threads=min(cores, 4)))
    solvers += [get_backend("native", microbatches=2), get_backend("exact")]
    if torch.cuda.is_available():
        solvers.append(get_backend("native", device="cuda"))
    return solvers


def replay_backends() -> list[Backend]:
    """How verifiers replay: the exact kernels (the default) and native torch (tolerant)."""
    return [get_backend("exact"), get_backend("native", threads=1)]


def _trajectory(backend: Backend, task: Any, segments: int) -> list[State]:
    session = backend.start(task, task.initial_state())
    states = [session.state()]
    for index in range(segments):
        session.run(task.segment_batches(index))
        states.append(session.state())
    return states


def example_drift(path: Path, segments: int | None = None) -> dict[str, Any]:
    """The honest drift of every segment of an example (see the module docstring); with
    ``segments``, only the first ``segments`` segments (a smoke run)."""
    spec = load_spec(path)
    count = spec.segment_count if segments is None else min(segments, spec.segment_count)
    verification = spec.verification
    with tempfile.TemporaryDirectory(prefix="veritrain-bench-drift-") as scratch:
        task = open_task(spec, ProofDirectory(Path(scratch), create=True))
        pairs: dict[str, dict[str, Any]] = {}
        cross: list[float] = []
        per_segment = np.zeros(count)
        for solver in solver_backends():
            states = _trajectory(solver, task, count)
            for replayer in replay_backends():
                distances = []
                for index in range(count):
                    session = replayer.start(task, states[index])
                    session.run(task.segment_batches(index))
                    grouped = group_distances(
                        states[index],
                        states[index + 1],
                        session.state(),
                        verification.metric,
                        verification.epsilon,
                    )
                    distances.append(segment_distance(grouped))
                pairs[f"{solver.describe()} -> {replayer.describe()}"] = {
                    "max": max(distances),
                    "median": statistics.median(distances),
                    "per_segment": distances,
                }
                if solver.describe() != replayer.describe():
                    cross += distances
                    per_segment = np.maximum(per_segment, distances)
        profiled = profile(task)
    honest_max = max(cross)
    tau = verification.tau
    return {
        "segments": count,
        "pairs": pairs,
        "honest_max_distance": honest_max,
        "honest_median_distance": statistics.median(cross),
        "honest_max_per_segment": per_segment.tolist(),
        "tau": tau,
        "tau_over_honest_max": tau / honest_max if tau is not None else None,
        "profile_tau": profiled.tau,
        "profile_tau_over_honest_max": profiled.tau / honest_max,
        "profile_cost_ratio": profiled.cost_ratio,
        "profile_exceed_probability": profiled.exceed_probability,
        "profile_separation": profiled.cheat_min_distance / profiled.tau,
        "honest_over_profile_tau": sum(d > profiled.tau for d in cross) / len(cross),
    }


def digits_figures() -> dict[str, Any]:
    spec = load_spec(EXAMPLE)
    backend = get_backend("native")
    replayer = Replayer(get_backend(default_replay_backend()))
    s, count = spec.verification.segments, spec.segment_count
    with tempfile.TemporaryDirectory(prefix="veritrain-bench-pol-") as scratch:
        root = Path(scratch)
        data = ProofDirectory(root / "data", create=True)
        task = open_task(spec, data)
        spec_cid = data.put_bytes(spec.canonical_bytes())

        plain, proving, plain_cpu, proving_cpu = [], [], [], []
        for r in range(REPEATS):
            started, cpu = time.perf_counter(), time.process_time()
            session = backend.start(task, task.initial_state())
            session.run(task.batches(0, spec.steps))
            session.state()
            plain.append(time.perf_counter() - started)
            plain_cpu.append(time.process_time() - cpu)

            store = ProofDirectory(root / f"proof-{r}", create=True)
            open_task(spec, store)  # the proof directory holds the dataset, as exported proofs do
            started, cpu = time.perf_counter(), time.process_time()
            manifest = train(task, store, backend, spec_cid=spec_cid)
            store.write_manifest(manifest)
            proving.append(time.perf_counter() - started)
            proving_cpu.append(time.process_time() - cpu)
        proof = ProofDirectory(root / "proof-0")

        def verify_honest(i: int, trace: bool) -> Any:
            # As `veritrain pol verify` does: bind the dataset from the proof, read the manifest.
            verdict = verify(
                open_task(spec, proof),
                proof.manifest(),
                proof,
                _randomness("honest", i),
                replayer,
                spec_cid=spec_cid,
                trace=trace,
            )
            if not verdict.passed:
                raise RuntimeError(f"honest proof rejected: {verdict.reasons}")
            return verdict

        verifying, verifying_cpu, honest_distances = [], [], []
        for i in range(HONEST_RUNS):
            started, cpu = time.perf_counter(), time.process_time()
            verdict = verify_honest(i, trace=False)
            verifying.append(time.perf_counter() - started)
            verifying_cpu.append(time.process_time() - cpu)
            honest_distances += [seg.distance for seg in verdict.segments]

        traced = []
        for i in range(2):
            started = time.perf_counter()
            verify_honest(i, trace=True)
            traced.append(time.perf_counter() - started)

        variant = ProofDirectory(root / "variant", create=True)
        variant_manifest = train(
            task, variant, get_backend("native", microbatches=2), spec_cid=spec_cid
        )
        for i in range(HONEST_RUNS):
            verdict = verify(
                task,
                variant_manifest,
                variant,
                _randomness("variant", i),
                replayer,
                spec_cid=spec_cid,
            )
            if not verdict.passed:
                raise RuntimeError(f"honest variant proof rejected: {verdict.reasons}")
            honest_distances += [seg.distance for seg in verdict.segments]

        caught, runs, cheat_distances = 0, 0, []
        for c in range(CHEAT_PROOFS):
            store = ProofDirectory(root / f"cheat-{c}", create=True)
            cheat = cheats.copy_forward(task, store, spec_cid, backend, fraction=0.5, seed=c)
            for i in range(RUNS_PER_CHEAT):
                verdict = verify(
                    task,
                    cheat.manifest,
                    store,
                    _randomness(f"cheat-{c}", i),
                    replayer,
                    spec_cid=spec_cid,
                )
                runs += 1
                caught += not verdict.passed
                cheat_distances += [
                    seg.distance for seg in verdict.segments if seg.index in cheat.faked
                ]

    train_s = min(plain)
    train_with_proof_s = min(proving)
    verify_s = statistics.median(verifying)
    low, high = _wilson(caught, runs)
    return {
        "example": EXAMPLE.name,
        "steps": spec.steps,
        "segments": count,
        "sampled": s,
        "training_backend": backend.describe(),
        "replayer": replayer.backend.describe(),
        "train_s": round(train_s, 4),
        "train_with_proof_s": round(train_with_proof_s, 4),
        "train_with_proof_over_train": round(train_with_proof_s / train_s, 4),
        "verify_s": round(verify_s, 4),
        "verify_over_train": round(verify_s / train_s, 4),
        "train_cpu_s": round(min(plain_cpu), 4),
        "train_with_proof_cpu_s": round(min(proving_cpu), 4),
        "train_with_proof_over_train_cpu": round(min(proving_cpu) / min(plain_cpu), 4),
        "verify_cpu_s": round(statistics.median(verifying_cpu), 4),
        "verify_over_train_cpu": round(statistics.median(verifying_cpu) / min(plain_cpu), 4),
        "verify_traced_s": round(statistics.median(traced), 4),
        "verify_traced_over_train": round(statistics.median(traced) / train_s, 4),
        "detection_half_faked_formula": detection_probability(count, count // 2, s),
        "detection_half_faked_empirical": caught / runs,
        "detection_half_faked_empirical_interval95": [round(low, 4), round(high, 4)],
        "cheating_runs": runs,
        "honest_max_distance": max(honest_distances),
        "cheat_min_distance": min(cheat_distances) if cheat_distances else None,
        "tau": spec.verification.tau,
        "repeats": REPEATS,
    }
