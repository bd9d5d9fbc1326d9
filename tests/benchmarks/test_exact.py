"""The exact benchmark's bound on the traced ratio and its count of hashed bytes."""

from __future__ import annotations

import numpy as np
import pytest

from agents.learning.backends import get_backend
from agents.learning.layout import parameter_shapes
from benchmarks.exact import _task, floor_ratio, median_run, trace_bytes_per_step


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
