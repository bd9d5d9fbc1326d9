"""Given the data-parallel groups, the best stage order and device matching (exact).

The pipeline cost of a plan is a sum over boundaries of the slowest matched pair
across each (``agents.swarm.cost``). Given the groups, it separates:

* for two groups ``a`` and ``b`` the cheapest a boundary between them can be is the
  **bottleneck perfect matching** value: the least ``t`` such that the pairs with
  ``w_pp ≤ t`` contain a perfect matching of ``a`` onto ``b``;
* matchings of different boundaries are independent (any choice of them chains into
  ``R`` pipelines), so the best stage order is the shortest **open path** through the
  groups with those values as distances (a travelling salesman path with free
  ends), found exactly by Held–Karp dynamic programming for up to
  ``EXACT_PATH_LIMIT`` stages and by nearest-neighbour tours with 2-opt beyond.

Among the matchings that reach a boundary's bottleneck, the one with the least
total cost is chosen, so that every pipeline's own time is as short as it can be.
Every choice breaks ties to the lowest index, so an arrangement is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from agents.swarm.cost import Cost, FloatArray, Groups, IntArray, Weights, data_parallel_cost

EXACT_PATH_LIMIT = 14
_BIG = 1e30


def bottleneck(costs: FloatArray) -> float:
    """The bottleneck perfect matching value of a square cost matrix."""
    n = costs.shape[0]
    if n == 1:
        return float(costs[0, 0])
    low = max(float(costs.min(axis=1).max()), float(costs.min(axis=0).max()))
    if _perfect(costs <= low):
        return low
    values = np.unique(costs)
    lo = int(np.searchsorted(values, low, side="right"))
    hi = len(values) - 1  # the largest value always admits a perfect matching
    while lo < hi:
        mid = (lo + hi) // 2
        if _perfect(costs <= values[mid]):
            hi = mid
        else:
            lo = mid + 1
    return float(values[lo])


def _perfect(allowed: NDArray[np.bool_]) -> bool:
    rows, cols = linear_sum_assignment(~allowed)
    return bool(allowed[rows, cols].all())


def matching(costs: FloatArray, limit: float) -> IntArray:
    """``m[i]``: the column matched to row ``i``, all pairs ``≤ limit``, least total cost."""
    bounded = np.where(costs <= limit, costs, _BIG)
    rows, cols = linear_sum_assignment(bounded)
    out = np.empty(costs.shape[0], dtype=np.int64)
    out[rows] = cols
    return out


def open_path(dist: FloatArray) -> tuple[float, list[int]]:
    """The shortest path visiting every node once (free ends) of a symmetric matrix."""
    n = dist.shape[0]
    if n == 1:
        return 0.0, [0]
    if n > EXACT_PATH_LIMIT:
        return _path_heuristic(dist)
    full = 1 << n
    best = np.full((full, n), np.inf)
    parent = np.full((full, n), -1, dtype=np.int64)
    bits = 1 << np.arange(n)
    best[bits, np.arange(n)] = 0.0
    masks = np.arange(full)
    popcount = np.array([bin(m).count("1") for m in range(full)])
    dist_t = dist.T  # dist_t[j, i] = dist[i, j]
    for size in range(2, n + 1):
        layer = masks[popcount == size]
        prev = layer[:, None] ^ bits[None, :]  # prev[m, j]: the mask before ending at j
        # cand[m, j, i]: the best path over prev[m, j] ending at i, then i -> j.
        cand = best[prev] + dist_t[None, :, :]
        choice = np.argmin(cand, axis=2)
        value = np.take_along_axis(cand, choice[:, :, None], axis=2)[:, :, 0]
        inside = (layer[:, None] & bits[None, :]) != 0
        best[layer] = np.where(inside, value, np.inf)
        parent[layer] = np.where(inside, choice, -1)
    end = int(np.argmin(best[full - 1]))
    total = float(best[full - 1, end])
    order = [end]
    mask = full - 1
    while len(order) < n:
        j = order[-1]
        i = int(parent[mask, j])
        mask ^= 1 << j
        order.append(i)
    order.reverse()
    return total, order


def _path_length(dist: FloatArray, order: Sequence[int]) -> float:
    return float(sum(dist[order[i], order[i + 1]] for i in range(len(order) - 1)))


def _path_heuristic(dist: FloatArray) -> tuple[float, list[int]]:
    n = dist.shape[0]
    best_order: list[int] = []
    best_len = np.inf
    for start in range(n):
        order = [start]
        left = set(range(n)) - {start}
        while left:
            here = order[-1]
            nxt = min(left, key=lambda j: (dist[here, j], j))
            order.append(nxt)
            left.remove(nxt)
        improved = True
        while improved:
            improved = False
            for i in range(n - 1):
                for k in range(i + 1, n):
                    candidate = order[: i + 1] + order[i + 1 : k + 1][::-1] + order[k + 1 :]
                    if _path_length(dist, candidate) < _path_length(dist, order) - 1e-12:
                        order = candidate
                        improved = True
        length = _path_length(dist, order)
        if length < best_len:
            best_len, best_order = length, order
    return float(best_len), best_order


@dataclass(frozen=True)
class Arrangement:
    """The best plan for given groups: ``pipelines[k, j]`` and its cost."""

    pipelines: IntArray
    cost: Cost


class Arranger:
    """Arranges groups into plans, remembering bottleneck values of group pairs it has seen."""

    def __init__(self, w: Weights, cache_size: int = 200_000) -> None:
        self.w = w
        self._cache: dict[tuple[bytes, bytes], float] = {}
        self._cache_size = cache_size

    def _pair(self, a: IntArray, b: IntArray) -> float:
        key = (a.tobytes(), b.tobytes()) if a[0] < b[0] else (b.tobytes(), a.tobytes())
        hit = self._cache.get(key)
        if hit is None:
            hit = bottleneck(self.w.pp[np.ix_(a, b)])
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def boundary_matrix(self, groups: Sequence[IntArray]) -> FloatArray:
        """``[g, h]``: the bottleneck value of a boundary between groups ``g`` and ``h``."""
        s = len(groups)
        out = np.zeros((s, s))
        for g in range(s):
            for h in range(g + 1, s):
                out[g, h] = out[h, g] = self._pair(groups[g], groups[h])
        return out

    def cost(self, groups: Groups) -> Cost:
        """The best cost the groups admit (no plan built)."""
        gs = _canonical(groups)
        dp = data_parallel_cost(self.w, gs)
        if len(gs) == 1:
            return Cost(dp, 0.0)
        length, _ = open_path(self.boundary_matrix(gs))
        return Cost(dp, length)

    def arrange(self, groups: Groups) -> Arrangement:
        """The best plan for the groups: stage order, matchings, pipelines."""
        gs = _canonical(groups)
        dp = data_parallel_cost(self.w, gs)
        r = len(gs[0])
        if len(gs) == 1:
            return Arrangement(gs[0].reshape(r, 1).copy(), Cost(dp, 0.0))
        dist = self.boundary_matrix(gs)
        length, order = open_path(dist)
        pipelines = np.empty((r, len(gs)), dtype=np.int64)
        pipelines[:, 0] = gs[order[0]]
        for j in range(1, len(order)):
            previous = pipelines[:, j - 1]
            nxt = gs[order[j]]
            m = matching(self.w.pp[np.ix_(previous, nxt)], dist[order[j - 1], order[j]])
            pipelines[:, j] = nxt[m]
        return Arrangement(pipelines, Cost(dp, length))


def _canonical(groups: Groups) -> list[IntArray]:
    """Each group's members sorted (so equal groups share cache entries)."""
    return [np.sort(np.asarray(g, dtype=np.int64)) for g in groups]
