"""The verifier's replayer as the agent runs it: progress, and a crash point after each segment."""

from __future__ import annotations

import threading
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
        self._lock = threading.Lock()  # segments may be replayed side by side

    def replay(self, task: Task, start: State, batches: np.ndarray, trace: bool = False) -> Replay:
        result = super().replay(task, start, batches, trace)
        with self._lock:
            self.done += 1
            done = self.done
            if self.progress is not None:
                self.progress(done, self.total)
        failpoints.hit("segment-replayed", str(done))
        return result
