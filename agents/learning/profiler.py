"""The profiler: how far honest reproductions of a segment drift apart, and the τ that follows.

A reference backend (native torch, default settings) trains the task and keeps
the checkpoints of ``n`` profiled segments spread evenly over the task. Each
honest variant (other thread counts, gradient accumulation over microbatches,
the exact kernels when installed, CUDA when present) replays every profiled
segment from the reference's start checkpoint, and the relative distance of
its end state to the reference's end (``agents.learning.distance``, the spec's
metric) is the observed drift. The proposed threshold is

    τ = max(MARGIN · max drift, TAU_FLOOR)

with ``MARGIN = 10`` (honest hardware the profiler did not see may drift
further than the variants it did) and ``TAU_FLOOR = 1e-6`` (variants that all
agree bit for bit say nothing about other hardware). For separation, the same
segments are also claimed the ways cheats claim them (skipped, half the steps,
another data order), and the smallest such distance is reported with its ratio
to τ. In exact mode τ = 0 and nothing is profiled.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.learning.backends import Backend, backend_available, get_backend
from agents.learning.distance import group_distances, segment_distance
from agents.learning.layout import STEP, State, ordered, step_tensor
from agents.learning.order import batch_indices
from agents.learning.task import Task

MARGIN = 10.0
TAU_FLOOR = 1e-6


@dataclass(frozen=True)
class Observation:
    """One distance: a variant (or a cheat) on one profiled segment."""

    who: str
    segment: int
    distance: float

    def to_json(self) -> dict[str, Any]:
        distance = self.distance if math.isfinite(self.distance) else "inf"
        return {"who": self.who, "segment": self.segment, "distance": distance}


@dataclass
class Profile:
    """Observed honest drift, the proposed τ, and the distances cheats reach."""

    tau: float
    reference: str
    segments: list[int] = field(default_factory=list)
    drift: list[Observation] = field(default_factory=list)
    cheats: list[Observation] = field(default_factory=list)
    skipped: str | None = None

    @property
    def max_drift(self) -> float:
        return max((o.distance for o in self.drift), default=0.0)

    @property
    def cheat_min_distance(self) -> float:
        return min((o.distance for o in self.cheats), default=math.inf)

    def to_json(self) -> dict[str, Any]:
        cheat_min = self.cheat_min_distance
        separation = cheat_min / self.tau if self.tau > 0 else math.inf
        return {
            "tau": self.tau,
            "margin": MARGIN,
            "floor": TAU_FLOOR,
            "max_drift": self.max_drift,
            "reference": self.reference,
            "segments": self.segments,
            "drift": [o.to_json() for o in self.drift],
            "cheats": [o.to_json() for o in self.cheats],
            "cheat_min_distance": cheat_min if math.isfinite(cheat_min) else "inf",
            "separation": separation if math.isfinite(separation) else "inf",
            "skipped": self.skipped,
        }


def honest_variants(task: Task) -> list[Backend]:
    """Ways an honest solver could compute the same training differently, on this machine."""
    variants: list[Backend] = [get_backend("native", threads=1)]
    cores = os.cpu_count() or 1
    if cores > 1:
        variants.append(get_backend("native", threads=min(cores, 4)))
    batch = task.spec.batch_size
    variants += [get_backend("native", microbatches=m) for m in (2, 4) if batch % m == 0]
    if torch.cuda.is_available():
        variants.append(get_backend("native", device="cuda"))
    if backend_available("exact"):
        variants.append(get_backend("exact"))
    return variants


def spread(segments: int, count: int) -> list[int]:
    """``count`` segment indices spread evenly from the first to the last."""
    count = min(count, segments)
    if count == 1:
        return [0]
    return sorted({round(j * (segments - 1) / (count - 1)) for j in range(count)})


def _run(backend: Backend, task: Task, state: State, batches: np.ndarray) -> State:
    session = backend.start(task, state)
    session.run(batches)
    return session.state()


def profile(
    task: Task,
    *,
    segments: int = 3,
    reference: Backend | None = None,
    variants: list[Backend] | None = None,
) -> Profile:
    """Profile ``segments`` segments of ``task`` (see the module docstring)."""
    spec = task.spec
    reference = reference or get_backend("native")
    if spec.verification.tolerance == "exact":
        return Profile(0.0, reference.describe(), skipped="exact mode: τ = 0")
    chosen = spread(spec.segment_count, segments)
    variants = variants if variants is not None else honest_variants(task)
    k = spec.checkpoint_interval
    metric, epsilon = spec.verification.metric, spec.verification.epsilon
    result = Profile(0.0, reference.describe(), segments=chosen)
    session = reference.start(task, task.initial_state())
    done = 0
    for index in chosen:
        if index > done:
            session.run(task.batches(done * k, (index - done) * k))
        start = session.state()
        batches = task.segment_batches(index)
        session.run(batches)
        done = index + 1
        end = session.state()

        def distance(claimed: State, replay: State, start: State = start) -> float:
            return segment_distance(group_distances(start, claimed, replay, metric, epsilon))

        for variant in variants:
            replayed = _run(variant, task, start, batches)
            result.drift.append(Observation(variant.describe(), index, distance(end, replayed)))
        skipped = ordered({**start, STEP: step_tensor((index + 1) * k)})
        half = _run(reference, task, start, batches[: max(1, k // 2)])
        half = ordered({**half, STEP: step_tensor((index + 1) * k)})
        order = batch_indices((spec.seed + 1) % 2**64, task.samples, spec.batch_size, index * k, k)
        shuffled = _run(reference, task, start, order)
        for name, claimed in (("skip", skipped), ("half_steps", half), ("other_order", shuffled)):
            if name == "half_steps" and k == 1:
                continue
            result.cheats.append(Observation(name, index, distance(claimed, end)))
    result.tau = max(MARGIN * result.max_drift, TAU_FLOOR)
    return result
