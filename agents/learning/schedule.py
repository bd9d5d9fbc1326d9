"""Learning-rate schedules in binary32 basic arithmetic (no libm: no cosine, no pow).

``learning_rate(spec, t)`` is the rate of the update from step ``t`` to ``t + 1``
(``t`` counts from 0). Every operation below is one binary32 operation rounded
to nearest even, in the order written; integers are exact in binary32 because
steps stay below 2**24. With ``lr``, ``gamma``, ``final`` the spec's values
rounded to binary32:

- constant: ``lr``;
- step: ``f = 1; repeat floor(t / every) times: f = f · gamma``; rate ``lr · f``;
- linear: while ``t < warmup``: ``(lr · (t + 1)) / warmup``; afterwards, with
  ``D = steps − warmup``: ``p = (t − warmup) / D``, ``c = 1 − (1 − final) · p``
  (three operations: ``1 − final``, then ``·p``, then ``1 −``), rate ``lr · c``.
"""

from __future__ import annotations

import numpy as np

from agents.learning.spec import ConstantSchedule, LinearSchedule, StepSchedule, TaskSpec

F32 = np.float32


class LearningRate:
    """The schedule of one spec, with the step-decay factors cached (they are sequential)."""

    def __init__(self, spec: TaskSpec) -> None:
        self._schedule = spec.schedule
        self._steps = spec.steps
        self._factors: list[np.float32] = [F32(1.0)]
        self._first = 0
        self._table = np.empty(0, dtype=np.float32)

    def __call__(self, t: int) -> np.float32:
        """The binary32 learning rate for the update from step ``t``."""
        if not 0 <= t < self._steps:
            raise ValueError(f"step {t} is outside the task's {self._steps} steps")
        if 0 <= t - self._first < self._table.size:
            rate: np.float32 = self._table[t - self._first]
            return rate
        schedule = self._schedule
        lr = F32(schedule.lr)
        if isinstance(schedule, ConstantSchedule):
            return lr
        if isinstance(schedule, StepSchedule):
            drops = t // schedule.every
            self._extend(drops)
            return F32(lr * self._factors[drops])
        assert isinstance(schedule, LinearSchedule)
        if t < schedule.warmup:
            return F32(F32(lr * F32(t + 1)) / F32(schedule.warmup))
        span = self._steps - schedule.warmup
        progress = F32(F32(t - schedule.warmup) / F32(span))
        keep = F32(F32(1.0) - F32(F32(F32(1.0) - F32(schedule.final)) * progress))
        return F32(lr * keep)

    def _extend(self, drops: int) -> None:
        """The step schedule's factors up to ``drops`` drops (sequential products)."""
        assert isinstance(self._schedule, StepSchedule)
        gamma = F32(self._schedule.gamma)
        while len(self._factors) <= drops:
            self._factors.append(F32(self._factors[-1] * gamma))

    def prepare(self, first: int, count: int) -> None:
        """Compute the rates of steps ``first … first + count − 1`` at once (numpy's binary32
        array operations, each rounded as the scalar ones above), which calls for them then
        return: the same values, without Python arithmetic per step."""
        if count < 1 or not 0 <= first <= self._steps - count:
            raise ValueError(f"steps {first}+{count} are outside the task's {self._steps} steps")
        schedule = self._schedule
        lr = F32(schedule.lr)
        t = np.arange(first, first + count, dtype=np.int64)
        if isinstance(schedule, ConstantSchedule):
            table = np.full(count, lr, dtype=np.float32)
        elif isinstance(schedule, StepSchedule):
            drops = t // schedule.every
            self._extend(int(drops[-1]))
            factors = np.array(self._factors[: int(drops[-1]) + 1], dtype=np.float32)
            table = lr * factors[drops]
        else:
            assert isinstance(schedule, LinearSchedule)
            warm = F32(schedule.warmup)
            span = F32(self._steps - schedule.warmup)
            with np.errstate(divide="ignore", invalid="ignore"):  # a branch a step never takes
                early = (lr * (t + 1).astype(np.float32)) / warm
                progress = (t - schedule.warmup).astype(np.float32) / span
                keep = F32(1.0) - (F32(F32(1.0) - F32(schedule.final)) * progress)
            table = np.where(t < schedule.warmup, early, lr * keep)
        self._first, self._table = first, table.astype(np.float32)
