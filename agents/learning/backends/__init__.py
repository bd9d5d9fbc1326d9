"""Training backends: one interface through which both training and replay run.

A backend turns a state (``agents.learning.layout``) and the batch indices of
some steps into the state after those steps, exactly as the spec says (model,
loss, optimizer, learning-rate schedule). The interface is in ``base``; the
backends are modules of this package, named here:

- ``native``: plain torch on CPU or CUDA (fast; results drift with kernels and
  threads, which tolerant mode allows for);
- ``exact``: the reproducible binary32 kernels of ``agents.exact`` (PROTOCOL.md §2),
  which compute the same bits everywhere and can record a replay trace
  (``exact_models`` mirrors the example architectures in exact operations).

``get_backend(name, **options)`` imports the named module on first use (torch, or
the exact kernels' compiler, load only when needed); nothing registers itself.
"""

from __future__ import annotations

from typing import Any

from agents.learning.backends.base import Backend, BackendError, Session, StepCallback

BACKEND_NAMES = ("native", "exact")
"""Every backend name ``get_backend`` knows."""


def _backend_class(name: str) -> type[Backend]:
    if name == "native":
        from agents.learning.backends.native import NativeBackend

        return NativeBackend
    if name == "exact":
        from agents.learning.backends.exact import ExactBackend

        return ExactBackend
    raise BackendError(f"unknown backend {name!r} (known: {', '.join(sorted(BACKEND_NAMES))})")


def get_backend(name: str, **options: Any) -> Backend:
    """The backend called ``name`` with ``options``; raises ``BackendError`` if there is none,
    if it cannot load here, or if it does not take ``options``."""
    try:
        backend_class = _backend_class(name)
    except ImportError as exc:
        raise BackendError(f"backend {name!r} is not available here: {exc}") from None
    try:
        return backend_class(**options)
    except TypeError as exc:
        raise BackendError(f"backend {name!r} does not take these options: {exc}") from None


def backend_available(name: str) -> bool:
    """Whether ``get_backend(name)`` can work on this machine."""
    try:
        get_backend(name)
    except BackendError:
        return False
    return True


__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "BackendError",
    "Session",
    "StepCallback",
    "backend_available",
    "get_backend",
]
