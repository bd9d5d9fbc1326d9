"""Relative distances per group (PROTOCOL.md §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.learning.distance import group_distances, group_of, segment_distance


def _state(param: list[float], avg: list[float], step: float = 0.0) -> dict[str, np.ndarray]:
    return {
        "param/w": np.array(param, np.float32),
        "opt/w/exp_avg": np.array(avg, np.float32),
        "step": np.array(step, np.float32),
    }


CASES = [
    # start, claimed, replayed, metric, expected {group: distance}
    (
        ([0, 0], [0, 0]),
        ([3, 4], [1, 0]),
        ([3, 4], [1, 0]),
        "l2",
        {"param": 0.0, "opt/exp_avg": 0.0},
    ),
    (
        ([0, 0], [0, 0]),
        ([3, 4], [1, 0]),
        ([3, 5], [1, 0]),
        "l2",
        {"param": 0.2, "opt/exp_avg": 0.0},
    ),
    (
        ([1, 1], [0, 0]),
        ([1, 1], [2, 0]),
        ([4, 5], [2, 0]),
        "l2",
        {"param": 5e12, "opt/exp_avg": 0.0},
    ),
    (
        ([0, 0], [0, 0]),
        ([3, 4], [2, 0]),
        ([3, 4], [2, 1]),
        "linf",
        {"param": 0.0, "opt/exp_avg": 0.5},
    ),
    (
        ([0, 0], [0, 0]),
        ([3, -4], [2, 0]),
        ([2, -2], [2, 0]),
        "linf",
        {"param": 0.5, "opt/exp_avg": 0.0},
    ),
]


@pytest.mark.parametrize(("start", "claimed", "replayed", "metric", "expected"), CASES)
def test_group_distances(
    start: tuple[list[float], list[float]],
    claimed: tuple[list[float], list[float]],
    replayed: tuple[list[float], list[float]],
    metric: str,
    expected: dict[str, float],
) -> None:
    got = group_distances(
        _state(*start),
        _state(*claimed),
        _state(*replayed),
        metric,
        1e-12,  # type: ignore[arg-type]
    )
    assert got == pytest.approx(expected)
    assert segment_distance(got) == pytest.approx(max(expected.values()))


def test_non_finite_values_give_infinity() -> None:
    bad = _state([math.nan, 0], [0, 0])
    got = group_distances(_state([0, 0], [0, 0]), _state([1, 1], [0, 0]), bad, "l2", 1e-12)
    assert got["param"] == math.inf
    inf = _state([math.inf, 0], [0, 0])
    got = group_distances(_state([0, 0], [0, 0]), _state([1, 1], [0, 0]), inf, "linf", 1e-12)
    assert got["param"] == math.inf


def test_a_replay_equal_to_a_diverged_claim_has_distance_zero() -> None:
    diverged = _state([math.nan, math.inf], [math.nan, 1])
    got = group_distances(
        _state([0, 0], [0, 0]), diverged, _state([math.nan, math.inf], [math.nan, 1]), "l2", 1e-12
    )
    assert got == {"param": 0.0, "opt/exp_avg": 0.0}
    other = _state([math.nan, 2], [math.nan, 1])
    assert (
        group_distances(_state([0, 0], [0, 0]), diverged, other, "l2", 1e-12)["param"] == math.inf
    )


@pytest.mark.parametrize(
    ("name", "group"),
    [("param/a.b", "param"), ("opt/a.b/exp_avg_sq", "opt/exp_avg_sq"), ("step", None)],
)
def test_groups(name: str, group: str | None) -> None:
    assert group_of(name) == group
