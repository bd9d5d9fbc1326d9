"""The task's sample (first, last and s random middle segments) and the detection formulas."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter

import pytest

from agents.learning.selection import (
    detection_probability,
    largest_updates,
    sample_count,
    sample_detection,
    sample_segments,
)


def _randomness(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def test_deterministic_sorted_and_in_range_with_both_ends() -> None:
    for i in range(50):
        chosen = sample_segments(_randomness(i), 20, 6)
        assert chosen == sample_segments(_randomness(i), 20, 6)
        assert chosen == sorted(set(chosen)) and len(chosen) == 8 == sample_count(20, 6)
        assert chosen[0] == 0 and chosen[-1] == 19
        assert all(0 < c < 19 for c in chosen[1:-1])


def test_the_randomness_decides_the_middle() -> None:
    drawn = {tuple(sample_segments(_randomness(i), 100, 5)) for i in range(20)}
    assert len(drawn) == 20


def test_every_middle_subset_is_about_equally_likely() -> None:
    # 2 of the 5 middle segments of S = 7: ten subsets, 5000 draws; chi-square, 9 dof.
    counts = Counter(frozenset(sample_segments(_randomness(i), 7, 2)[1:-1]) for i in range(5000))
    assert len(counts) == 10
    chi2 = sum((c - 500) ** 2 / 500 for c in counts.values())
    assert chi2 < 33.7  # p < 1e-4 under uniformity


def test_small_tasks_replay_every_segment() -> None:
    assert sample_segments(_randomness(0), 7, 5) == list(range(7))
    assert sample_segments(_randomness(0), 1, 3) == [0]
    assert sample_segments(_randomness(0), 3, 0) == [0, 2]
    with pytest.raises(ValueError):
        sample_segments(_randomness(0), 0, 1)
    with pytest.raises(ValueError):
        sample_segments(b"short", 3, 1)


def test_the_draw_is_the_documented_shuffle() -> None:
    """Written from the module docstring, independently of the implementation."""

    def words(r: bytes) -> list[int]:
        out = []
        for j in range(4):
            block = hashlib.sha256(b"veritrain/segments/2" + r + j.to_bytes(8, "big")).digest()
            out += [int.from_bytes(block[o : o + 8], "big") for o in range(0, 32, 8)]
        return out

    for i in range(30):
        r = _randomness(i)
        stream = iter(words(r))
        segments, sampled = 50, 4
        pool = list(range(1, segments - 1))
        for k in range(sampled):
            n = segments - 2 - k
            while True:
                x = next(stream)
                if x < 2**64 - 2**64 % n:
                    break
            j = k + x % n
            pool[k], pool[j] = pool[j], pool[k]
        assert sample_segments(r, segments, sampled) == sorted([0, *pool[:sampled], segments - 1])


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


@pytest.mark.parametrize(
    ("segments", "faked", "sampled"),
    [(10, [4], 3), (10, [0], 3), (10, [9], 3), (12, [2, 5, 7], 2), (5, [2], 3), (9, [], 2)],
)
def test_sample_detection_matches_the_draw(segments: int, faked: list[int], sampled: int) -> None:
    hits = sum(
        bool(set(sample_segments(_randomness(i), segments, sampled)) & set(faked))
        for i in range(4000)
    )
    assert sample_detection(segments, faked, sampled) == pytest.approx(hits / 4000, abs=0.03)


def test_example_defaults_reach_the_goal() -> None:
    # Half of 200 segments faked at random: the sample of the digits example catches it.
    assert detection_probability(198, 99, 5) >= 0.97
