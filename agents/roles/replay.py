"""The verifier's replayer as the agent runs it: progress, a crash point after each segment,
and when its replays ran."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from agents.learning.backends import Backend
from agents.learning.layout import State
from agents.learning.task import Task
from agents.learning.verifier import Replay, Replayer
from agents.node import failpoints


class ObservedReplayer(Replayer):
    """A :class:`Replayer` reporting each replayed segment (for bars, metrics, crash tests);
    ``first_start`` and ``last_end`` are when its first replay began and its last one ended
    (``time.monotonic``; None before any)."""

    def __init__(
        self, backend: Backend, total: int, progress: Callable[[int, int], None] | None
    ) -> None:
        super().__init__(backend)
        self.total = total
        self.progress = progress
        self.done = 0
        self.first_start: float | None = None
        self.last_end: float | None = None
        self._lock = threading.Lock()  # segments may be replayed side by side

    def replay(self, task: Task, start: State, batches: np.ndarray, trace: bool = False) -> Replay:
        began = time.monotonic()
        with self._lock:
            if self.first_start is None:
                self.first_start = began
        result = super().replay(task, start, batches, trace)
        with self._lock:
            self.last_end = time.monotonic()
            self.done += 1
            done = self.done
            if self.progress is not None:
                self.progress(done, self.total)
        failpoints.hit("segment-replayed", str(done))
        return result
