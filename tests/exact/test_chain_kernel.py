"""The CPU path's chain kernel (``CpuKernels.elementwise_chain``) against the ops one by one:
random plans over registers of every kind, with reductions, immediates of every edge value
in every slot, one to six inputs, edge values and NaN payloads in the inputs; every step's
output is compared bit for bit, laid out as the kernel lays it out (full chains: one row per
step; others: the steps' outputs one after another, each of its kind's size)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.exact.cpu import CpuKernels
from agents.exact.ops import ExactOps
from tests.exact.test_tracer import EDGE, F32, NAN_PAYLOAD, _one_by_one, _random_plan, _values

_KINDS = "FRC"


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=F32).reshape(-1).view(np.uint32)


@pytest.mark.parametrize("seed", range(24))
def test_the_chain_kernel_gives_the_ops_one_by_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kernels = CpuKernels()
    E = ExactOps(kernels)
    count = 1 + seed % 6
    rows, cols = int(rng.integers(1, 9)), int(rng.integers(1, 40))
    full = seed % 2 == 0
    kinds = "" if full else "F" + "".join(_KINDS[int(rng.integers(3))] for _ in range(count - 1))
    plan = _random_plan(rng, count, int(rng.integers(1, 16)), 4, kinds)
    shapes = {0: (rows, cols), 1: (rows, 1), 2: (cols,)}
    inputs = [_values(rng, shapes[kind]) for kind in plan.kinds[:count]]
    imms = np.asarray(rng.choice(np.concatenate([EDGE, NAN_PAYLOAD]), 4), dtype=F32)
    expected = _one_by_one(E, plan, inputs, imms)[count:]
    if plan.full:
        got = kernels.elementwise_chain(plan.code, imms, inputs)
        assert got.shape == (len(plan.ops), rows * cols)
        for k, values in enumerate(expected):
            assert np.array_equal(_bits(got[k]), _bits(values)), k
        return
    sizes = {0: rows * cols, 1: rows, 2: cols}
    steps = [sizes[kind] for kind in plan.kinds[count:]]
    flat = kernels.elementwise_chain(plan.code, imms, inputs, plan.kind_codes, steps, rows, cols)
    assert flat.shape == (sum(steps),)
    start = 0
    for k, (values, size) in enumerate(zip(expected, steps, strict=True)):
        assert np.array_equal(_bits(flat[start : start + size]), _bits(values)), k
        start += size


def test_chains_of_one_shape_over_groups_give_each_groups_chain() -> None:
    # ``elementwise_chains`` runs the groups' inputs laid end to end: each group's values
    # are those of its own chain.
    rng = np.random.default_rng(7)
    kernels = CpuKernels()
    plan = _random_plan(rng, 3, 12, 4)
    imms = np.asarray(rng.choice(np.concatenate([EDGE, NAN_PAYLOAD]), 4), dtype=F32)
    groups = [[_values(rng, shape) for _ in range(3)] for shape in [(3, 4), (7,), (), (2, 5)]]
    block = kernels.elementwise_chains(plan.code, imms, groups)
    start = 0
    for group in groups:
        size = int(np.prod(np.shape(group[0])))
        alone = kernels.elementwise_chain(plan.code, imms, group)
        assert np.array_equal(_bits(block[:, start : start + size]), _bits(alone))
        start += size
