"""What a training backend is: a ``Backend`` starts ``Session``s that run training steps.

The solver trains through a backend, the verifier's ``Replayer`` replays segments
through one, and the profiler compares several; ``agents.learning.backends``
names the implementations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from agents.errors import VeritrainError
from agents.learning.layout import State
from agents.learning.task import Task

StepCallback = Callable[[int], None]
"""Called after every step with the number of steps the state has now taken."""


class BackendError(VeritrainError):
    """A backend is unknown, unavailable here, or cannot run a task."""


class Session(ABC):
    """A live training state on one backend (parameters and optimizer state on its device)."""

    @abstractmethod
    def run(self, batches: np.ndarray, on_step: StepCallback | None = None) -> None:
        """Take one optimizer step per row of ``batches`` (int64 ``[steps, B]`` sample indices)."""

    @abstractmethod
    def state(self) -> State:
        """A copy of the current state, in layout order (float32 numpy arrays)."""

    def trace_root(self) -> bytes | None:
        """Root of the trace of the steps run so far (PROTOCOL.md §4), if this backend traces."""
        return None

    def traced_distances(
        self, start: State, claimed: State, metric: str, epsilon: float
    ) -> dict[str, float] | None:
        """The group distances (PROTOCOL.md §3) of ``claimed`` to this session's state,
        computed as the last part of its trace (then covered by ``trace_root``), or
        ``None`` where the backend does not compute them itself."""
        return None


class Backend(ABC):
    """Something that trains: ``start`` a session from a state, ``run`` steps, read ``state``."""

    name: str = ""

    @abstractmethod
    def start(self, task: Task, state: State, *, trace: bool = False) -> Session:
        """A session holding ``state`` for ``task``; ``trace`` asks for a replay trace."""

    def describe(self) -> str:
        """A short human-readable description (name and options) for reports."""
        return self.name
