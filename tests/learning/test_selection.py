"""Segment selection and the detection formula."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter

import pytest

from agents.learning.selection import (
    detection_probability,
    largest_updates,
    sample_segments,
)

SPEC_HASH = hashlib.sha256(b"spec").digest()


def _randomness(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def test_deterministic_distinct_and_in_range() -> None:
    for i in range(50):
        chosen = sample_segments(_randomness(i), SPEC_HASH, 20, 6)
        assert chosen == sample_segments(_randomness(i), SPEC_HASH, 20, 6)
        assert len(set(chosen)) == 6 and all(0 <= c < 20 for c in chosen)


def test_task_and_randomness_both_matter() -> None:
    other = hashlib.sha256(b"other spec").digest()
    a = [tuple(sample_segments(_randomness(i), SPEC_HASH, 100, 5)) for i in range(20)]
    b = [tuple(sample_segments(_randomness(i), other, 100, 5)) for i in range(20)]
    assert a != b and len(set(a)) == 20


def test_every_subset_is_about_equally_likely() -> None:
    # 2-of-5: ten subsets, 5000 draws; chi-square with 9 degrees of freedom.
    counts = Counter(
        frozenset(sample_segments(_randomness(i), SPEC_HASH, 5, 2)) for i in range(5000)
    )
    assert len(counts) == 10
    chi2 = sum((c - 500) ** 2 / 500 for c in counts.values())
    assert chi2 < 33.7  # p < 1e-4 under uniformity


def test_edge_counts() -> None:
    assert sample_segments(_randomness(0), SPEC_HASH, 7, 0) == []
    assert sorted(sample_segments(_randomness(0), SPEC_HASH, 7, 7)) == list(range(7))
    with pytest.raises(ValueError):
        sample_segments(_randomness(0), SPEC_HASH, 3, 4)
    with pytest.raises(ValueError):
        sample_segments(b"short", SPEC_HASH, 3, 1)


@pytest.mark.parametrize(
    ("norms", "exclude", "count", "expected"),
    [
        ([1.0, 5.0, 3.0, 5.0], [], 2, [1, 3]),
        ([1.0, 5.0, 3.0, 5.0], [1], 2, [3, 2]),
        ([0.0, 0.0], [], 1, [0]),
        ([2.0, 1.0], [0, 1], 1, []),
    ],
)
def test_largest_updates(
    norms: list[float], exclude: list[int], count: int, expected: list[int]
) -> None:
    assert largest_updates(norms, exclude, count) == expected


@pytest.mark.parametrize(("segments", "faked", "sampled"), [(6, 3, 2), (8, 1, 3), (7, 7, 1)])
def test_formula_matches_enumeration(segments: int, faked: int, sampled: int) -> None:
    subsets = list(itertools.combinations(range(segments), sampled))
    hit = sum(1 for s in subsets if any(i < faked for i in s))
    assert detection_probability(segments, faked, sampled) == pytest.approx(hit / len(subsets))


def test_example_defaults_reach_the_goal() -> None:
    assert detection_probability(200, 100, 5) >= 0.97
    assert detection_probability(100, 50, 5) >= 0.97
