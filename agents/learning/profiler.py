"""The profiler: how far honest solvers drift from the verifier's replay, and the τ that follows.

Cheap by construction: the profile spends at most ``budget`` (a fraction, 0.1 by
default) of the task's training steps. The **replayer** (the verifier's
backend, the exact kernels where installed) trains a **window** of the first
``W`` segments; on every window segment the main honest variant (native torch
with default settings: what ``veritrain pol train`` runs) replays the segment
from the replayer's start state, and its relative distance to the replayer's
end (``agents.learning.distance``) is exactly what a verifier would measure for
such a solver. The other variants (more threads, gradient accumulation over
microbatches, CUDA where present) replay the window's last segment. The
window's length follows from the budget: ``2·W + (variants − 1)`` segments of
work; at least ``MIN_WINDOW`` segments are measured, so a task of very few
segments may cost more than its budget (the profile reports its cost).

The threshold comes from a model of honest drift, whose assumptions are stated
in docs/proof.md:

- across segments, the logarithm of honest drift is normal with the window's
  mean ``μ`` and spread ``σ``, the spread taken at least ``SPREAD_FLOOR`` (what
  well-conditioned examples show over every segment of their training, with
  room to spare), so a window of a few segments cannot talk it down;
- relative drift grows at most as the learning rate shrinks, so later
  segments are allowed ``G = max(1, largest rate in the window / smallest mean
  rate of a segment)`` times the window's drift.

Then ``τ = max(G · exp(μ + z·σ·√(1 + 1/n)), G · max drift, TAU_FLOOR)`` with ``z`` the
normal quantile of ``1 − EXCEED_TARGET`` and ``n`` the number of measured
distances, and under the model the probability that one honest segment
exceeds τ is at most ``EXCEED_TARGET`` (the profile reports the figure for the
τ it proposes, and for a whole verification of ``s`` segments). For
separation, the window's last segment is also claimed the ways cheats claim it
(skipped, half the steps, one step short: the least work a cheat can save); the
smallest such distance and its ratio to τ are reported, with a warning when
the ratio is below ``MIN_SEPARATION``. In exact mode τ = 0 and nothing is
profiled.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.learning.backends import Backend, backend_available, get_backend
from agents.learning.distance import group_distances, segment_distance
from agents.learning.drift import (
    EXCEED_TARGET,
    SPREAD_FLOOR,
    DriftModel,
    fit_model,
    rejection_probability,
)
from agents.learning.layout import STEP, State, ordered, step_tensor
from agents.learning.spec import ConstantSchedule, StepSchedule
from agents.learning.task import Task

DEFAULT_BUDGET = 0.1
MIN_WINDOW = 4
TAU_FLOOR = 1e-6
MIN_SEPARATION = 10.0

ASSUMPTIONS = (
    "log honest drift is normal across segments with the window's mean and a spread of at "
    f"least {SPREAD_FLOOR}; relative drift grows at most as the learning rate shrinks; the "
    "spec keeps training well-conditioned (docs/spec.md, conditioning)"
)


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
    """Observed honest drift, the model fitted to it, the proposed τ and what it guarantees."""

    tau: float
    reference: str
    budget: float = DEFAULT_BUDGET
    window: list[int] = field(default_factory=list)
    drift: list[Observation] = field(default_factory=list)
    cheats: list[Observation] = field(default_factory=list)
    model: DriftModel | None = None
    sampled_per_verification: int = 1
    cost_steps: int = 0
    task_steps: int = 0
    seconds: float = 0.0
    # The task's training time on the main variant, from its steps in the window.
    training_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def max_drift(self) -> float:
        return max((o.distance for o in self.drift), default=0.0)

    @property
    def cheat_min_distance(self) -> float:
        return min((o.distance for o in self.cheats), default=math.inf)

    @property
    def cost_ratio(self) -> float:
        """Steps the profile ran (every backend together) over the task's training steps."""
        return self.cost_steps / self.task_steps if self.task_steps else 0.0

    @property
    def exceed_probability(self) -> float:
        """Under the model: the chance one honest segment's distance exceeds τ."""
        if self.model is None or self.tau <= 0:
            return 0.0
        return self.model.exceed_probability(self.tau)

    @property
    def exceed_probability_verification(self) -> float:
        """Under the model: the chance that any of a verification's segments exceeds τ."""
        return rejection_probability(self.exceed_probability, self.sampled_per_verification)

    def to_json(self) -> dict[str, Any]:
        cheat_min = self.cheat_min_distance
        separation = cheat_min / self.tau if self.tau > 0 else math.inf
        model = self.model
        return {
            "tau": self.tau,
            "reference": self.reference,
            "budget": self.budget,
            "cost_steps": self.cost_steps,
            "cost_ratio": self.cost_ratio,
            "seconds": round(self.seconds, 3),
            "training_seconds_estimate": round(self.training_seconds, 3),
            "window": self.window,
            "max_drift": self.max_drift,
            "drift": [o.to_json() for o in self.drift],
            "model": None if model is None else model.to_json(),
            "exceed_target": EXCEED_TARGET,
            "exceed_probability": self.exceed_probability,
            "exceed_probability_verification": self.exceed_probability_verification,
            "sampled_per_verification": self.sampled_per_verification,
            "assumptions": ASSUMPTIONS,
            "floor": TAU_FLOOR,
            "cheats": [o.to_json() for o in self.cheats],
            "cheat_min_distance": cheat_min if math.isfinite(cheat_min) else "inf",
            "separation": separation if math.isfinite(separation) else "inf",
            "warnings": self.warnings,
            "skipped": self.skipped,
        }


def honest_variants(task: Task) -> list[Backend]:
    """Ways an honest solver could compute the same training, on this machine; the first
    (native torch, default settings) is measured on every window segment."""
    variants: list[Backend] = [get_backend("native")]
    cores = os.cpu_count() or 1
    if cores > 1:
        variants.append(get_backend("native", threads=min(cores, 4)))
    if task.spec.batch_size % 2 == 0:
        variants.append(get_backend("native", microbatches=2))
    if torch.cuda.is_available():
        variants.append(get_backend("native", device="cuda"))
    return variants


def default_reference() -> Backend:
    """The verifier's replayer: the exact kernels where installed, else native torch."""
    return get_backend("exact") if backend_available("exact") else get_backend("native")


def window_length(task: Task, variants: int, budget: float) -> int:
    """Segments in the window: ``2·W + (variants − 1)`` segments of work fit the budget,
    with at least ``MIN_WINDOW`` (and at most every segment of the task)."""
    segments = task.spec.segment_count
    fit = int((budget * segments - max(variants - 1, 0)) // 2)
    return min(segments, max(MIN_WINDOW, fit))


def _rates(task: Task, first: int, count: int) -> np.ndarray:
    """The schedule's rates of steps ``first … first + count − 1`` in binary64: an estimate
    for the growth allowance (the binary32 rates of ``agents.learning.schedule`` differ
    from these by rounding only)."""
    schedule, steps = task.spec.schedule, task.spec.steps
    t = np.arange(first, first + count, dtype=np.float64)
    if isinstance(schedule, ConstantSchedule):
        return np.full(count, schedule.lr)
    if isinstance(schedule, StepSchedule):
        return schedule.lr * schedule.gamma ** np.floor(t / schedule.every)
    warm = schedule.lr * (t + 1) / max(schedule.warmup, 1)
    progress = (t - schedule.warmup) / max(steps - schedule.warmup, 1)
    decay = schedule.lr * (1 - (1 - schedule.final) * progress)
    return np.where(t < schedule.warmup, warm, decay)


def growth_allowance(task: Task, window: int) -> float:
    """``max(1, largest rate in the window / smallest mean rate of a segment)``."""
    k, segments = task.spec.checkpoint_interval, task.spec.segment_count
    window_rate = float(_rates(task, 0, window * k).max())
    smallest = math.inf
    chunk = max(1, (1 << 20) // k)  # segments per block of about a million steps
    for first in range(0, segments, chunk):
        count = min(chunk, segments - first)
        means = _rates(task, first * k, count * k).reshape(count, k).mean(axis=1)
        smallest = min(smallest, float(means.min()))
    if smallest <= 0:
        return math.inf
    return max(1.0, window_rate / smallest)


def _run(backend: Backend, task: Task, state: State, batches: np.ndarray) -> State:
    session = backend.start(task, state)
    session.run(batches)
    return session.state()


def profile(
    task: Task,
    *,
    budget: float = DEFAULT_BUDGET,
    reference: Backend | None = None,
    variants: list[Backend] | None = None,
) -> Profile:
    """Profile ``task`` within ``budget`` (see the module docstring)."""
    if not 0 < budget <= 1:
        raise ValueError("budget is a fraction of the task's training, in (0, 1]")
    spec = task.spec
    started = time.perf_counter()
    reference = reference or default_reference()
    if spec.verification.tolerance == "exact":
        return Profile(0.0, reference.describe(), budget, skipped="exact mode: τ = 0")
    variants = variants if variants is not None else honest_variants(task)
    if not variants:
        raise ValueError("a profile needs at least one honest variant")
    k, segments = spec.checkpoint_interval, spec.segment_count
    metric, epsilon = spec.verification.metric, spec.verification.epsilon
    window = window_length(task, len(variants), budget)
    result = Profile(
        0.0,
        reference.describe(),
        budget,
        window=list(range(window)),
        sampled_per_verification=spec.verification.segments + spec.verification.top_updates,
        task_steps=spec.steps,
    )
    main, others = variants[0], variants[1:]
    main_seconds = 0.0
    session = reference.start(task, task.initial_state())
    last = window - 1
    half, short = max(1, k // 2), k - 1
    for index in range(window):
        start = session.state()
        batches = task.segment_batches(index)
        snapshots: dict[int, State] = {}
        if index == last:
            done = 0
            for at in sorted({half, short} - {0, k}):
                session.run(batches[done:at])
                snapshots[at] = session.state()
                done = at
            session.run(batches[done:])
        else:
            session.run(batches)
        end = session.state()
        result.cost_steps += k

        def distance(claimed: State, replay: State, start: State = start) -> float:
            return segment_distance(group_distances(start, claimed, replay, metric, epsilon))

        for variant in [main, *others] if index == last else [main]:
            began = time.perf_counter()
            claimed = _run(variant, task, start, batches)
            if variant is main:
                main_seconds += time.perf_counter() - began
            result.cost_steps += k
            result.drift.append(Observation(variant.describe(), index, distance(claimed, end)))
        if index == last:
            step = step_tensor((index + 1) * k)
            claims = {"skip": ordered({**start, STEP: step})}
            claims.update(
                {
                    name: ordered({**snapshots[at], STEP: step})
                    for name, at in (("half_steps", half), ("one_step_short", short))
                    if at in snapshots
                }
            )
            for name, claimed in claims.items():
                result.cheats.append(Observation(name, index, distance(claimed, end)))
    growth = growth_allowance(task, window)
    result.model = fit_model([o.distance for o in result.drift], growth)
    tau = TAU_FLOOR
    if result.model is not None:
        # An infinite drift (one side diverged) is above every τ: τ covers the finite ones.
        largest = max((o.distance for o in result.drift if math.isfinite(o.distance)), default=0.0)
        tau = max(tau, result.model.bound(EXCEED_TARGET), growth * largest)
    result.tau = tau
    cheat_min = result.cheat_min_distance
    if not math.isfinite(result.max_drift):
        result.warnings.append(
            "an honest training diverged where the exact replay did not, or the other way "
            "round (distance +inf): no τ passes it; condition the spec or use exact mode"
        )
    elif not math.isfinite(tau):
        result.warnings.append(
            "the learning rate falls to zero: late segments barely move, and no threshold "
            "tells their honest drift from a fake"
        )
    elif cheat_min < MIN_SEPARATION * tau:
        result.warnings.append(
            f"the smallest cheat ({cheat_min:.3g}) is within {MIN_SEPARATION:g}× of τ: "
            "tolerant verification barely tells honest drift from skipped work on this spec "
            "(condition it better or use exact mode)"
        )
    if window >= segments:
        result.warnings.append("the task has too few segments for a window: every one profiled")
    elif result.cost_ratio > budget:
        result.warnings.append(
            f"the task has too few segments for its budget: profiling {window} of {segments} "
            f"segments cost {result.cost_ratio:.2f} of its training"
        )
    result.seconds = time.perf_counter() - started
    result.training_seconds = main_seconds / (window * k) * spec.steps
    return result
