"""The verifier's replayer as the agent runs it: progress, and a crash point after each segment."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from agents.learning.backends import Backend
from agents.learning.layout import State
from agents.learning.task import Task
from agents.learning.verifier import Replay, Replayer
from agents.node import failpoints


class ObservedReplayer(Replayer):
    """A :class:`Replayer` reporting each replayed segment (for bars, metrics, crash tests)."""

    def __init__(
        self, backend: Backend, total: int, progress: Callable[[int, int], None] | None
    ) -> None:
        super().__init__(backend)
        self.total = total
        self.progress = progress
        self.done = 0

    def replay(self, task: Task, start: State, batches: np.ndarray, trace: bool = False) -> Replay:
        result = super().replay(task, start, batches, trace)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)
        failpoints.hit("segment-replayed", str(self.done))
        return result
