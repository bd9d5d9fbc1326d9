"""What a training backend is: a ``Backend`` starts ``Session``s that run training steps.

The solver trains through a backend, the verifier's ``Replayer`` replays segments
through one, and the profiler compares several; ``agents.learning.backends``
names the implementations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

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


class StageSession(ABC):
    """A session that can also run one stage of a pipeline (``agents.swarm``), or all of
    them in turn: the arithmetic of a task whose ``parallel`` section cuts the model.

    Arrays are the backend's own (exact kernels' arrays, torch tensors); ``to_numpy`` and
    ``from_numpy`` move them across processes. ``stages`` is the pipeline's depth
    (``agents.learning.stages``). What crosses a cut is in *rows*: ``[samples, values]``,
    one row per sample. A stage's slices go forward in order and come back in the same
    order: ``stage_backward`` answers the stage's oldest pending ``stage_forward``.
    """

    @abstractmethod
    def stage_forward(self, stages: int, stage: int, rows: np.ndarray, x: Any | None) -> Any:
        """Stage ``stage``'s output (rows; the logits on the last stage) for the samples
        ``rows``, from its input ``x`` (rows; ``None`` on the first stage, which reads the
        batch's inputs)."""

    @abstractmethod
    def stage_backward(
        self, stage: int, slices: int, dy: Any | None
    ) -> tuple[Any | None, dict[str, Any]]:
        """Stage ``stage``'s oldest pending slice's backward pass from ``dy``, the gradient of
        the stage's
        output (``None`` on the last stage: the loss gradient of a batch of ``slices``
        slices): the gradient of the stage's input (rows; ``None`` on the first stage) and
        of the stage's parameters by module path."""

    @abstractmethod
    def accumulate(
        self, acc: dict[str, Any] | None, grads: Mapping[str, Any], paths: list[str]
    ) -> dict[str, Any]:
        """``acc + grads`` for ``paths`` (the first slice: ``+0.0 + grads``, or ``grads``
        itself when the task does not split its steps)."""

    @abstractmethod
    def apply_stage(self, paths: list[str], grads: Mapping[str, Any]) -> None:
        """The optimizer step of the parameters ``paths`` with the step's gradients, and the
        step counter's increment (every stage counts steps)."""

    @abstractmethod
    def cut_forward(self, cut: int, rows: np.ndarray, a: Any) -> Any:
        """``agents.learning.compression.Forward`` of the output rows ``a`` at ``cut``."""

    @abstractmethod
    def cut_receive(self, cut: int, rows: np.ndarray, quantized: Any, full: Any) -> Any:
        """The rows ``cut_forward`` passed on, rebuilt from what crossed ``cut``."""

    @abstractmethod
    def cut_backward(self, g: Any) -> tuple[Any, Any]:
        """The gradient rows ``g`` sent back across a cut: ``(g', Quantized or None)``."""

    @abstractmethod
    def cut_receive_backward(self, quantized: Any) -> Any:
        """``g'`` rebuilt from what crossed back quantized."""

    @abstractmethod
    def commit_cut(self, cut: int, step_rows: np.ndarray, values: list[Any]) -> None:
        """AQ-SGD's buffers of ``cut`` after a step whose slices passed on ``values``."""

    @abstractmethod
    def to_numpy(self, value: Any) -> np.ndarray:
        """A float32 numpy copy of one of the backend's arrays."""

    @abstractmethod
    def from_numpy(self, value: np.ndarray) -> Any:
        """One of the backend's arrays from float32 values."""
