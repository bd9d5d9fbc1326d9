"""Small problems for the scheduler tests: networks given as matrices, workloads by their sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.swarm.cost import Weights, weights
from agents.swarm.network import Device, Network
from agents.swarm.workload import Workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "swarm"
SCENARIOS = (
    "datacenter-on-demand",
    "datacenter-spot",
    "multiple-datacenters",
    "regional-geo-distributed",
    "world-geo-distributed",
)


def network(latency_s: list[list[float]], bandwidth_bps: list[list[float]]) -> Network:
    """A network from matrices in seconds and bytes per second (diagonal ignored)."""
    lat = np.array(latency_s, dtype=np.float64)
    bw = np.array(bandwidth_bps, dtype=np.float64)
    np.fill_diagonal(lat, 0.0)
    np.fill_diagonal(bw, np.inf)
    devices = tuple(Device(f"d{i}", None, None, 1.0, 1.0) for i in range(len(lat)))
    return Network("test", devices, lat, bw)


def workload(stages: int, replicas: int, gradient: float, activation: float) -> Workload:
    return Workload("test", stages, replicas, gradient, activation, 1.0, 1.0)


def random_weights(seed: int, stages: int, replicas: int, symmetric: bool = True) -> Weights:
    """A random problem: clustered devices with distance-driven latency and bandwidth."""
    rng = np.random.default_rng(seed)
    n = stages * replicas
    centers = rng.random((int(rng.integers(1, 5)), 2))
    points = centers[rng.integers(0, len(centers), n)] + rng.normal(0.0, 0.05, (n, 2))
    dist = np.linalg.norm(points[:, None] - points[None], axis=2)
    lat = 0.001 + 0.05 * dist
    bw = 1e9 / (1.0 + 10.0 * dist) * rng.uniform(0.5, 1.5, (n, n))
    if symmetric:
        bw = (bw + bw.T) / 2
    return weights(network(lat.tolist(), bw.tolist()), workload(stages, replicas, 4e8, 2e8))
