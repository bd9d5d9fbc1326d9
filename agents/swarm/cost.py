"""The per-iteration communication cost of a plan (DT-FM's cost model).

A plan places ``S × R`` devices: ``pipelines[k, j]`` is the device that runs stage
``j`` of pipeline (data-parallel replica) ``k``. Column ``j`` is stage ``j``'s
data-parallel group. With ``t(i→j, x) = latency(i→j) + x / bandwidth(i→j)``:

* **Data parallelism.** Each group all-reduces its stage's gradients (``c_dp``
  bytes) by scatter-reduce and all-gather: every member sends a ``c_dp / R`` chunk
  to every other member in each of the two phases. A device ``d``'s cost is
  ``Σ_{e in its group, e ≠ d} w_dp(d, e)`` with
  ``w_dp(d, e) = t(d→e, c_dp/R) + t(e→d, c_dp/R)`` (the paper's
  ``2·(α + c_dp/(R·β))`` when links are symmetric); the data-parallel cost is the
  largest device cost over all groups.
* **Pipeline parallelism.** Across each boundary between stages ``j`` and ``j+1``
  every pipeline sends its activations forward and their gradients back (``c_pp``
  bytes each way): ``w_pp(d, e) = t(d→e, c_pp) + t(e→d, c_pp)``. A boundary
  takes as long as its slowest pipeline; the pipeline cost is the sum over the
  ``S − 1`` boundaries of ``max_k w_pp(pipelines[k, j], pipelines[k, j+1])``.

The cost of a plan is data-parallel cost plus pipeline cost, in seconds. Given
the groups, the best stage order and the best matching of devices across each
boundary follow exactly (``agents.swarm.arrangement``), so the searches work on
partitions of devices into groups, as the paper does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from agents.swarm.errors import SwarmError
from agents.swarm.network import Network
from agents.swarm.workload import Workload

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
# Data-parallel groups: device indices per group, as lists or arrays.
Groups = Sequence[Sequence[int]] | Sequence[IntArray] | IntArray


@dataclass(frozen=True, eq=False)
class Weights:
    """Pairwise costs of one problem: ``dp[d, e]`` and ``pp[d, e]`` in seconds, symmetric."""

    dp: FloatArray
    pp: FloatArray
    stages: int
    replicas: int

    @property
    def size(self) -> int:
        return int(self.dp.shape[0])


def weights(network: Network, workload: Workload) -> Weights:
    """The pairwise data-parallel and pipeline weights of ``workload`` on ``network``."""
    if network.size != workload.devices:
        raise SwarmError(
            f"{network.size} devices, but {workload.stages} stages x {workload.replicas} "
            f"replicas need {workload.devices}"
        )
    chunk = network.transfer_s(workload.gradient_bytes_per_stage / workload.replicas)
    hop = network.transfer_s(workload.activation_bytes_per_boundary)
    dp = chunk + chunk.T
    pp = hop + hop.T
    for m in (dp, pp):
        m.setflags(write=False)
    return Weights(dp, pp, workload.stages, workload.replicas)


@dataclass(frozen=True)
class Cost:
    """A plan's predicted communication time per iteration, in seconds."""

    data_parallel: float
    pipeline: float

    @property
    def total(self) -> float:
        return self.data_parallel + self.pipeline


def group_costs(w: Weights, group: Sequence[int] | IntArray) -> FloatArray:
    """Each member's all-reduce cost within ``group``."""
    g = np.asarray(group, dtype=np.int64)
    return np.asarray(w.dp[np.ix_(g, g)].sum(axis=1), dtype=np.float64)


def data_parallel_cost(w: Weights, groups: Groups) -> float:
    """The largest member cost over all groups."""
    worst = 0.0
    for group in groups:
        if len(group) > 1:
            worst = max(worst, float(group_costs(w, group).max()))
    return worst


def boundary_costs(w: Weights, pipelines: IntArray) -> FloatArray:
    """``[k, j]``: pipeline ``k``'s cost across the boundary between stages ``j`` and ``j+1``."""
    p = np.asarray(pipelines, dtype=np.int64)
    return np.asarray(w.pp[p[:, :-1], p[:, 1:]], dtype=np.float64)


def pipeline_cost(w: Weights, pipelines: IntArray) -> float:
    """Sum over boundaries of the slowest pipeline's transfer time across it."""
    p = np.asarray(pipelines, dtype=np.int64)
    if p.shape[1] < 2:
        return 0.0
    return float(boundary_costs(w, p).max(axis=0).sum())


def check_plan(w: Weights, pipelines: IntArray) -> IntArray:
    """``pipelines`` as an R × S array that uses every device exactly once, else an error."""
    p = np.asarray(pipelines)
    if p.shape != (w.replicas, w.stages):
        raise SwarmError(f"a plan is {w.replicas} pipelines of {w.stages} stages, not {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise SwarmError("a plan names devices by index")
    if sorted(p.ravel().tolist()) != list(range(w.size)):
        raise SwarmError("a plan must use every device exactly once")
    return p.astype(np.int64)


def plan_cost(w: Weights, pipelines: IntArray) -> Cost:
    """The cost model of one plan."""
    p = check_plan(w, pipelines)
    return Cost(data_parallel_cost(w, p.T), pipeline_cost(w, p))
