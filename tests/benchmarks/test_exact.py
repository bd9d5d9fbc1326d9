"""The exact benchmark's bound on the traced ratio, its count of hashed bytes and its tracer
that hashes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from agents.exact.ops import Tracer
from agents.learning.backends import get_backend
from agents.learning.backends.exact import ExactBackend
from agents.learning.layout import parameter_shapes
from benchmarks.exact import (
    UnhashedTracer,
    _task,
    floor_ratio,
    median_run,
    trace_bytes_per_step,
    unhashed_step_ms,
)


@pytest.mark.parametrize(
    ("exact_ms", "exact_cpu_ms", "hash_ms", "cores", "expected"),
    [
        (2.0, 2.0, 2.0, 2, 1.0),  # the hashing fits on the idle core
        (2.0, 2.0, 6.0, 2, 2.0),  # 8 ms of work on 2 cores for a 2 ms step
        (2.0, 3.0, 1.0, 1, 2.0),  # one core does it all
        (4.0, 4.0, 0.0, 2, 1.0),  # never below the untraced step
        (1.0, 2.0, 1.0, 2, 1.5),  # an untraced step on both cores leaves less room
    ],
)
def test_floor_ratio(
    exact_ms: float, exact_cpu_ms: float, hash_ms: float, cores: int, expected: float
) -> None:
    assert floor_ratio(exact_ms, exact_cpu_ms, hash_ms, cores) == pytest.approx(expected)


def test_a_step_hashes_at_least_its_new_parameters_the_same_each_time() -> None:
    task = _task("digits-mlp")
    batches = task.batches(0, 4)
    exact = get_backend("exact")
    parameters = sum(4 * int(np.prod(shape)) for shape in parameter_shapes(task.spec).values())
    first = trace_bytes_per_step(exact, task, batches)
    assert first > parameters  # new parameters, activations and gradients
    assert trace_bytes_per_step(exact, task, batches) == first
    with pytest.raises(TypeError, match="exact backend"):
        trace_bytes_per_step(get_backend("native"), task, batches)


def test_median_run_keeps_the_middle_runs_figures() -> None:
    runs = [{"traced_ratio": r, "traced_step_ms": 10 * r} for r in (1.9, 1.6, 1.7, 2.0)]
    got = median_run(runs)
    assert got["traced_ratio"] == 1.7  # the lower middle of 1.6, 1.7, 1.9, 2.0
    assert got["traced_step_ms"] == 17.0
    assert got["traced_ratio_runs"] == [1.9, 1.6, 1.7, 2.0]
    assert got["traced_ratio_spread"] == pytest.approx(0.4)


def test_the_unhashed_tracer_records_the_same_ops_and_hashes_no_tensor() -> None:
    task = _task("digits-mlp")
    batches = task.batches(0, 3)
    exact = get_backend("exact")
    assert isinstance(exact, ExactBackend)
    traces = []
    for tracer in (Tracer(exact.kernels), UnhashedTracer(exact.kernels)):
        session = exact.start(task, task.initial_state(), tracer=tracer)
        session.run(batches)
        traces.append(tracer.segment)
    plain, unhashed = traces
    assert len(unhashed.steps) == len(plain.steps) == 3
    shape = [(r.op, r.attributes, len(r.inputs)) for r in plain.records()]
    assert [(r.op, r.attributes, len(r.inputs)) for r in unhashed.records()] == shape
    # Every array's Merkle root reads as zeros: no tensor root is the plain trace's.
    plain_roots = {r.output for r in plain.records()}
    assert not plain_roots & {r.output for r in unhashed.records()}
    assert unhashed_step_ms(exact, task, batches) > 0
    with pytest.raises(TypeError, match="exact backend"):
        unhashed_step_ms(get_backend("native"), task, batches)
