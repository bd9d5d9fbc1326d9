"""Real segments of the example models for the game tests: each example task with a small
checkpoint interval, its program, its honest checkpoints and replay providers on disk."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from agents.commitment import state_root
from agents.dispute.program import Program
from agents.dispute.programs import program_of
from agents.dispute.replay import Fault, ReplayProvider
from agents.learning.backends import get_backend
from agents.learning.datasets import build
from agents.learning.layout import State
from agents.learning.task import Task
from tests.exact import tasks as example

STEPS = 6
INTERVAL = 2


@functools.cache
def small_task(name: str) -> Task:
    """Example ``name`` (``mlp``, ``cnn``, ``transformer``) with 6 steps in 3 segments of 2."""
    data: dict[str, Any] = {**example._COMMON, **example._SPECS[name]}
    data.update(steps=STEPS, checkpoint_interval=INTERVAL)
    schedule = dict(data["schedule"])
    if "warmup" in schedule:
        schedule["warmup"] = 2
    if "every" in schedule:
        schedule["every"] = 3
    data["schedule"] = schedule
    data["verification"] = {**data["verification"], "segments": 2}
    spec = example._with_real_cid(data)
    assert spec.dataset.source is not None
    return Task.bind(spec, build(spec.dataset.source))


@functools.cache
def program(name: str) -> Program:
    return program_of(small_task(name))


@functools.cache
def checkpoints(name: str) -> tuple[State, ...]:
    """The honest checkpoints 0 … S of the small task."""
    task = small_task(name)
    states = [task.initial_state()]
    session = get_backend("exact").start(task, states[0])
    for segment in range(task.spec.segment_count):
        session.run(task.segment_batches(segment))
        states.append(session.state())
    return tuple(states)


def checkpoint_roots(name: str) -> list[bytes]:
    return [state_root(s) for s in checkpoints(name)]


def provider(name: str, segment: int, cache: Path, fault: Fault | None = None) -> ReplayProvider:
    """A party's provider of segment ``segment`` (honest, or lying by ``fault``)."""
    states = checkpoints(name)
    return ReplayProvider(
        small_task(name),
        program(name),
        segment,
        states[segment],
        states[segment + 1],
        fault=fault,
        cache=cache,
    )
