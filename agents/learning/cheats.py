"""Cheating solvers: adversaries that write proofs of work they did not do.

These exist to test the verifier (tests, benchmarks, the cheating demo), never
to be run as a solver. Each returns a ``CheatProof``: the manifest it would
commit and the segments it faked (a faked segment is one whose claimed end is
not what training from its claimed start on its recorded batches produces).
A verifier that samples ``s`` of ``S`` segments catches a cheat that faked
``F`` of them with probability ``1 − C(S − F, s) / C(S, s)``
(``agents.learning.selection.detection_probability``); cheats caught by the
checks before replay (wrong initialization, wrong data order recorded, another
task's proof) are caught always.

- ``copy_forward``: on some segments, skip training: the end checkpoint repeats the start;
- ``interpolate``: train without checkpoints, then claim the straight line from
  the initial to the final weights;
- ``fewer_steps``: on some segments, train only part of the ``k`` steps;
- ``other_order``: train on another data order (recording the seed's order, or its own);
- ``other_init``: start from other weights than the seed's;
- ``add_noise``: train honestly but record checkpoints with noise added;
- ``reuse``: claim another task's proof for this task;
- ``tiny_updates``: record a trajectory that moves only a fraction of the real one;
- ``average_neighbours``: replace one middle checkpoint of a proof by the mean of its neighbours;
- spoofs that fake one segment into a state from which the rest is cheap to produce, then
  continue by honest training: ``nan_state`` (every tensor NaN), ``zero_weights`` (all
  parameters and optimizer state zero), and ``replace_final`` (honest training, then another
  model claimed at the end). Sampling alone catches them only when that one segment is
  drawn; ``agents.learning.screening`` finds the segment where the regime changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.commitment import state_root
from agents.learning.backends import Backend
from agents.learning.initialization import initial_state
from agents.learning.layout import STEP, State, ordered, step_tensor
from agents.learning.order import batch_indices
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
from agents.store import ArtifactStore


@dataclass(frozen=True)
class CheatProof:
    """A dishonest proof and the segments whose claimed end is not a replay of their start."""

    manifest: Manifest
    faked: frozenset[int]
    name: str


def write_proof(
    task: Task,
    store: ArtifactStore,
    spec_cid: str,
    states: list[State],
    batches: list[np.ndarray],
    backend: str = "native",
) -> Manifest:
    """Store claimed checkpoints ``states`` (S + 1) and ``batches`` (S) and build their manifest."""
    k = task.spec.checkpoint_interval
    store.put_bytes(task.spec.canonical_bytes())
    checkpoints, segments = [], []
    for i, state in enumerate(states):
        root = state_root(state)
        cid = store.put_bytes(encode_checkpoint(state))
        checkpoints.append(CheckpointEntry(index=i, step=i * k, cid=cid, state_root=root.hex()))
    for i, rows in enumerate(batches):
        cid = store.put_bytes(encode_batches(rows, i * k))
        segments.append(SegmentEntry(index=i, start=i, end=i + 1, batches=cid))
    return build_manifest(
        spec_cid=spec_cid,
        backend=backend,
        steps=task.spec.steps,
        checkpoint_interval=k,
        checkpoints=checkpoints,
        segments=segments,
        final_model=store.put_bytes(encode_model(states[-1])),
    )


def _with_step(state: State, step: int) -> State:
    out = dict(state)
    out[STEP] = step_tensor(step)
    return ordered(out)


def _run(backend: Backend, task: Task, state: State, batches: np.ndarray) -> State:
    session = backend.start(task, state)
    session.run(batches)
    return session.state()


def pick_segments(segments: int, fraction: float, seed: int) -> frozenset[int]:
    """``round(fraction · S)`` distinct segments, chosen by the cheat's own generator."""
    count = round(fraction * segments)
    rng = np.random.default_rng(seed)
    return frozenset(int(i) for i in rng.choice(segments, size=count, replace=False))


SegmentPlan = Callable[[int, State, np.ndarray], State]


def _trajectory(
    task: Task,
    store: ArtifactStore,
    spec_cid: str,
    backend: Backend,
    plan: SegmentPlan,
    start: State | None = None,
    recorded: Callable[[int], np.ndarray] | None = None,
) -> Manifest:
    """Claimed checkpoint ``i + 1`` = ``plan(i, claimed checkpoint i, batches)``."""
    states = [start if start is not None else task.initial_state()]
    batches = []
    for i in range(task.spec.segment_count):
        rows = task.segment_batches(i)
        states.append(plan(i, states[-1], rows))
        batches.append(recorded(i) if recorded is not None else rows)
    return write_proof(task, store, spec_cid, states, batches, backend.name)


def honest(task: Task, store: ArtifactStore, spec_cid: str, backend: Backend) -> CheatProof:
    """Not a cheat: the same proof an honest solver writes (a baseline for the cheats)."""

    def plan(i: int, state: State, rows: np.ndarray) -> State:
        return _run(backend, task, state, rows)

    manifest = _trajectory(task, store, spec_cid, backend, plan)
    return CheatProof(manifest, frozenset(), "honest")


def copy_forward(
    task: Task,
    store: ArtifactStore,
    spec_cid: str,
    backend: Backend,
    fraction: float = 0.5,
    seed: int = 0,
) -> CheatProof:
    """Skip training on ``fraction`` of the segments: their end repeats their start."""
    k = task.spec.checkpoint_interval
    faked = pick_segments(task.spec.segment_count, fraction, seed)

    def plan(i: int, state: State, rows: np.ndarray) -> State:
        if i in faked:
            return _with_step(state, (i + 1) * k)
        return _run(backend, task, state, rows)

    manifest = _trajectory(task, store, spec_cid, backend, plan)
    return CheatProof(manifest, faked, "copy_forward")


def fewer_steps(
    task: Task,
    store: ArtifactStore,
    spec_cid: str,
    backend: Backend,
    fraction: float = 1.0,
    ratio: float = 0.5,
    seed: int = 0,
    segments: frozenset[int] | None = None,
) -> CheatProof:
    """On ``fraction`` of the segments (or on ``segments``, when given) train only the first
    ``ratio·k`` steps."""
    k = task.spec.checkpoint_interval
    faked = pick_segments(task.spec.segment_count, fraction, seed) if segments is None else segments
    done = max(0, min(k - 1, int(k * ratio)))

    def plan(i: int, state: State, rows: np.ndarray) -> State:
        if i not in faked:
            return _run(backend, task, state, rows)
        if done == 0:
            return _with_step(state, (i + 1) * k)
        return _with_step(_run(backend, task, state, rows[:done]), (i + 1) * k)

    manifest = _trajectory(task, store, spec_cid, backend, plan)
    return CheatProof(manifest, faked, "fewer_steps")


def other_order(
    task: Task,
    store: ArtifactStore,
    spec_cid: str,
    backend: Backend,
    record_own: bool = False,
) -> CheatProof:
    """Train on the data order of another seed; record the seed's order (or, with
    ``record_own``, the order actually used, which the pre-replay checks reject)."""
    spec = task.spec
    k, seed = spec.checkpoint_interval, (spec.seed + 1) % 2**64

    def own(i: int) -> np.ndarray:
        return batch_indices(seed, task.samples, spec.batch_size, i * k, k)

    def plan(i: int, state: State, rows: np.ndarray) -> State:
        return _run(backend, task, state, own(i))

    manifest = _trajectory(
        task, store, spec_cid, backend, plan, recorded=own if record_own else None
    )
    return CheatProof(manifest, frozenset(range(spec.segment_count)), "other_order")


def other_init(task: Task, store: ArtifactStore, spec_cid: str, backend: Backend) -> CheatProof:
    """Start from the initialization of another seed, then train honestly."""
    spec = task.spec.model_copy(update={"seed": (task.spec.seed + 1) % 2**64})
    start = initial_state(spec, task.parent)

    def plan(i: int, state: State, rows: np.ndarray) -> State:
        return _run(backend, task, state, rows)

    manifest = _trajectory(task, store, spec_cid, backend, plan, start=start)
    return CheatProof(manifest, frozenset(range(task.spec.segment_count)), "other_init")


def add_noise(
    task: Task,
    store: ArtifactStore,
    spec_cid: str,
    backend: Backend,
    scale: float = 0.1,
    seed: int = 0,
) -> CheatProof:
    """Train honestly but record every checkpoint after the first with Gaussian noise whose
    standard deviation is ``scale`` times the root-mean-square of that tensor's last update."""
    rng = np.random.default_rng(seed)
    honest_states = [task.initial_state()]
    for i in range(task.spec.segment_count):
        honest_states.append(_run(backend, task, honest_states[-1], task.segment_batches(i)))
    recorded = [honest_states[0]]
    for before, after in itertools.pairwise(honest_states):
        noisy = {}
        for name, tensor in after.items():
            if name == STEP:
                noisy[name] = tensor
                continue
            rms = float(np.sqrt(np.mean(np.square(tensor - before[name], dtype=np.float64))))
            noise = rng.normal(0.0, scale * rms, tensor.shape).astype(np.float32)
            noisy[name] = (tensor + noise).astype(np.float32)
        recorded.append(ordered(noisy))
    batches = [task.segment_batches(i) for i in range(task.spec.segment_count)]
    manifest = write_proof(task, store, spec_cid, recorded, batches, backend.name)
    return CheatProof(manifest, frozenset(range(task.spec.segment_count)), "add_noise")


def interpolate(task: Task, store: ArtifactStore, spec_cid: str, backend: Backend) -> CheatProof:
    """Train to the end without checkpoints, then claim ``w_i = w_0 + (i/S)(w_S − w_0)``."""
    start = task.initial_state()
    final = _run(backend, task, start, task.batches(0, task.spec.steps))
    count = task.spec.segment_count
    k = task.spec.checkpoint_interval
    states = [start]
    for i in range(1, count + 1):
        t = np.float32(i / count)
        mixed = {n: (start[n] + t * (final[n] - start[n])).astype(np.float32) for n in start}
        states.append(_with_step(mixed, i * k) if i < count else final)
    batches = [task.segment_batches(i) for i in range(count)]
    manifest = write_proof(task, store, spec_cid, states, batches, backend.name)
    return CheatProof(manifest, frozenset(range(count)), "interpolate")


def tiny_updates(
    task: Task,
    store: ArtifactStore,
    spec_cid: str,
    backend: Backend,
    factor: float = 1e-3,
) -> CheatProof:
    """Record ``w_0 + factor · (w_i − w_0)`` for the honest ``w_i``: updates that barely move."""
    honest_states = [task.initial_state()]
    for i in range(task.spec.segment_count):
        honest_states.append(_run(backend, task, honest_states[-1], task.segment_batches(i)))
    start = honest_states[0]
    f = np.float32(factor)
    recorded = [start]
    for state in honest_states[1:]:
        moved = {n: (start[n] + f * (state[n] - start[n])).astype(np.float32) for n in state}
        recorded.append(_with_step(moved, int(state[STEP])))
    batches = [task.segment_batches(i) for i in range(task.spec.segment_count)]
    manifest = write_proof(task, store, spec_cid, recorded, batches, backend.name)
    return CheatProof(manifest, frozenset(range(task.spec.segment_count)), "tiny_updates")


def reuse(manifest: Manifest, spec_cid: str) -> CheatProof:
    """Claim another task's proof (``manifest``) for the task whose spec CID is ``spec_cid``."""
    stolen = manifest.model_copy(update={"spec": spec_cid})
    return CheatProof(stolen, frozenset(range(len(manifest.segments))), "reuse")


def replace_checkpoint(
    store: ArtifactStore, manifest: Manifest, index: int, state: State
) -> Manifest:
    """``manifest`` with checkpoint ``index`` replaced by ``state``, roots made consistent."""
    checkpoints = list(manifest.checkpoints)
    old = checkpoints[index]
    checkpoints[index] = CheckpointEntry(
        index=index,
        step=old.step,
        cid=store.put_bytes(encode_checkpoint(state)),
        state_root=state_root(state).hex(),
    )
    final_model = manifest.final_model
    if index == len(checkpoints) - 1:
        final_model = store.put_bytes(encode_model(state))
    return build_manifest(
        spec_cid=manifest.spec,
        backend=manifest.backend,
        steps=manifest.steps,
        checkpoint_interval=manifest.checkpoint_interval,
        checkpoints=checkpoints,
        segments=list(manifest.segments),
        final_model=final_model,
    )


def average_neighbours(store: ArtifactStore, manifest: Manifest, index: int) -> CheatProof:
    """Replace middle checkpoint ``index`` by the average of its neighbours (its step kept):
    segments ``index − 1`` and ``index`` become fakes."""
    if not 0 < index < len(manifest.checkpoints) - 1:
        raise ValueError(f"checkpoint {index} is not a middle checkpoint")
    before, at, after = (
        decode_checkpoint(store.get_bytes(manifest.checkpoints[i].cid))
        for i in (index - 1, index, index + 1)
    )
    half = np.float32(0.5)
    mean = {n: ((before[n] + after[n]) * half).astype(np.float32) for n in at}
    mean[STEP] = at[STEP]
    stolen = replace_checkpoint(store, manifest, index, ordered(mean))
    return CheatProof(stolen, frozenset({index - 1, index}), "average_neighbours")


def _spoof(
    task: Task,
    store: ArtifactStore,
    spec_cid: str,
    backend: Backend,
    at: int,
    fake: Callable[[State], State],
    name: str,
) -> CheatProof:
    """Segment ``at`` ends in ``fake(its honest end)``; every other segment is honest training
    from the claimed state (so the segments after ``at`` replay bit for bit)."""
    k = task.spec.checkpoint_interval
    if not 0 <= at < task.spec.segment_count:
        raise ValueError(f"segment {at} is outside the task")

    def plan(i: int, state: State, rows: np.ndarray) -> State:
        end = _run(backend, task, state, rows)
        return _with_step(fake(end), (i + 1) * k) if i == at else end

    manifest = _trajectory(task, store, spec_cid, backend, plan)
    return CheatProof(manifest, frozenset({at}), name)


def nan_state(
    task: Task, store: ArtifactStore, spec_cid: str, backend: Backend, at: int = 0
) -> CheatProof:
    """Segment ``at`` ends with every tensor NaN; NaN replays to NaN from there on."""

    def fake(state: State) -> State:
        return {n: np.full_like(t, np.float32("nan")) for n, t in state.items()}

    return _spoof(task, store, spec_cid, backend, at, fake, "nan_state")


def zero_weights(
    task: Task, store: ArtifactStore, spec_cid: str, backend: Backend, at: int = 0
) -> CheatProof:
    """Segment ``at`` ends with all parameters and optimizer state zero."""

    def fake(state: State) -> State:
        return {n: np.zeros_like(t) for n, t in state.items()}

    return _spoof(task, store, spec_cid, backend, at, fake, "zero_weights")


def replace_final(
    task: Task, store: ArtifactStore, spec_cid: str, backend: Backend, other: State | None = None
) -> CheatProof:
    """Honest training, then the last checkpoint (and the final model) replaced by ``other``
    (default: the initialization): the model the submitter receives is not the trained one."""
    last = task.spec.segment_count - 1
    replacement = other if other is not None else task.initial_state()

    def fake(state: State) -> State:
        return {n: np.array(replacement[n], dtype=np.float32) for n in state}

    return _spoof(task, store, spec_cid, backend, last, fake, "replace_final")
