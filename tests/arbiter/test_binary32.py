"""The on-chain binary32 library against the exact kernels' CPU path, bit for bit, in bulk.

Operands: every pair of edge values, then random bit patterns, ordinary values and each op's
edge classes (``agents.arbiter.vectors``); ``make test`` evaluates 10^5 operations per op
through ``eth_call`` on the evaluator contract, ``make test-all`` about 10^7 in all. Berkeley
SoftFloat (the reference implementation TestFloat checks against, from PyPI as
``softfloatpy``) answers the same operations as a third party where it has them.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.arbiter.batch import ELEMENTWISE, reference
from agents.arbiter.vectors import vectors
from agents.chain.evaluator import Binary32Evaluator
from tests.arbiter.softfloat import SOFTFLOAT_OPS, softfloat

FAST_OPS_PER_OP = 100_000
# make test-all: 10^7 operations in all, most of them on the basic operations.
SLOW_OPS = {name: 680_000 for name in ELEMENTWISE} | {"exp": 400_000, "log": 400_000}


def assert_same_bits(name: str, operands: np.ndarray, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    bad = np.flatnonzero(got != want)
    if bad.size:
        shown = [
            f"{' '.join(f'{v:08x}' for v in operands[i])} -> {got[i]:08x}, expected {want[i]:08x}"
            for i in bad[:8]
        ]
        pytest.fail(f"{name}: {bad.size} of {got.size} differ, e.g.\n" + "\n".join(shown))


def check(evaluator: Binary32Evaluator, name: str, count: int, seed: int) -> None:
    spec = ELEMENTWISE[name]
    operands = vectors(name, count, seed)
    assert operands.shape == (count, spec.arity)
    got = evaluator.evaluate(spec, operands)
    assert_same_bits(name, operands, got, reference(spec, operands))
    if name in SOFTFLOAT_OPS:
        assert_same_bits(f"{name} (SoftFloat)", operands, got, softfloat(name, operands))


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_every_op_matches_the_cpu_path(evaluator: Binary32Evaluator, name: str) -> None:
    check(evaluator, name, FAST_OPS_PER_OP, seed=int(ELEMENTWISE[name].op))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_every_op_matches_the_cpu_path_in_bulk(evaluator: Binary32Evaluator, name: str) -> None:
    total = SLOW_OPS[name]
    chunk = 160_000
    for part, start in enumerate(range(0, total, chunk)):
        check(
            evaluator, name, min(chunk, total - start), seed=1000 * int(ELEMENTWISE[name].op) + part
        )


def test_the_slow_suite_runs_ten_million_operations() -> None:
    assert sum(SLOW_OPS.values()) >= 10_000_000
