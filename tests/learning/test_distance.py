"""Relative distances per group (PROTOCOL.md §3, docs/proof.md "Distances"): one definition.

A reference written from the docs in plain numpy float32 scalar arithmetic is compared
bit for bit, on random, huge, tiny, subnormal, NaN and infinite inputs, with the three
ways the code computes a distance: untraced (``group_distances``), traced on the CPU
path, and traced on the eager path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import cast

import numpy as np
import pytest

from agents.exact.cpu import CpuKernels
from agents.exact.eager import EagerKernels
from agents.exact.kernels import Kernels
from agents.exact.ops import ExactOps, Tracer
from agents.learning.distance import (
    Metric,
    group_distances,
    group_of,
    norm_of_difference,
    segment_distance,
    traced_distances,
)

F32 = np.float32
INF = math.inf
NAN = math.nan
State = dict[str, np.ndarray]


# -- the reference: docs/proof.md, "Distances", step by step ------------------------------


def _ieee_max(a: F32, b: F32) -> F32:
    if np.isnan(a) or np.isnan(b):
        return F32(np.nan)
    if a == b == 0:
        return F32(0.0) if (not np.signbit(a) or not np.signbit(b)) else F32(-0.0)
    return a if a > b else b


def _norm(a: list[np.ndarray], b: list[np.ndarray], metric: str) -> F32:
    total: F32 | None = None
    for x, y in zip(a, b, strict=True):
        if metric == "l2":
            part = F32(0.0)
            for u, v in zip(x.ravel(), y.ravel(), strict=True):
                d = F32(u - v)
                part = F32(part + F32(d * d))
            total = part if total is None else F32(total + part)
        else:
            flat = [F32(abs(F32(u - v))) for u, v in zip(x.ravel(), y.ravel(), strict=True)]
            part = flat[0]
            for value in flat[1:]:
                part = _ieee_max(part, value)
            total = part if total is None else _ieee_max(total, part)
    assert total is not None
    return F32(np.sqrt(total)) if metric == "l2" else total


def _finite(values: list[np.ndarray]) -> bool:
    return all(bool(np.isfinite(x).all()) for x in values)


def reference_group(
    start: list[np.ndarray],
    claimed: list[np.ndarray],
    replayed: list[np.ndarray],
    metric: str,
    epsilon: float,
) -> F32:
    replay_finite, claim_finite = _finite(replayed), _finite(claimed)
    if not replay_finite and not claim_finite:
        return F32(0.0)
    if replay_finite != claim_finite:
        return F32(INF)
    error = _norm(replayed, claimed, metric)
    update = _norm(claimed, start, metric)
    if not (np.isfinite(error) and np.isfinite(update)):
        return F32(INF)
    return F32(error / _ieee_max(update, F32(epsilon)))


def reference(
    start: State, claimed: State, replayed: State, metric: str, eps: float
) -> dict[str, np.float32]:
    groups: dict[str, list[str]] = {}
    for name in sorted(claimed, key=lambda n: n.encode()):  # layout order: UTF-8 bytes
        group = group_of(name)
        if group is not None:
            groups.setdefault(group, []).append(name)
    with np.errstate(all="ignore"):
        return {
            group: reference_group(
                [start[n] for n in names],
                [claimed[n] for n in names],
                [replayed[n] for n in names],
                metric,
                eps,
            )
            for group, names in sorted(groups.items())
        }


# -- the three evaluators ------------------------------------------------------------------


def _traced(kernels: Kernels) -> Callable[..., dict[str, float]]:
    def run(
        start: State, claimed: State, replayed: State, metric: str, eps: float
    ) -> dict[str, float]:
        E = ExactOps(kernels, Tracer(kernels))
        first, second, third = (
            {n: kernels.from_numpy(v) for n, v in s.items()} for s in (start, claimed, replayed)
        )
        groups, segment = traced_distances(E, first, second, third, cast(Metric, metric), eps)
        assert segment == segment_distance(groups)
        return groups

    return run


EVALUATORS: dict[str, Callable[..., dict[str, float]]] = {
    "untraced": group_distances,
    "traced cpu": _traced(CpuKernels()),
    "traced eager": _traced(EagerKernels("cpu")),
}


def _bits(values: Mapping[str, float | np.float32]) -> dict[str, int]:
    return {k: int(np.float32(v).view(np.uint32)) for k, v in values.items()}


def _check(
    start: State, claimed: State, replayed: State, metric: str, eps: float
) -> dict[str, float]:
    want = _bits(reference(start, claimed, replayed, metric, eps))
    for name, evaluate in EVALUATORS.items():
        got = _bits(evaluate(start, claimed, replayed, metric, eps))
        assert got == want, f"{name}: {got} != {want}"
    return {k: float(np.uint32(v).view(np.float32)) for k, v in want.items()}


def _state(param: list[float], avg: list[float], step: float = 0.0) -> State:
    return {
        "param/w": np.array(param, F32),
        "opt/w/exp_avg": np.array(avg, F32),
        "step": np.array([step], F32),
    }


Z = ([0, 0], [0, 0])


def _want(param: float, avg: float = 0.0) -> dict[str, float]:
    return {"param": param, "opt/exp_avg": avg}


CASES = [
    # start, claimed, replayed, metric, expected {group: distance}
    (Z, ([3, 4], [1, 0]), ([3, 4], [1, 0]), "l2", _want(0.0)),
    (Z, ([3, 4], [1, 0]), ([3, 5], [1, 0]), "l2", _want(0.2)),
    (([1, 1], [0, 0]), ([1, 1], [2, 0]), ([4, 5], [2, 0]), "l2", _want(5e12)),
    (Z, ([3, 4], [2, 0]), ([3, 4], [2, 1]), "linf", _want(0.0, 0.5)),
    (Z, ([3, -4], [2, 0]), ([2, -2], [2, 0]), "linf", _want(0.5)),
    # Non-finite values (docs/proof.md): both groups diverged -> 0; one -> +inf.
    (Z, ([NAN, 1], [1, 0]), ([NAN, 1], [1, 0]), "l2", _want(0.0)),
    (Z, ([NAN, 1], [1, 0]), ([INF, 7], [1, 0]), "l2", _want(0.0)),
    (Z, ([1, 1], [1, 0]), ([NAN, 1], [1, 0]), "l2", _want(INF)),
    (Z, ([-INF, 1], [1, 0]), ([1, 1], [1, 0]), "linf", _want(INF)),
    # Finite states whose norm overflows: +inf.
    (Z, ([3e38, 0], [1, 0]), ([-3e38, 0], [1, 0]), "l2", _want(INF)),
    # A non-finite start with finite ends: the update is not finite -> +inf.
    (([NAN, 0], [0, 0]), ([1, 1], [1, 0]), ([1, 1], [1, 0]), "l2", _want(INF)),
]


@pytest.mark.parametrize(("start", "claimed", "replayed", "metric", "expected"), CASES)
def test_group_distances(
    start: tuple[list[float], list[float]],
    claimed: tuple[list[float], list[float]],
    replayed: tuple[list[float], list[float]],
    metric: str,
    expected: dict[str, float],
) -> None:
    got = _check(_state(*start), _state(*claimed), _state(*replayed), metric, 1e-12)
    assert got == pytest.approx(expected)
    assert segment_distance(got) == pytest.approx(max(expected.values()))


def _random_tensor(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    n = int(np.prod(shape))
    if kind == "ordinary":
        values = rng.standard_normal(n).astype(F32)
    elif kind == "huge":
        values = (rng.standard_normal(n) * 1e37).astype(F32)
    elif kind == "tiny":
        values = (rng.standard_normal(n) * 1e-30).astype(F32)
    elif kind == "subnormal":
        values = rng.integers(-(2**23) + 1, 2**23, n).astype(np.int64)
        values = (np.abs(values) | (np.sign(values) < 0) * (1 << 31)).astype(np.uint32).view(F32)
    else:  # "bits": any pattern, NaNs and infinities included
        values = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(F32)
    return values.reshape(shape)


KINDS = ("ordinary", "huge", "tiny", "subnormal", "bits")


@pytest.mark.parametrize("metric", ["l2", "linf"])
def test_every_evaluator_gives_the_reference_bits_in_bulk(metric: str) -> None:
    rng = np.random.default_rng(7 if metric == "l2" else 8)
    shapes = {"param/a": (3, 4), "param/b": (5,), "opt/a/exp_avg": (3, 4), "opt/b/exp_avg": (5,)}
    for trial in range(60):
        states = []
        for _ in range(3):
            states.append(
                {
                    n: _random_tensor(rng, s, KINDS[rng.integers(len(KINDS))])
                    for n, s in shapes.items()
                }
            )
        start, claimed, replayed = states
        if trial % 3 == 0:  # near replays, where the division matters
            with np.errstate(all="ignore"):
                replayed = {n: (v * F32(1.0001)).astype(F32) for n, v in claimed.items()}
        if trial % 5 == 0:  # the replay equal to the claim
            replayed = {n: v.copy() for n, v in claimed.items()}
        eps = float(rng.choice([1e-12, 1e-3, 1.0]))
        _check(start, claimed, replayed, metric, eps)


def test_special_values_in_every_position() -> None:
    specials = [0.0, -0.0, 1.0, -1.0, 1e-45, 3.4e38, INF, -INF, NAN]
    rng = np.random.default_rng(3)
    for _ in range(80):

        def pick() -> list[float]:
            return [specials[rng.integers(len(specials))] for _ in range(2)]

        start, claimed, replayed = (
            _state(pick(), pick()),
            _state(pick(), pick()),
            _state(pick(), pick()),
        )
        for metric in ("l2", "linf"):
            got = _check(start, claimed, replayed, metric, 1e-12)
            # Never NaN, never negative: a distance the chain can compare.
            assert all(v >= 0 for v in got.values())


def test_update_norms_rank_segments_in_binary32() -> None:
    a = {"param/w": np.array([3, 4], F32), "param/v": np.array([12], F32)}
    b = {"param/w": np.zeros(2, F32), "param/v": np.zeros(1, F32)}
    assert norm_of_difference(a, b, ["param/w", "param/v"], "l2") == 13.0
    assert norm_of_difference(a, b, ["param/w", "param/v"], "linf") == 12.0
    a["param/w"][0] = NAN
    assert math.isnan(norm_of_difference(a, b, ["param/w", "param/v"], "l2"))


@pytest.mark.parametrize(
    ("name", "group"),
    [("param/a.b", "param"), ("opt/a.b/exp_avg_sq", "opt/exp_avg_sq"), ("step", None)],
)
def test_groups(name: str, group: str | None) -> None:
    assert group_of(name) == group
