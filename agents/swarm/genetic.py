"""The paper's search (DT-FM, Yuan et al. 2022): a genetic algorithm with cyclic local search.

The search is bi-level. Its outer level is a balanced graph partition: which
devices form each data-parallel group. Its inner level, for a given partition,
orders the groups into stages and matches devices across boundaries exactly
(bottleneck matchings, open-loop travelling salesman path:
``agents.swarm.arrangement``); that cost is each partition's fitness.

The outer level is a steady-state memetic algorithm in the style of Kim and
Moon's cyclic-partitioning GA, as the paper uses it:

* a population of random balanced partitions (``population``, 100 in the paper);
  these are the groups of the random sampler's first plans for the same seed;
* each of ``offspring`` trials (4,900 in the paper) picks two parents at random,
  relabels the second parent's groups to agree with the first's as far as
  possible, copies the first parent's group at five random devices into the
  second (five-point crossover) and restores balance by moving surplus devices of
  overfull groups into underfull ones;
* the child is improved by cyclic partitioning: chains of moves
  ``S0 → S1 → … → S0`` (one device per step, each group keeps its size), each
  step the move with the largest gain, keeping the best prefix of the chain
  closed back into ``S0``. A move's gain is how much it lowers the moved device's
  all-reduce cost (``Σ w_dp`` to its group), the graph-partition objective;
* the child's fitness is the full cost model; it replaces the worse parent if it
  is cheaper.

Random choices come from one seeded generator, so a run is deterministic.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from agents.swarm.arrangement import Arranger
from agents.swarm.cost import FloatArray, IntArray, Weights
from agents.swarm.sampling import random_plans

POPULATION = 100
OFFSPRING = 4900
CROSSOVER_POINTS = 5


def groups_of(labels: IntArray, stages: int) -> list[IntArray]:
    """The members of each group of a labelling, in increasing device order."""
    order = np.argsort(labels, kind="stable")
    return list(order.reshape(stages, -1))


def labels_of(plan: IntArray) -> IntArray:
    """The group (stage column) of each device of a plan."""
    labels = np.empty(plan.size, dtype=np.int64)
    labels[plan] = np.arange(plan.shape[1])[None, :]
    return labels


def normalize(reference: IntArray, labels: IntArray, stages: int) -> IntArray:
    """``labels`` with its groups renamed to overlap ``reference``'s groups the most."""
    overlap = np.zeros((stages, stages), dtype=np.int64)
    np.add.at(overlap, (labels, reference), 1)
    rows, cols = linear_sum_assignment(-overlap)
    rename = np.empty(stages, dtype=np.int64)
    rename[rows] = cols
    return rename[labels]


def crossover(
    rng: np.random.Generator, first: IntArray, second: IntArray, stages: int, replicas: int
) -> IntArray:
    """Five-point crossover of two labellings, then balance restored at random."""
    child = normalize(first, second, stages).copy()
    points = rng.choice(len(child), size=min(CROSSOVER_POINTS, len(child)), replace=False)
    child[points] = first[points]
    counts = np.bincount(child, minlength=stages)
    for g in np.flatnonzero(counts > replicas):
        members = np.flatnonzero(child == g)
        surplus = rng.choice(members, size=int(counts[g] - replicas), replace=False)
        for v in surplus:
            target = int(rng.choice(np.flatnonzero(counts < replicas)))
            child[v] = target
            counts[target] += 1
            counts[g] -= 1
    return child


class _Gains:
    """Move gains of a labelling, kept current as devices move.

    ``pipeline`` (the paper's heuristic): devices that are close in pipeline terms
    belong in different groups, so that they can be neighbouring stages of one
    pipeline; moving ``v`` into group ``q`` gains the mean ``w_pp`` from ``v`` to
    ``q``'s members less the least ``w_pp`` from ``v`` to a member of its own group.
    ``data``: the graph-partition gain, how much the move lowers ``v``'s all-reduce
    cost ``Σ w_dp`` to its group.
    """

    def __init__(self, w: Weights, labels: IntArray, kind: str) -> None:
        if kind not in ("pipeline", "data"):
            raise ValueError(f"unknown gain {kind!r}")
        self.w, self.kind = w, kind
        self.labels = labels.copy()
        self.matrix = w.pp if kind == "pipeline" else w.dp
        onehot = np.zeros((w.size, w.stages))
        onehot[np.arange(w.size), labels] = 1.0
        self.sums: FloatArray = self.matrix @ onehot  # sums[v, g] = Σ_{u in g} m[v, u]
        self.sizes = np.bincount(labels, minlength=w.stages).astype(np.float64)

    def copy(self) -> _Gains:
        out = object.__new__(_Gains)
        out.w, out.kind, out.matrix = self.w, self.kind, self.matrix
        out.labels, out.sums, out.sizes = self.labels.copy(), self.sums.copy(), self.sizes.copy()
        return out

    def move(self, v: int, target: int) -> None:
        source = int(self.labels[v])
        self.labels[v] = target
        self.sums[:, source] -= self.matrix[:, v]
        self.sums[:, target] += self.matrix[:, v]
        self.sizes[source] -= 1
        self.sizes[target] += 1

    def gains(self, devices: IntArray) -> FloatArray:
        """``[i, q]``: the gain of moving ``devices[i]`` into group ``q`` (own group: -inf)."""
        own = self.labels[devices]
        if self.kind == "data":
            out = self.sums[devices, own][:, None] - self.sums[devices]
        else:
            mates = self.labels[None, :] == own[:, None]
            mates[np.arange(len(devices)), devices] = False
            near = np.where(mates, self.matrix[devices], np.inf).min(axis=1)
            near = np.where(np.isfinite(near), near, 0.0)
            out = self.sums[devices] / np.maximum(self.sizes, 1.0)[None, :] - near[:, None]
        out[np.arange(len(devices)), own] = -np.inf
        return np.asarray(out, dtype=np.float64)

    def best(
        self, locked: np.ndarray, group: int | None, only: int | None = None
    ) -> tuple[int, int, float] | None:
        """The unlocked move (device, target, gain) out of ``group`` with the largest gain."""
        free = ~locked if group is None else (~locked) & (self.labels == group)
        devices = np.flatnonzero(free)
        if len(devices) == 0:
            return None
        gain = self.gains(devices)
        if only is not None:
            keep = np.full(gain.shape[1], -np.inf)
            keep[only] = 0.0
            gain = gain + keep
        i, target = divmod(int(np.argmax(gain)), gain.shape[1])
        if not np.isfinite(gain[i, target]):
            return None
        return int(devices[i]), int(target), float(gain[i, target])


def cyclic_partitioning(w: Weights, labels: IntArray, gain: str = "pipeline") -> IntArray:
    """Improve a balanced labelling by cyclic move chains (sizes kept); returns a new one."""
    s = w.stages
    state = _Gains(w, labels, gain)
    locked = np.zeros(w.size, dtype=bool)
    for _ in range(s):
        start = state.best(locked, None)
        if start is None:
            break
        s0 = int(state.labels[start[0]])
        moves: list[tuple[int, int]] = []
        gains: list[float] = []
        closes: list[tuple[float, int | None]] = []
        trial = state.copy()
        trial_locked = locked.copy()
        group = s0
        for _step in range(s):
            found = trial.best(trial_locked, group)
            if found is None:
                break
            v, target, g = found
            trial.move(v, target)
            trial_locked[v] = True
            moves.append((v, target))
            gains.append(g)
            group = target
            if group == s0:
                closes.append((0.0, None))
                break
            close = trial.best(trial_locked, group, only=s0)
            closes.append((close[2], close[0]) if close is not None else (-np.inf, None))
        if not moves:
            break
        totals = np.cumsum(gains) + np.array([c[0] for c in closes])
        best = int(np.argmax(totals))
        if totals[best] <= 1e-12:
            break
        replay = state.copy()
        for v, target in moves[: best + 1]:
            replay.move(v, target)
            locked[v] = True
        closer = closes[best][1]
        if closer is not None:
            replay.move(closer, s0)
            locked[closer] = True
        state = replay
    return state.labels


def genetic_search(
    w: Weights,
    arranger: Arranger,
    seed: int,
    population: int = POPULATION,
    offspring: int = OFFSPRING,
    gain: str = "pipeline",
) -> tuple[IntArray, int]:
    """The best partition the memetic algorithm finds, and how many partitions it scored."""
    rng = np.random.default_rng(seed)
    s, r = w.stages, w.replicas
    # The first population is the random sampler's first plans for this seed, so the
    # search is never worse than those (it keeps its best, arranged exactly).
    pool = [labels_of(plan) for plan in random_plans(w, rng, population)]
    fitness = [arranger.cost(groups_of(p, s)).total for p in pool]
    evaluations = len(pool)
    for _ in range(offspring):
        if population >= 2:
            a, b = (int(x) for x in rng.choice(population, size=2, replace=False))
        else:
            a = b = 0
        child = crossover(rng, pool[a], pool[b], s, r)
        child = cyclic_partitioning(w, child, gain)
        score = arranger.cost(groups_of(child, s)).total
        evaluations += 1
        worse = a if fitness[a] >= fitness[b] else b
        if score < fitness[worse]:
            pool[worse] = child
            fitness[worse] = score
    best = int(np.argmin(fitness))
    return pool[best], evaluations
