"""Training backends: one interface through which both training and replay run.

A backend turns a state (``agents.learning.layout``) and the batch indices of
some steps into the state after those steps, exactly as the spec says (model,
loss, optimizer, learning-rate schedule). The solver trains through a backend,
the verifier's ``Replayer`` replays segments through one, and the profiler
compares several. Backends are named in a registry:

- ``native``: plain torch on CPU or CUDA (fast; results drift with kernels and
  threads, which tolerant mode allows for);
- ``exact``: the reproducible binary32 kernels (PROTOCOL.md §2), which compute
  the same bits everywhere and can record a replay trace.

A backend module registers itself with ``register_backend``; names listed in
``_LOCATIONS`` are imported on first use, so ``get_backend("exact")`` works
without the caller importing anything.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
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


BackendFactory = Callable[..., Backend]

_FACTORIES: dict[str, BackendFactory] = {}
# Modules that register a backend of that name when imported.
_LOCATIONS = {
    "native": "agents.learning.native",
    "exact": "agents.exact.backend",
}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``factory(**options)`` the backend called ``name``."""
    _FACTORIES[name] = factory


def get_backend(name: str, **options: Any) -> Backend:
    """The backend called ``name`` with ``options``; raises ``BackendError`` if there is none."""
    if name not in _FACTORIES and name in _LOCATIONS:
        try:
            importlib.import_module(_LOCATIONS[name])
        except ImportError as exc:
            raise BackendError(f"backend {name!r} is not available here: {exc}") from None
    factory = _FACTORIES.get(name)
    if factory is None:
        known = ", ".join(sorted(set(_FACTORIES) | set(_LOCATIONS)))
        raise BackendError(f"unknown backend {name!r} (known: {known})")
    try:
        return factory(**options)
    except TypeError as exc:
        raise BackendError(f"backend {name!r} does not take these options: {exc}") from None


def backend_available(name: str) -> bool:
    """Whether ``get_backend(name)`` can work on this machine."""
    try:
        get_backend(name)
    except BackendError:
        return False
    return True
