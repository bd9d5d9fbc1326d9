"""Our scheduler: swap descent on whole plans, with exact re-arrangement, from structured starts.

The paper's search scores partitions and improves them with a surrogate gain that
sees data parallelism only. This one works on whole plans (``pipelines[k, j]``),
where every swap of two devices has an exact, cheap effect on the cost model:
a swap changes two members of at most two groups and at most four boundary pairs.
One scan scores all ``n(n−1)/2`` swaps at once (arrays over the partner device,
one loop over the first), which costs about as much as scoring a few partitions.

* **Starts.** Two structured plans and a random one: *groups first* (greedy
  balanced clusters under ``w_dp``, so each group sits on fast links, then
  arranged exactly) and *pipelines first* (greedy clusters of ``S`` devices under
  ``w_pp``, each ordered as a shortest path, so each pipeline sits on fast links
  and groups are the stage columns), then arranged exactly.
* **Descent.** Take the best swap while it lowers the cost; on a plateau of the
  maximum, take swaps that keep the cost and lower the sum of group maxima
  (lexicographic, so descent always ends). At a local optimum, re-arrange the
  groups exactly (best stage order and matchings); continue if that helped.
* **Kicks.** Iterated local search: a few random swaps, descent again, keep the
  result if it is cheaper (``kicks`` rounds per start, from one seeded generator).

Everything is bounded by counts, not by time, so a seed fixes the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.swarm.arrangement import Arranger, open_path
from agents.swarm.cost import FloatArray, IntArray, Weights
from agents.swarm.sampling import random_plans

KICKS = 12
KICK_SWAPS = 3
RANDOM_STARTS = 1
_TOL = 1e-9


@dataclass
class _State:
    """A plan with the sums the swap scan reads."""

    plan: IntArray  # [k, j]
    stage: IntArray  # stage[d]
    lane: IntArray  # lane[d]: the pipeline of device d
    inside: FloatArray  # inside[d, j]: d's all-reduce cost were it in group j
    member: FloatArray  # member[d] = inside[d, stage[d]]
    group_max: FloatArray  # [j]
    hop: FloatArray  # hop[k, b]
    hop_max: FloatArray  # [b]

    @property
    def dp(self) -> float:
        return float(self.group_max.max()) if self.plan.shape[0] > 1 else 0.0

    @property
    def pp(self) -> float:
        return float(self.hop_max.sum())

    @property
    def total(self) -> float:
        return self.dp + self.pp

    @property
    def soft(self) -> float:
        return float(self.group_max.sum())


def _state(w: Weights, plan: IntArray) -> _State:
    plan = np.array(plan, dtype=np.int64)
    r, s = plan.shape
    stage = np.empty(w.size, dtype=np.int64)
    lane = np.empty(w.size, dtype=np.int64)
    stage[plan] = np.arange(s)[None, :]
    lane[plan] = np.arange(r)[:, None]
    inside = w.dp[:, plan].sum(axis=1)
    member = inside[np.arange(w.size), stage]
    group_max = member[plan].max(axis=0)
    hop = w.pp[plan[:, :-1], plan[:, 1:]] if s > 1 else np.zeros((r, 0))
    hop_max = hop.max(axis=0) if s > 1 else np.zeros(0)
    return _State(plan, stage, lane, inside, member, group_max, hop, hop_max)


def _best_swap(w: Weights, st: _State) -> tuple[float, float, int, int] | None:
    """The swap with the lowest (cost, soft cost), if it beats the current plan.

    Every array is indexed ``[u, v]``: the plan with devices ``u`` and ``v`` swapped.
    """
    n, (r, s) = w.size, st.plan.shape
    cur_total, cur_soft = st.total, st.soft
    stage, lane = st.stage, st.lane
    cross = stage[:, None] != stage[None, :]
    idx_s = np.arange(s)
    gm = st.group_max
    if r > 1:
        # other[a, b]: the largest group maximum outside groups a and b.
        g3 = np.broadcast_to(gm, (s, s, s)).copy()
        g3[idx_s[:, None], idx_s[None, :], idx_s[:, None]] = -np.inf
        g3[idx_s[:, None], idx_s[None, :], idx_s[None, :]] = -np.inf
        other = np.maximum(g3.max(axis=2), 0.0)
        # u's group with v in u's place: its members' new costs, and v's own.
        mates = st.plan[:, stage].T  # [u, r]: the members of u's group
        base = st.member[mates] - w.dp[mates, np.arange(n)[:, None]]
        base[mates == np.arange(n)[:, None]] = -np.inf
        joined = base[:, None, :] + w.dp[np.arange(n)[None, :, None], mates[:, None, :]]
        newcomer = st.inside.T[stage] - w.dp.T  # [u, v] = inside[v, stage[u]] - dp[v, u]
        side = np.maximum(joined.max(axis=2), newcomer)
        pair_other = other[stage[:, None], stage[None, :]]
        dp = np.where(cross, np.maximum(np.maximum(side, side.T), pair_other), st.dp)
        soft = np.where(
            cross, cur_soft - gm[stage][:, None] - gm[stage][None, :] + side + side.T, cur_soft
        )
    else:
        dp = np.zeros((n, n))
        soft = np.full((n, n), cur_soft)
    if s > 1:
        # hop_other[b, k1, k2]: the largest hop across boundary b outside pipelines k1, k2.
        idx_r = np.arange(r)
        h4 = np.broadcast_to(st.hop, (r, r, r, s - 1)).copy()
        h4[idx_r[:, None], idx_r[None, :], idx_r[:, None]] = -np.inf
        h4[idx_r[:, None], idx_r[None, :], idx_r[None, :]] = -np.inf
        hop_other = np.maximum(h4.max(axis=2), 0.0)  # [k1, k2, b]
        uu = np.arange(n)[:, None]
        vv = np.arange(n)[None, :]
        same = lane[:, None] == lane[None, :]
        rows_u = np.broadcast_to(st.plan[lane][:, None, :], (n, n, s)).copy()
        rows_u[np.arange(n)[:, None], np.arange(n)[None, :], stage[:, None]] = vv
        su, sv = np.nonzero(same)
        rows_u[su, sv, stage[sv]] = su
        rows_v = np.broadcast_to(st.plan[lane][None, :, :], (n, n, s)).copy()
        rows_v[np.arange(n)[:, None], np.arange(n)[None, :], stage[None, :]] = uu
        rows_v[su, sv] = rows_u[su, sv]
        hop_u = w.pp[rows_u[..., :-1], rows_u[..., 1:]]
        hop_v = w.pp[rows_v[..., :-1], rows_v[..., 1:]]
        outside = hop_other[lane[:, None], lane[None, :]]
        pp = np.maximum(np.maximum(hop_u, hop_v), outside).sum(axis=2)
    else:
        pp = np.zeros((n, n))
    total = dp + pp
    # Swaps that keep the cost (within rounding) compete on the soft cost alone.
    tol = _TOL * max(1.0, cur_total)
    key = np.where(np.abs(total - cur_total) <= tol, cur_total, total)
    key[np.arange(n), np.arange(n)] = np.inf
    order = np.lexsort((soft.ravel(), key.ravel()))
    u, v = divmod(int(order[0]), n)
    best = (float(key[u, v]), float(soft[u, v]), u, v)
    better = best[0] < cur_total - tol
    flatter = best[0] <= cur_total and best[1] < cur_soft - _TOL * max(1.0, cur_soft)
    return best if better or flatter else None


def _swap(plan: IntArray, u: int, v: int) -> IntArray:
    out = plan.copy()
    pu = np.argwhere(plan == u)[0]
    pv = np.argwhere(plan == v)[0]
    out[pu[0], pu[1]], out[pv[0], pv[1]] = v, u
    return out


def descend(w: Weights, arranger: Arranger, plan: IntArray, max_steps: int = 10_000) -> IntArray:
    """Swap descent with exact re-arrangement at each local optimum."""
    st = _state(w, plan)
    for _ in range(max_steps):
        found = _best_swap(w, st)
        if found is not None:
            st = _state(w, _swap(st.plan, found[2], found[3]))
            continue
        arranged = arranger.arrange(list(st.plan.T)).pipelines
        again = _state(w, arranged)
        if again.total < st.total - _TOL * max(1.0, st.total):
            st = again
            continue
        break
    return st.plan


def _components(weight: FloatArray, threshold: float) -> list[list[int]]:
    """Connected components of the graph with the edges ``weight ≤ threshold``."""
    n = weight.shape[0]
    root = list(range(n))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for a, b in zip(*np.nonzero(np.triu(weight <= threshold, k=1)), strict=True):
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            root[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for x in range(n):
        members.setdefault(find(x), []).append(x)
    return list(members.values())


def _levels(weight: FloatArray, most: int = 8) -> list[float]:
    """Thresholds at which the components of ``weight`` change (at most ``most`` of them)."""
    values = np.unique(weight[~np.eye(weight.shape[0], dtype=bool)])
    if len(values) > most:
        values = np.quantile(values, np.linspace(0.0, 0.5, most), method="lower")
    return [float(v) for v in values]


def _pack(cliques: list[list[int]], bins: int, capacity: int) -> list[list[int]] | None:
    """Cliques into ``bins`` bins of ``capacity``: largest first, each into the emptiest bin,
    split only where no bin has room for it whole. Each bin lists its devices clique by
    clique, largest first, so clique changes fall on the same positions across bins."""
    chunks: list[list[int]] = []
    for clique in cliques:
        for i in range(0, len(clique), capacity):
            chunks.append(sorted(clique[i : i + capacity]))
    chunks.sort(key=lambda c: (-len(c), c[0]))
    filled: list[list[int]] = [[] for _ in range(bins)]
    for chunk in chunks:
        room = [capacity - len(b) for b in filled]
        target = int(np.argmax(room))
        if room[target] >= len(chunk):
            filled[target].extend(chunk)
            continue
        rest = list(chunk)
        for b in sorted(range(bins), key=lambda b: (-room[b], b)):
            take = min(room[b], len(rest))
            filled[b].extend(rest[:take])
            rest = rest[take:]
        if rest:
            return None
    return filled


def packed_starts(w: Weights, arranger: Arranger) -> list[IntArray]:
    """Plans that keep tightly linked cliques together: in pipelines (cliques under
    ``w_pp``) and in groups (cliques under ``w_dp``), one plan per clustering level."""
    starts: list[IntArray] = []
    seen: set[tuple[bool, tuple[tuple[int, ...], ...]]] = set()
    for weight, bins, capacity, as_rows in (
        (w.pp, w.replicas, w.stages, True),
        (w.dp, w.stages, w.replicas, False),
    ):
        for level in _levels(weight):
            cliques = _components(weight, level)
            if len(cliques) in (1, w.size):
                continue
            key = tuple(sorted(tuple(c) for c in cliques))
            if (as_rows, key) in seen:
                continue
            seen.add((as_rows, key))
            filled = _pack(cliques, bins, capacity)
            if filled is None:
                continue
            grid = np.array(filled, dtype=np.int64)
            columns = list(grid.T) if as_rows else list(grid)
            starts.append(arranger.arrange(columns).pipelines)
    return starts


def _greedy_clusters(weight: FloatArray, count: int, size: int) -> list[list[int]]:
    """``count`` clusters of ``size``: seed with the lowest free index, add the nearest."""
    free = list(range(weight.shape[0]))
    clusters: list[list[int]] = []
    for _ in range(count):
        cluster = [free.pop(0)]
        while len(cluster) < size:
            pull = weight[np.ix_(free, cluster)].sum(axis=1)
            cluster.append(free.pop(int(np.argmin(pull))))
        clusters.append(cluster)
    return clusters


def groups_first(w: Weights, arranger: Arranger) -> IntArray:
    groups = _greedy_clusters(w.dp, w.stages, w.replicas)
    return arranger.arrange(groups).pipelines


def pipelines_first(w: Weights, arranger: Arranger) -> IntArray:
    lanes = _greedy_clusters(w.pp, w.replicas, w.stages)
    plan = np.empty((w.replicas, w.stages), dtype=np.int64)
    for k, lane in enumerate(lanes):
        _, order = open_path(w.pp[np.ix_(lane, lane)])
        plan[k] = np.array(lane)[order]
    return arranger.arrange(list(plan.T)).pipelines


def descent_search(
    w: Weights,
    arranger: Arranger,
    seed: int,
    kicks: int = KICKS,
    kick_swaps: int = KICK_SWAPS,
    random_starts: int = RANDOM_STARTS,
) -> IntArray:
    """Our search: descent from every start, then kicks from the best; the cheapest plan."""
    rng = np.random.default_rng(seed)
    # The random starts are the random sampler's first plans for this seed, so the
    # search is never worse than those.
    starts = list(random_plans(w, rng, random_starts)) if random_starts else []
    starts += [groups_first(w, arranger), pipelines_first(w, arranger)]
    starts += packed_starts(w, arranger)
    best: IntArray | None = None
    best_total = np.inf
    for start in starts:
        plan = descend(w, arranger, start)
        total = _state(w, plan).total
        if best is None or total < best_total - _TOL * max(1.0, best_total):
            best, best_total = plan, total
    assert best is not None
    if w.size < 2:
        return best  # nothing to swap
    for _ in range(kicks):
        kicked = best
        for _ in range(kick_swaps):
            u, v = (int(x) for x in rng.choice(w.size, size=2, replace=False))
            kicked = _swap(kicked, u, v)
        trial = descend(w, arranger, kicked)
        trial_total = _state(w, trial).total
        if trial_total < best_total - _TOL * max(1.0, best_total):
            best, best_total = trial, trial_total
    return best
