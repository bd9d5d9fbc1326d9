"""The CPU path's chain kernel (``CpuKernels.elementwise_chain``) against the ops one by one:
random plans over registers of every kind, with reductions, immediates of every edge value
in every slot, one to six inputs, edge values and NaN payloads in the inputs; every step's
output is compared bit for bit, laid out as the kernel lays it out (full chains: one row per
step; others: the steps' outputs one after another, each of its kind's size)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from agents.exact.composites import _SOFTMAX
from agents.exact.cpu import CHAIN_TILE, CpuKernels, _chain_rows, _chain_tiles
from agents.exact.ops import ChainPlan, ExactOps
from agents.exact.trace import Op
from tests.exact.test_tracer import EDGE, F32, NAN_PAYLOAD, _one_by_one, _random_plan, _values

_KINDS = "FRC"


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=F32).reshape(-1).view(np.uint32)


def _assert_rows_chain(
    plan: ChainPlan, imms: np.ndarray, inputs: list[np.ndarray], rows: int, cols: int
) -> None:
    """The chain kernel over a ``rows`` × ``cols`` shape gives each step's values (laid one
    after another, each of its register's kind) bit for bit as the ops one by one."""
    kernels = CpuKernels()
    count = plan.inputs
    expected = _one_by_one(ExactOps(kernels), plan, inputs, imms)[count:]
    sizes = {0: rows * cols, 1: rows, 2: cols}
    steps = [sizes[kind] for kind in plan.kinds[count:]]
    flat = kernels.elementwise_chain(plan.code, imms, inputs, plan.kind_codes, steps, rows, cols)
    assert flat.shape == (sum(steps),)
    start = 0
    for k, (values, size) in enumerate(zip(expected, steps, strict=True)):
        assert np.array_equal(_bits(flat[start : start + size]), _bits(values)), k
        start += size


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
    if plan.full:
        expected = _one_by_one(E, plan, inputs, imms)[count:]
        got = kernels.elementwise_chain(plan.code, imms, inputs)
        assert got.shape == (len(plan.ops), rows * cols)
        for k, values in enumerate(expected):
            assert np.array_equal(_bits(got[k]), _bits(values)), k
        return
    _assert_rows_chain(plan, imms, inputs, rows, cols)


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


@pytest.mark.parametrize(
    ("rows", "cols"), [(16, 1), (16, 32), (17, 5), (35, 48), (64, 3), (50, 28)]
)
def test_a_chains_row_maxima_over_many_rows_give_the_ops_one_by_one(rows: int, cols: int) -> None:
    # AMAX reduces rows side by side in blocks (a tail of fewer rows on its own): every row's
    # maximum is the op's, over rows whose values are edge values (±0, ±inf, NaN payloads,
    # subnormals) in every place, rows of one value, of zeros of both signs, of -inf.
    rng = np.random.default_rng([rows, cols])
    x = _values(rng, (rows, cols))
    x[0] = EDGE[int(rng.integers(len(EDGE)))]
    x[1] = -np.inf
    x[2 % rows, ::2] = -0.0
    x[2 % rows, 1::2] = 0.0
    x[3 % rows, -1] = NAN_PAYLOAD[0]
    plan = ChainPlan(2, "FR")
    top = plan(Op.AMAX, 0)
    shifted = plan(Op.SUB, 0, top)
    plan(Op.AMAX, plan(Op.NEG, shifted))
    plan(Op.AMAX, plan(Op.ADD, shifted, 1))
    _assert_rows_chain(plan, np.zeros(0, dtype=F32), [x, _values(rng, (rows, 1))], rows, cols)


def test_the_softmax_chain_over_attention_scores_gives_the_ops_one_by_one() -> None:
    # The traced softmax over causal attention scores ([B, H, T, T], -inf above the
    # diagonal): rows of 2048 go through the row blocks of its AMAX and SUM steps.
    rng = np.random.default_rng(11)
    kernels = CpuKernels()
    scores = kernels.causal_fill(_values(rng, (4, 4, 32, 32)), F32(-np.inf))
    _assert_rows_chain(_SOFTMAX, np.zeros(0, dtype=F32), [scores], scores.size // 32, 32)


def _untiled(plan: ChainPlan, imms: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """The chain as one pass per step over the whole output: ``_chain_rows`` with every
    register full, one row of ``size`` values (the layout of ``elementwise_chain``)."""
    flat = tuple(np.ascontiguousarray(v, dtype=F32).reshape(-1) for v in inputs)
    size = flat[0].size
    out = np.empty((len(plan.ops), size), dtype=F32)
    kinds = np.zeros(plan.inputs + len(plan.ops), dtype=np.int64)
    cell = np.array([np.nan], dtype=F32)
    _chain_rows(plan.code, imms, flat, kinds, out.reshape(-1), 1, size, cell)
    return out


@pytest.mark.parametrize(
    "size", [1, 7, CHAIN_TILE - 1, CHAIN_TILE, CHAIN_TILE + 1, 2 * CHAIN_TILE + 3]
)
def test_a_full_chain_tile_by_tile_gives_the_pass_per_step(size: int) -> None:
    # ``elementwise_chain`` runs a full chain tile by tile: at and across the tiles' bounds
    # (a last tile of one value, of one fewer than a tile), every step's values are those
    # of a pass per step, over random plans of every op with immediates of every edge value.
    rng = np.random.default_rng([size, 3])
    kernels = CpuKernels()
    for count in (1, 3, 5):
        plan = _random_plan(rng, count, 14, 4)
        inputs = [_values(rng, (size,)) for _ in range(count)]
        imms = np.asarray(rng.choice(np.concatenate([EDGE, NAN_PAYLOAD]), 4), dtype=F32)
        got = kernels.elementwise_chain(plan.code, imms, inputs)
        assert np.array_equal(_bits(got), _bits(_untiled(plan, imms, inputs)))


def test_chains_over_groups_across_tiles_give_each_groups_pass_per_step() -> None:
    # Groups of sizes that end inside a tile, at its end, or span several: each group's
    # values are its own chain's as a pass per step computes them.
    rng = np.random.default_rng(19)
    kernels = CpuKernels()
    plan = _random_plan(rng, 3, 12, 4)
    imms = np.asarray(rng.choice(np.concatenate([EDGE, NAN_PAYLOAD]), 4), dtype=F32)
    sizes = [(CHAIN_TILE + 5,), (1,), (3, CHAIN_TILE), (), (CHAIN_TILE - 2,)]
    groups = [[_values(rng, shape) for _ in range(3)] for shape in sizes]
    block = kernels.elementwise_chains(plan.code, imms, groups)
    start = 0
    for group in groups:
        size = int(np.prod(np.shape(group[0])))
        alone = _untiled(plan, imms, group)
        assert np.array_equal(_bits(block[:, start : start + size]), _bits(alone))
        start += size
    assert start == block.shape[1]


def test_chains_over_groups_read_the_groups_inputs_where_they_are() -> None:
    # The groups' inputs are not laid end to end first: the call allocates its output block
    # (and a few small objects), not another copy of the inputs.
    rng = np.random.default_rng(5)
    kernels = CpuKernels()
    plan = _random_plan(rng, 3, 2, 2)
    imms = np.ones(2, dtype=F32)
    groups = [[_values(rng, (256, 256)) for _ in range(3)] for _ in range(4)]
    kernels.elementwise_chains(plan.code, imms, groups)  # compiled before measuring
    tracemalloc.start()
    try:
        block = kernels.elementwise_chains(plan.code, imms, groups)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    inputs = sum(v.nbytes for group in groups for v in group)
    assert peak < block.nbytes + inputs // 4, (peak, block.nbytes)


def test_chains_over_any_number_of_groups_run_one_compiled_kernel() -> None:
    # The groups' inputs go to the kernel by address: an optimizer update over a model's
    # hundred parameters is dispatched as one over one (a tuple of arrays would be typed array
    # by array on every call, and compiled once per count). Each group's values are still
    # its own chain's.
    rng = np.random.default_rng(29)
    kernels = CpuKernels()
    plan = _random_plan(rng, 2, 5, 2)
    imms = np.asarray(rng.choice(EDGE, 2), dtype=F32)
    groups = [[_values(rng, (int(rng.integers(1, 40)),)) for _ in range(2)] for _ in range(120)]
    kernels.elementwise_chains(plan.code, imms, groups[:1])
    compiled = len(_chain_tiles.signatures)
    for count in (2, 7, 120):
        block = kernels.elementwise_chains(plan.code, imms, groups[:count])
        alone = [_untiled(plan, imms, group) for group in groups[:count]]
        assert np.array_equal(_bits(block), _bits(np.concatenate(alone, axis=1)))
    kernels.elementwise_chain(plan.code, imms, groups[0])
    assert len(_chain_tiles.signatures) == compiled
