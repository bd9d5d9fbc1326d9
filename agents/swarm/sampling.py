"""Random assignments: the floor every search must beat.

A random plan places the devices by a uniformly random permutation: groups,
stage order and pipelines all random. ``best_random`` keeps the cheapest of
``samples`` such plans, scored in bulk.
"""

from __future__ import annotations

import numpy as np

from agents.swarm.cost import FloatArray, IntArray, Weights


def random_plans(w: Weights, rng: np.random.Generator, samples: int) -> IntArray:
    """``samples`` random plans, shape (samples, R, S)."""
    perms = np.argsort(rng.random((samples, w.size)), axis=1)
    return perms.reshape(samples, w.replicas, w.stages).astype(np.int64)


def plan_costs(w: Weights, plans: IntArray) -> tuple[FloatArray, FloatArray]:
    """Data-parallel and pipeline cost of each plan in a (samples, R, S) stack."""
    samples = plans.shape[0]
    dp = np.zeros(samples)
    for j in range(w.stages):
        g = plans[:, :, j]
        member = w.dp[g[:, :, None], g[:, None, :]].sum(axis=2)
        dp = np.maximum(dp, member.max(axis=1))
    if w.stages > 1:
        hops = w.pp[plans[:, :, :-1], plans[:, :, 1:]]
        pp = hops.max(axis=1).sum(axis=1)
    else:
        pp = np.zeros(samples)
    return dp, pp


def best_random(w: Weights, seed: int, samples: int, chunk: int = 1024) -> tuple[IntArray, int]:
    """The cheapest of ``samples`` random plans (first on ties) and how many were scored."""
    if samples < 1:
        raise ValueError("at least one sample")
    rng = np.random.default_rng(seed)
    best: IntArray | None = None
    best_total = np.inf
    left = samples
    while left:
        n = min(chunk, left)
        plans = random_plans(w, rng, n)
        dp, pp = plan_costs(w, plans)
        total = dp + pp
        i = int(np.argmin(total))
        if total[i] < best_total:
            best_total, best = float(total[i]), plans[i].copy()
        left -= n
    assert best is not None
    return best, samples
