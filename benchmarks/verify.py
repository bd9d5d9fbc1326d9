"""A verifier's whole verification of one proof with the cores it is configured to use.

The proof is built once, in a temporary directory: the round benchmark's ``long`` spec (the
digits MLP with two hidden layers of 256, batch 128, exact mode, 200 segments; its document
from ``benchmarks.round.long_spec``) with a fixed length of ``SEGMENTS × STEPS_PER_SEGMENT``
= 200 × 169 = 33,800 steps (about what the round benchmark calibrates to on this machine,
fixed here so that every run does the same work), trained by the solver
(``agents.learning.solver.train``, the exact kernels on ``SOLVER_THREADS`` threads, as
the round's solver) into an embedded store; ``build_s`` is how long that took.

Each verification is ``verify`` as a verifier's replay job calls it: the proof's manifest
and artifacts from the store, the fixed ``RANDOMNESS``, the exact kernels with the
verifier's default threads (``verifier.threads = 0``: the kernels' every core, as in the
round benchmark; the same replayer for every configuration, since the kernels' thread
count is process-wide), and per configuration in ``CONFIGS`` its ``workers`` and
``trace``:

- ``workers_1``: the baseline, every segment replayed on the calling thread after the checks
  (a trace's hashing still runs on the other cores: the tracer's threads are the process's);
- ``workers_2``: what a verifier on two cores does, one traced replay at a time
  (``replays_at_once``: it steps on one core and hashes its trace on the other), begun
  while the checkpoints are read;
- ``workers_4``: two traced replays side by side on this machine's cores (the alternative
  ``replays_at_once`` rules out where there are fewer than four);
- ``untraced_1`` and ``untraced_2``: the same replays without a trace, one and two at once
  (``replays_at_once`` gives an untraced replay one core).

Each round also times the two parts of a verification on their own (``PARTS``), so that
what running them side by side costs can be told apart from what they cost:

- ``checks_alone``: ``verify`` with one worker and a replayer that does not replay (it
  returns the start state at once): the availability, reading, screening and selection
  checks, and the untraced bookkeeping of the selected segments' verdicts;
- ``replays_alone``: the selected segments' traced replays one after the other on the
  calling thread, each closed by its traced distance as ``verify`` closes it, from inputs
  read before the time starts (their trace roots must be the verdicts').

The configurations run interleaved in one process, one run of each per round in
``CONFIGS``'s order, then the parts in ``PARTS``'s, for ``ROUNDS`` rounds, after a run of
each configuration in ``WARM_UP`` that is not counted (a traced and an untraced one: the
kernels each uses are loaded, the store's blocks come into the page cache; not a whole
round, to keep the benchmark within a few minutes here: 160 s in the committed run).

Per configuration under ``configs``: ``wall_s`` and ``cpu_s`` (the median wall-clock and
process CPU seconds, every thread of the process counted), their runs (``wall_runs_s``,
``cpu_runs_s``) and spreads (max − min: ``wall_spread_s``, ``cpu_spread_s``); ``ratio``, the
median over the rounds of the run's wall time over the baseline's in the same round (this
shared machine's speed drifts over minutes; a round's runs are seconds apart), with
``ratio_runs`` and ``ratio_spread``, and ``cpu_ratio`` likewise for the CPU time;
``checks_s``, the median time from the start until the checks of every checkpoint and the
selection were done (the sampled replays run meanwhile with more than one worker); and
``replays_at_once``, as ``agents.learning.verifier.replays_at_once`` gives it.

Under ``parts``, the parts' figures as the configurations' (their ``ratio`` too), and
``overlap``: per traced configuration (the parts' replays are traced), the medians over
the rounds of ``added_s``, its wall time less ``replays_alone``'s in the same round (what
everything but the sample's traced replays adds to them), and ``ideal_s``, the larger of
``replays_alone``'s wall time and the CPU time of both parts spread over the affinity
set's cores (what a perfect overlap on these cores would take), with ``added_runs_s``.

``cores`` gives ``os.cpu_count()`` and the process's affinity set, ``replayed_segments`` the
number of segments each verification replayed, and ``verdicts_equal`` says that every
run's verdict (``Verdict.to_json``) is the same: identical among the traced runs, trace
roots included, and among the untraced ones, and the same in both but for the trace roots.
The benchmark fails if they differ, or if the honest proof does not pass.
"""

from __future__ import annotations

import gc
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agents.learning.backends import get_backend
from agents.learning.layout import State
from agents.learning.solver import train
from agents.learning.spec import load_spec
from agents.learning.task import Task, open_task
from agents.learning.verifier import ProofReader, Replay, Replayer, replays_at_once, verify
from agents.store.embedded import EmbeddedStore
from benchmarks.round import LONG_SEGMENTS, SOLVER_THREADS, _write_long_spec, long_spec

SEGMENTS = LONG_SEGMENTS
STEPS_PER_SEGMENT = 169
RANDOMNESS = hashlib.sha256(b"bench/verify").digest()
ROUNDS = 5


@dataclass(frozen=True)
class Config:
    """How a verification runs: ``verify``'s ``workers`` and ``trace``."""

    name: str
    workers: int
    trace: bool


BASELINE = "workers_1"
CONFIGS = (
    Config(BASELINE, 1, True),
    Config("workers_2", 2, True),
    Config("workers_4", 4, True),
    Config("untraced_1", 1, False),
    Config("untraced_2", 2, False),
)
WARM_UP = ("workers_2", "untraced_1")
CHECKS_ALONE, REPLAYS_ALONE = "checks_alone", "replays_alone"
PARTS = (CHECKS_ALONE, REPLAYS_ALONE)


@dataclass(frozen=True)
class Run:
    """One verification's wall-clock and process CPU seconds, and when its checks ended."""

    wall_s: float
    cpu_s: float
    checks_s: float


def summarize(runs: Mapping[str, Sequence[Run]], baseline: str) -> dict[str, dict[str, Any]]:
    """Per configuration, the figures of its runs (see the module docstring); the runs of
    every configuration are in round order, ``baseline``'s run ``i`` in the same round as
    every other configuration's run ``i``. Raises ``ValueError`` if the counts differ."""
    base = runs[baseline]
    if any(len(each) != len(base) for each in runs.values()) or not base:
        raise ValueError("every configuration needs one run in every round")
    figures: dict[str, dict[str, Any]] = {}
    for name, each in runs.items():
        walls = [run.wall_s for run in each]
        cpus = [run.cpu_s for run in each]
        ratios = [run.wall_s / other.wall_s for run, other in zip(each, base, strict=True)]
        cpu_ratios = [run.cpu_s / other.cpu_s for run, other in zip(each, base, strict=True)]
        figures[name] = {
            "wall_s": round(statistics.median(walls), 3),
            "wall_runs_s": [round(wall, 3) for wall in walls],
            "wall_spread_s": round(max(walls) - min(walls), 3),
            "cpu_s": round(statistics.median(cpus), 3),
            "cpu_runs_s": [round(cpu, 3) for cpu in cpus],
            "cpu_spread_s": round(max(cpus) - min(cpus), 3),
            "ratio": round(statistics.median(ratios), 3),
            "ratio_runs": [round(ratio, 3) for ratio in ratios],
            "ratio_spread": round(max(ratios) - min(ratios), 3),
            "cpu_ratio": round(statistics.median(cpu_ratios), 3),
            "checks_s": round(statistics.median(run.checks_s for run in each), 3),
        }
    return figures


def overlap(
    runs: Mapping[str, Sequence[Run]], configs: Sequence[str], cores: int
) -> dict[str, dict[str, Any]]:
    """Per configuration in ``configs``, how far its runs are from a perfect overlap of the
    parts (see the module docstring): ``runs`` holds every configuration's runs and the
    parts' (``CHECKS_ALONE``, ``REPLAYS_ALONE``), run ``i`` of each in round ``i``."""
    checks, replays = runs[CHECKS_ALONE], runs[REPLAYS_ALONE]
    ideal = [
        max(replay.wall_s, (replay.cpu_s + check.cpu_s) / cores)
        for check, replay in zip(checks, replays, strict=True)
    ]
    out: dict[str, dict[str, Any]] = {}
    for name in configs:
        added = [
            run.wall_s - replay.wall_s for run, replay in zip(runs[name], replays, strict=True)
        ]
        out[name] = {
            "added_s": round(statistics.median(added), 3),
            "added_runs_s": [round(value, 3) for value in added],
            "ideal_s": round(statistics.median(ideal), 3),
        }
    return out


class StartStateReplayer(Replayer):
    """A replayer that does not replay: every segment "ends" where it starts, so that a
    verification through it is its checks alone (its verdict fails every replayed segment)."""

    def replay(self, task: Task, start: State, batches: Any, trace: bool = False) -> Replay:
        return Replay(start, None)


def replay_alone(
    task: Task, inputs: Sequence[tuple[State, State, Any]], replayer: Replayer
) -> list[str]:
    """The traced replays of ``inputs`` (start state, claimed end state, batches) one after
    the other on the calling thread, each closed by its traced distance as ``verify`` closes
    it; returns their trace roots (hex)."""
    spec = task.spec.verification
    roots = []
    for start, claimed, batches in inputs:
        replay = replayer.replay(task, start, batches, trace=True)
        session = replay.session
        if session is None:
            raise RuntimeError(f"{replayer.backend.describe()} gives no session to trace")
        session.traced_distances(start, claimed, spec.metric, spec.epsilon)
        root = session.trace_root()
        if root is None:
            raise RuntimeError(f"{replayer.backend.describe()} gives no trace root")
        roots.append(root.hex())
    return roots


def check_verdicts(
    verdicts: Mapping[str, Sequence[dict[str, Any]]], traced: Mapping[str, bool]
) -> None:
    """Raise ``RuntimeError`` unless every verdict is the same: the traced ones (``traced``
    by configuration) identical to each other, trace roots included, the untraced ones to
    each other, and both alike once the trace roots are left out."""
    first: dict[bool, tuple[str, dict[str, Any]]] = {}
    for name, each in verdicts.items():
        for i, verdict in enumerate(each):
            kind = traced[name]
            if kind not in first:
                first[kind] = (name, verdict)
            elif verdict != first[kind][1]:
                raise RuntimeError(
                    f"verdict of {name} run {i} differs from {first[kind][0]}'s: {verdict}"
                )
    if len(first) == 2:
        (traced_name, with_roots), (plain_name, without) = first[True], first[False]
        if _without_trace_roots(with_roots) != _without_trace_roots(without):
            raise RuntimeError(
                f"verdicts of {traced_name} and {plain_name} differ beyond their trace roots"
            )


def _without_trace_roots(verdict: dict[str, Any]) -> dict[str, Any]:
    segments = [{**s, "trace_root": None} for s in verdict.get("segments", [])]
    return {**verdict, "segments": segments}


def build_proof(directory: Path, steps_per_segment: int) -> tuple[Task, EmbeddedStore, str, Any]:
    """Train the long spec with ``steps_per_segment`` steps a segment into an embedded store
    under ``directory``; returns the task, the store, the spec's CID and the manifest."""
    path = long_spec(directory)  # the round benchmark's document; its calibrated length is replaced
    _write_long_spec(path, yaml.safe_load(path.read_text()), SEGMENTS * steps_per_segment)
    spec = load_spec(path)
    store = EmbeddedStore(directory / "store", fsync=False)
    task = open_task(spec, store)
    spec_cid = store.put_bytes(spec.canonical_bytes())
    manifest = train(task, store, get_backend("exact", threads=SOLVER_THREADS), spec_cid=spec_cid)
    return task, store, spec_cid, manifest


def run(rounds: int = ROUNDS, steps_per_segment: int = STEPS_PER_SEGMENT) -> dict[str, Any]:
    replayer = Replayer(get_backend("exact"))
    with tempfile.TemporaryDirectory(prefix="veritrain-bench-verify-") as scratch:
        started = time.perf_counter()
        task, store, spec_cid, manifest = build_proof(Path(scratch), steps_per_segment)
        build_s = time.perf_counter() - started

        def once(config: Config) -> tuple[Run, dict[str, Any]]:
            gc.collect()  # outside the time: no collection of the last run's garbage inside it
            selected_at: list[float] = []
            started, cpu = time.perf_counter(), time.process_time()
            verdict = verify(
                task,
                manifest,
                store,
                RANDOMNESS,
                replayer,
                spec_cid=spec_cid,
                trace=config.trace,
                workers=config.workers,
                on_selected=lambda _selected: selected_at.append(time.perf_counter()),
            )
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            if not verdict.passed:
                raise RuntimeError(f"the honest proof was rejected ({config}): {verdict.reasons}")
            checks = selected_at[0] - started if selected_at else wall
            return Run(wall, cpu, checks), verdict.to_json()

        runs: dict[str, list[Run]] = {name: [] for name in [c.name for c in CONFIGS] + [*PARTS]}
        verdicts: dict[str, list[dict[str, Any]]] = {config.name: [] for config in CONFIGS}
        for config in CONFIGS:
            if config.name in WARM_UP:
                verdicts[config.name].append(once(config)[1])
        traced = verdicts[WARM_UP[0]][0]
        proof = ProofReader(task, manifest, store)
        inputs = [
            (proof.checkpoint(i), proof.checkpoint(i + 1), proof.batches(i))
            for i in traced["selected"]
        ]
        trace_roots = [segment["trace_root"] for segment in traced["segments"]]
        no_replay = StartStateReplayer(replayer.backend)

        def part(name: str) -> Run:
            gc.collect()
            started, cpu = time.perf_counter(), time.process_time()
            if name == CHECKS_ALONE:
                checked = verify(task, manifest, store, RANDOMNESS, no_replay, spec_cid=spec_cid)
                if checked.fault is not None or checked.selected != traced["selected"]:
                    raise RuntimeError(f"the checks alone decided otherwise: {checked.reasons}")
            elif replay_alone(task, inputs, replayer) != trace_roots:
                raise RuntimeError("the replays alone traced other roots than the verdicts")
            wall = time.perf_counter() - started
            return Run(wall, time.process_time() - cpu, wall)

        for _ in range(rounds):
            for config in CONFIGS:
                timed, verdict = once(config)
                verdicts[config.name].append(verdict)
                runs[config.name].append(timed)
            for name in PARTS:
                runs[name].append(part(name))
    check_verdicts(verdicts, {config.name: config.trace for config in CONFIGS})
    summary = summarize(runs, BASELINE)
    figures = {config.name: summary[config.name] for config in CONFIGS}
    cores = len(os.sched_getaffinity(0))
    for config in CONFIGS:
        figures[config.name].update(
            workers=config.workers,
            trace=config.trace,
            replays_at_once=replays_at_once(config.workers, config.trace),
        )
    return {
        "spec": task.spec.name,
        "steps": task.spec.steps,
        "segments": task.spec.segment_count,
        "steps_per_segment": task.spec.checkpoint_interval,
        "build_s": round(build_s, 3),
        "replayer": replayer.backend.describe(),
        "rounds": rounds,
        "warm_up": list(WARM_UP),
        "baseline": BASELINE,
        "cores": {"cpu_count": os.cpu_count(), "affinity": sorted(os.sched_getaffinity(0))},
        "replayed_segments": len(verdicts[BASELINE][0]["segments"]),
        "verdicts_equal": True,  # check_verdicts raised otherwise
        "configs": figures,
        "parts": {name: summary[name] for name in PARTS},
        "overlap": overlap(runs, [c.name for c in CONFIGS if c.trace], cores),
    }
