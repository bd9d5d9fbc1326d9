"""One entry point for the three schedulers, and the plan they produce.

``schedule(network, workload, method, seed)`` runs ``random`` (the cheapest of
random plans), ``genetic`` (the paper's search, ``agents.swarm.genetic``) or
``descent`` (ours, ``agents.swarm.descent``) and returns a ``Schedule``: the plan,
its cost under the model, and how long the search took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from agents.swarm.arrangement import Arranger
from agents.swarm.cost import Cost, IntArray, Weights, check_plan, plan_cost, weights
from agents.swarm.descent import descent_search
from agents.swarm.errors import SwarmError
from agents.swarm.genetic import OFFSPRING, POPULATION, genetic_search, groups_of
from agents.swarm.network import Network
from agents.swarm.sampling import best_random
from agents.swarm.workload import Workload

Method = Literal["random", "genetic", "descent"]
METHODS: tuple[Method, ...] = ("random", "genetic", "descent")
RANDOM_SAMPLES = POPULATION + OFFSPRING


@dataclass(frozen=True)
class Schedule:
    """A plan (``pipelines[k, j]``: device index of stage ``j`` in pipeline ``k``) and its cost."""

    method: str
    seed: int
    pipelines: IntArray
    cost: Cost
    search_s: float
    evaluations: int


def search(w: Weights, method: str, seed: int = 0, **options: Any) -> Schedule:
    """Run one scheduler on precomputed weights."""
    arranger = Arranger(w)
    started = time.perf_counter()
    if method == "random":
        plan, evaluations = best_random(w, seed, int(options.get("samples", RANDOM_SAMPLES)))
    elif method == "genetic":
        labels, evaluations = genetic_search(w, arranger, seed, **options)
        plan = arranger.arrange(groups_of(labels, w.stages)).pipelines
    elif method == "descent":
        plan = descent_search(w, arranger, seed, **options)
        evaluations = 0
    else:
        raise SwarmError(f"unknown scheduler {method!r}; known: {', '.join(METHODS)}")
    elapsed = time.perf_counter() - started
    plan = check_plan(w, np.asarray(plan))
    return Schedule(method, seed, plan, plan_cost(w, plan), elapsed, evaluations)


def schedule(
    network: Network, workload: Workload, method: str = "descent", seed: int = 0, **options: Any
) -> Schedule:
    """Schedule ``workload`` on ``network`` with ``method``."""
    need = workload.memory_bytes_per_device / 1e9
    short = [d.name for d in network.devices if d.memory_gb < need]
    if short:
        raise SwarmError(
            f"{len(short)} device(s) cannot hold a stage ({need:.2f} GB of training state): "
            f"{', '.join(short[:5])}; use more stages"
        )
    return search(weights(network, workload), method, seed, **options)
