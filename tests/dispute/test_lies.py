"""The liars the game tests and the benchmark draw: every drawn lie changes the liar's trace.

A lie that leaves the trace as it was has nothing to dispute (the game refuses equal trace
roots), so the draws must never produce one: an attribute lie changes the value's bits
whatever the value (``2x + 1`` left ``inf`` and ``-1`` as they were), an input lie changes
the tensor even where every value absorbs ``+ 1``, and a term lie is drawn only where the
flipped partial result moves the end of the fold (a later maximum, or a rounding, can
absorb it).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.dispute.replay import Fault, _negated, _term_fault, faulty_partials
from agents.exact.trace import Op
from tests.dispute import segments

SPECIAL = [np.inf, -np.inf, -1.0, 0.0, -0.0, np.nan, 1.5, 3.4e38, -1e-45]


@pytest.mark.parametrize("value", SPECIAL, ids=[repr(v) for v in SPECIAL])
def test_a_negated_attribute_has_other_bits(value: float) -> None:
    before = np.float32(value)
    after = _negated(before)
    assert after.view(np.uint32) != before.view(np.uint32)
    assert _negated(after).view(np.uint32) == before.view(np.uint32)


class _Partials:
    """A provider stand-in that knows one record and its partial results."""

    def __init__(self, op: Op, partials: list[float]) -> None:
        self.op = op
        self.values = np.array(partials, dtype=np.float32)

    def partials(self, step: int, op: int, element: int) -> np.ndarray:
        return self.values.copy()

    def record(self, step: int, op: int) -> Any:
        return type("R", (), {"op": self.op})()


CASES = [
    # A running maximum that a later, larger term takes over: a low bit of an early partial
    # result is absorbed, a high exponent bit is not.
    (Op.AMAX, [-np.inf, 1.0, 2.0, 1000.0, 1000.0]),
    # A sum whose later terms are far larger: a low bit of an early partial is rounded away.
    (Op.SUM, [0.0, 1e-3, 1e8, 2e8, 3e8]),
    (Op.SUM, [0.0, 1.0, 2.0, 3.0, 4.0]),
]


@pytest.mark.parametrize(("op", "partials"), CASES, ids=["amax", "sum-absorbs", "sum"])
def test_a_drawn_term_lie_moves_the_end_of_the_fold(op: Op, partials: list[float]) -> None:
    provider = _Partials(op, partials)
    honest = provider.values
    for seed in range(50):
        fault = _term_fault(provider, 0, 0, 1, len(partials) - 1, random.Random(seed))  # type: ignore[arg-type]
        assert fault is not None
        lying = faulty_partials(honest, op, fault.term, fault.mask)
        assert lying[-1:].view(np.uint32)[0] != honest[-1:].view(np.uint32)[0], fault


def test_an_absorbed_low_bit_leaves_the_fold_as_it_was() -> None:
    """The case the masks beyond the drawn one exist for: a low bit flipped in an early
    partial result of a running maximum leaves its end as it was."""
    honest = np.array([-np.inf, 1.0, 2.0, 1000.0, 1000.0], dtype=np.float32)
    assert faulty_partials(honest, Op.AMAX, 1, 1 << 3)[-1] == honest[-1]


def test_an_attribute_lie_on_an_infinite_attribute_changes_the_trace(tmp_path: Path) -> None:
    """The distance computation's SELECT has the attribute ``inf``: a lie there once left the
    liar's trace as it was."""
    honest = segments.provider("cnn", 0, tmp_path)
    distance = honest.step_count
    records = honest.records(distance)
    op = next(
        i
        for i, r in enumerate(records)
        if r.op == Op.SELECT and any(np.isinf(a) for a in r.attributes if isinstance(a, np.float32))
    )
    lying = segments.provider("cnn", 0, tmp_path, Fault("attribute", distance, op))
    assert lying.trace_root != honest.trace_root
    assert lying.records(distance)[op] != records[op]
