"""Learning-rate schedules: the documented binary32 sequence, step by step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agents.learning.schedule import LearningRate
from agents.learning.spec import parse_spec
from tests.learning.conftest import spec_dict

F = np.float32


def _rate(schedule: dict[str, Any], steps: int = 40) -> LearningRate:
    return LearningRate(parse_spec(spec_dict(schedule=schedule, steps=steps)))


def test_constant() -> None:
    rate = _rate({"kind": "constant", "lr": 0.1})
    assert {float(rate(t)) for t in range(40)} == {float(F(0.1))}


def test_step_decay_multiplies_in_binary32() -> None:
    rate = _rate({"kind": "step", "lr": 0.1, "gamma": 0.3, "every": 7})
    factor = F(1.0)
    for t in range(40):
        if t and t % 7 == 0:
            factor = F(factor * F(0.3))
        assert rate(t) == F(F(0.1) * factor)
    assert rate(6) > rate(7) > rate(14)


def test_linear_warmup_then_decay() -> None:
    rate = _rate({"kind": "linear", "lr": 0.2, "warmup": 8, "final": 0.25})
    for t in range(8):
        assert rate(t) == F(F(F(0.2) * F(t + 1)) / F(8))
    for t in range(8, 40):
        p = F(F(t - 8) / F(32))
        assert rate(t) == F(F(0.2) * F(F(1) - F(F(F(1) - F(0.25)) * p)))
    assert rate(7) == F(0.2) and rate(8) == F(0.2)
    assert abs(float(rate(39)) - 0.2 * (1 - 0.75 * 31 / 32)) < 1e-7


@pytest.mark.parametrize("t", [-1, 40])
def test_steps_outside_the_task_are_refused(t: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        _rate({"kind": "constant", "lr": 0.1})(t)


@pytest.mark.parametrize(
    "schedule",
    [
        {"kind": "constant", "lr": 0.1},
        {"kind": "step", "lr": 0.1, "gamma": 0.3, "every": 7},
        {"kind": "linear", "lr": 0.2, "warmup": 8, "final": 0.25},
        {"kind": "linear", "lr": 0.05, "warmup": 0, "final": 0.1},
        {"kind": "linear", "lr": 0.05, "warmup": 40, "final": 0.1},
    ],
)
def test_prepared_rates_are_the_step_by_step_ones(schedule: dict[str, Any]) -> None:
    """Rates prepared a range at once (numpy's binary32 arrays) are bit for bit the rates
    computed one step at a time, in every range, and steps outside it are still computed."""
    reference = _rate(schedule)
    expected = [reference(t).view(np.uint32) for t in range(40)]
    for first, count in [(0, 40), (0, 1), (5, 13), (39, 1), (17, 23)]:
        rate = _rate(schedule)
        rate.prepare(first, count)
        got = [rate(t) for t in range(40)]
        assert all(type(r) is np.float32 for r in got)
        assert [r.view(np.uint32) for r in got] == expected
    with pytest.raises(ValueError, match="outside"):
        _rate(schedule).prepare(30, 11)


def test_prepared_linear_rates_over_a_long_task() -> None:
    """Every step of a 30,600-step linear schedule (the round benchmark's), prepared in
    chunks, against the scalar formula."""
    schedule = {"kind": "linear", "lr": 0.05, "warmup": 200, "final": 0.1}
    reference, rate = _rate(schedule, 30600), _rate(schedule, 30600)
    for first in range(0, 30600, 1024):
        rate.prepare(first, min(1024, 30600 - first))
        for t in range(first, min(first + 1024, 30600)):
            assert rate(t).view(np.uint32) == reference(t).view(np.uint32)
