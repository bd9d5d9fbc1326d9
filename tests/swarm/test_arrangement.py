"""Bottleneck matchings, open paths and whole arrangements against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.swarm.arrangement import Arranger, bottleneck, matching, open_path
from agents.swarm.cost import plan_cost

from .conftest import random_weights

matrices = st.integers(1, 6).flatmap(
    lambda n: st.lists(st.lists(st.integers(0, 9), min_size=n, max_size=n), min_size=n, max_size=n)
)


def _brute_bottleneck(c: np.ndarray) -> float:
    n = len(c)
    return float(min(max(c[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n))))


@settings(max_examples=300, deadline=None)
@given(matrices)
def test_bottleneck_matches_brute_force(rows: list[list[int]]) -> None:
    c = np.array(rows, dtype=np.float64)
    value = bottleneck(c)
    assert value == _brute_bottleneck(c)
    m = matching(c, value)
    assert sorted(m.tolist()) == list(range(len(c)))
    assert max(c[i, m[i]] for i in range(len(c))) == value
    # Among the bottleneck matchings, the least total.
    best_sum = min(
        sum(c[i, p[i]] for i in range(len(c)))
        for p in itertools.permutations(range(len(c)))
        if max(c[i, p[i]] for i in range(len(c))) <= value
    )
    assert sum(c[i, m[i]] for i in range(len(c))) == best_sum


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 7).flatmap(
        lambda n: st.lists(st.integers(1, 50), min_size=n * n, max_size=n * n)
    )
)
def test_open_path_matches_brute_force(values: list[int]) -> None:
    n = round(len(values) ** 0.5)
    d = np.array(values, dtype=np.float64).reshape(n, n)
    d = d + d.T
    np.fill_diagonal(d, 0.0)
    length, order = open_path(d)
    assert sorted(order) == list(range(n))
    assert length == sum(d[order[i], order[i + 1]] for i in range(n - 1))
    brute = min(
        sum(d[p[i], p[i + 1]] for i in range(n - 1)) for p in itertools.permutations(range(n))
    )
    assert length == pytest.approx(brute, rel=1e-12)


def test_long_paths_use_the_heuristic_and_stay_valid() -> None:
    rng = np.random.default_rng(3)
    pts = rng.random((17, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    length, order = open_path(d)
    assert sorted(order) == list(range(17))
    assert length == pytest.approx(sum(d[order[i], order[i + 1]] for i in range(16)))
    # Better than visiting in index order (a sanity floor for the heuristic).
    assert length < sum(d[i, i + 1] for i in range(16))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(2, 2), (3, 2), (2, 3), (3, 3)]))
def test_arrangement_is_the_best_plan_for_its_groups(seed: int, shape: tuple[int, int]) -> None:
    stages, replicas = shape
    w = random_weights(seed, stages, replicas, symmetric=bool(seed % 2))
    groups = np.random.default_rng(seed).permutation(w.size).reshape(stages, replicas)
    arranged = Arranger(w).arrange(list(groups))
    cost = plan_cost(w, arranged.pipelines)
    assert cost.total == pytest.approx(arranged.cost.total, rel=1e-12)
    assert sorted(map(sorted, arranged.pipelines.T.tolist())) == sorted(
        map(sorted, groups.tolist())
    )
    # Every plan with these groups: each stage order, each matching at each boundary.
    best = np.inf
    for order in itertools.permutations(range(stages)):
        for perms in itertools.product(itertools.permutations(range(replicas)), repeat=stages):
            plan = np.stack([groups[order[j]][list(perms[j])] for j in range(stages)], axis=1)
            best = min(best, plan_cost(w, plan).total)
    assert arranged.cost.total == pytest.approx(best, rel=1e-12)
