"""Named points where a process can be made to die, to prove crash safety in tests.

``VERITRAIN_FAILPOINTS`` lists points as ``name`` or ``name:prefix`` separated
by commas; when the running code reaches a listed point (and its detail starts
with ``prefix``), the process kills itself with SIGKILL: no cleanup, no
flushing, exactly like ``kill -9``. Unset (the normal case), a point costs one
dictionary lookup.

Points: ``tx-signed`` (journaled, not broadcast), ``tx-sent`` (broadcast, not
mined), ``checkpoint-written`` (training, after a checkpoint), ``segment-replayed``
(verification, after one segment).
"""

from __future__ import annotations

import os
import signal

_ENV = "VERITRAIN_FAILPOINTS"


def _armed() -> list[tuple[str, str]]:
    points = []
    for item in os.environ.get(_ENV, "").split(","):
        item = item.strip()
        if item:
            name, _, prefix = item.partition(":")
            points.append((name, prefix))
    return points


_ARMED = _armed()


def hit(name: str, detail: str = "") -> None:
    """Die here if the point ``name`` is armed for ``detail``."""
    for armed, prefix in _ARMED:
        if armed == name and detail.startswith(prefix):
            os.kill(os.getpid(), signal.SIGKILL)


def armed() -> bool:
    """Whether any point is armed in this process."""
    return bool(_ARMED)
