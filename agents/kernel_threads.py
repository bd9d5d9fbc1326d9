"""How compiled kernels (the exact CPU path, the sha256 engines) use more than one core.

numba's OpenMP threading layer and torch's own OpenMP runtime, loaded in one
process, stall each other: a parallel numba kernel then takes milliseconds
where it needs microseconds. The kernels therefore use numba's own
``workqueue`` pool (unless ``NUMBA_THREADING_LAYER`` says otherwise). That pool
must not be entered from two threads at once, so every parallel launch holds
``LAUNCH_LOCK``; serial kernels need no lock. Thread counts never change
results: parallel kernels split work by independent outputs only.
"""

from __future__ import annotations

import os
import threading
import types
from typing import Any

import numba

LAUNCH_LOCK = threading.Lock()

if "NUMBA_THREADING_LAYER" not in os.environ:
    setattr(numba.config, "THREADING_LAYER", "workqueue")  # noqa: B010 (untyped module)


def parallel_clone(fn: Any) -> Any:
    """A copy of ``fn`` under its own name, for its ``parallel=True`` compilation: numba
    caches compiled code by qualified name, and the parallel build must not be loaded for
    the serial one (or back)."""
    clone = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__ + "_parallel", fn.__defaults__, fn.__closure__
    )
    clone.__qualname__ = fn.__qualname__ + "_parallel"
    return clone
