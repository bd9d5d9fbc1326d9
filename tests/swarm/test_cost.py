"""The cost model against hand-computed cases.

Every expected value below is worked out by hand from the definitions in
``agents.swarm.cost``: ``t(i→j, x) = latency + x / bandwidth``; a device's
all-reduce cost is ``Σ (t(d→e, G/R) + t(e→d, G/R))`` over its group; a boundary
costs its slowest pipeline's ``t(d→e, A) + t(e→d, A)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.swarm.cost import (
    Weights,
    boundary_costs,
    check_plan,
    data_parallel_cost,
    pipeline_cost,
    plan_cost,
    weights,
)
from agents.swarm.errors import SwarmError
from agents.swarm.workload import ModelFile, workload_for

from .conftest import network, workload

GB = 1e9
# Four devices. Latency 10 ms everywhere except 2<->3 (none); bandwidth 1 GB/s
# everywhere except 0<->1 (2 GB/s) and 2->0 (0.5 GB/s, one direction only).
LAT = [[0, 0.01, 0.01, 0.01], [0.01, 0, 0.01, 0.01], [0.01, 0.01, 0, 0.0], [0.01, 0.01, 0.0, 0]]
BW = [[0, 2 * GB, GB, GB], [2 * GB, 0, GB, GB], [0.5 * GB, GB, 0, GB], [GB, GB, GB, 0]]


def _weights(
    stages: int, replicas: int, gradient: float = 4 * GB, activation: float = GB
) -> Weights:
    return weights(network(LAT, BW), workload(stages, replicas, gradient, activation))


@pytest.mark.parametrize(
    ("plan", "dp", "pp"),
    [
        # Groups {0,1} and {2,3}; chunk G/R = 2 GB.
        #   w_dp(0,1) = 2 * (0.01 + 2/2) = 2.02; w_dp(2,3) = 2 * (0 + 2/1) = 4.0
        # Boundary pairs (0,2) and (1,3), A = 1 GB:
        #   w_pp(0,2) = (0.01 + 1/1) + (0.01 + 1/0.5) = 3.02; w_pp(1,3) = 2 * (0.01 + 1) = 2.02
        ([[0, 2], [1, 3]], 4.0, 3.02),
        # Groups {0,2} and {1,3}:
        #   w_dp(0,2) = (0.01 + 2/1) + (0.01 + 2/0.5) = 6.02; w_dp(1,3) = 2 * (0.01 + 2) = 4.02
        # Pairs (0,1): 2 * (0.01 + 1/2) = 1.02; (2,3): 2 * (0 + 1) = 2.0
        ([[0, 1], [2, 3]], 6.02, 2.0),
        # Groups {0,3}, {1,2}: w_dp = 2 * (0.01 + 2) = 4.02 both.
        # Pairs (0,1): 1.02; (3,2): 2.0
        ([[0, 1], [3, 2]], 4.02, 2.0),
    ],
)
def test_two_by_two(plan: list[list[int]], dp: float, pp: float) -> None:
    w = _weights(2, 2)
    cost = plan_cost(w, np.array(plan))
    assert cost.data_parallel == pytest.approx(dp, rel=1e-12)
    assert cost.pipeline == pytest.approx(pp, rel=1e-12)
    assert cost.total == pytest.approx(dp + pp, rel=1e-12)


def test_one_pipeline_sums_its_boundaries() -> None:
    # R = 1: no data parallelism. Path 3 -> 2 -> 0 -> 1 with A = 1 GB:
    #   (3,2): 2 * (0 + 1) = 2.0; (2,0): 3.02; (0,1): 2 * (0.01 + 0.5) = 1.02
    w = _weights(4, 1)
    cost = plan_cost(w, np.array([[3, 2, 0, 1]]))
    assert cost.data_parallel == 0.0
    assert cost.pipeline == pytest.approx(2.0 + 3.02 + 1.02, rel=1e-12)


def test_one_stage_is_all_reduce_only() -> None:
    # S = 1: one group of four, chunk G/R = 1 GB. Device 0's cost:
    #   to 1: 2 * (0.01 + 0.5) = 1.02; to 2: (0.01 + 1) + (0.01 + 2) = 3.02; to 3: 2.02
    # Device 2: to 0: 3.02; to 1: 2.02; to 3: 2 * (0 + 1) = 2.0  -> 7.04 (the largest)
    w = _weights(1, 4)
    cost = plan_cost(w, np.array([[0], [1], [2], [3]]))
    assert cost.pipeline == 0.0
    assert cost.data_parallel == pytest.approx(3.02 + 2.02 + 2.0, rel=1e-12)


def test_slowest_pipeline_sets_each_boundary() -> None:
    w = _weights(2, 2)
    hops = boundary_costs(w, np.array([[0, 2], [1, 3]]))
    assert hops[:, 0] == pytest.approx([3.02, 2.02], rel=1e-12)
    assert pipeline_cost(w, np.array([[0, 2], [1, 3]])) == pytest.approx(3.02, rel=1e-12)
    assert data_parallel_cost(w, [[0, 1], [2, 3]]) == pytest.approx(4.0, rel=1e-12)


def test_plans_must_use_every_device_once() -> None:
    w = _weights(2, 2)
    for bad in ([[0, 1], [1, 3]], [[0, 1, 2, 3]], [[0.0, 1.0], [2.0, 3.0]], [[0, 1], [2, 4]]):
        with pytest.raises(SwarmError):
            check_plan(w, np.array(bad))


def test_device_count_must_match_the_workload() -> None:
    with pytest.raises(SwarmError, match="need 6"):
        weights(network(LAT, BW), workload(3, 2, GB, GB))


def test_gpt3_xl_sizes() -> None:
    model = ModelFile(
        name="gpt3-1.3b", layers=24, d_model=2048, seq_len=2048, vocab=50257,
        batch=512, stages=8, activation_bytes=2, gradient_bytes=4,
    )  # fmt: skip
    # 24 * (12 * 2048^2 + 13 * 2048) + (50257 + 2048) * 2048 + 2 * 2048
    assert model.parameter_count == 1_315_723_264
    wl = workload_for(model, 64)
    assert (wl.stages, wl.replicas) == (8, 8)
    assert wl.gradient_bytes_per_stage == 1_315_723_264 / 8 * 4
    # 512 / 8 = 64 sequences of 2048 tokens of 2048 values of 2 bytes
    assert wl.activation_bytes_per_boundary == 64 * 2048 * 2048 * 2


@pytest.mark.parametrize(
    ("devices", "stages", "message"),
    [(60, None, "multiple of the stage count"), (64, 5, "equal stages"), (72, 3, "does not split")],
)
def test_workload_rejects_what_does_not_divide(
    devices: int, stages: int | None, message: str
) -> None:
    model = ModelFile(name="m", layers=24, d_model=8, seq_len=8, batch=512, stages=8)
    with pytest.raises(SwarmError, match=message):
        workload_for(model, devices, stages)
