"""Named points where a process can be made to die, to prove crash safety in tests.

``VERITRAIN_FAILPOINTS`` lists points separated by commas, each ``name`` (any
detail), ``name:prefix`` (a detail starting with ``prefix``) or ``name=detail``
(exactly that detail). When the running code reaches a listed point, the
process kills itself with SIGKILL: no cleanup, no flushing, exactly like
``kill -9``. Unset (the normal case), a point costs a loop over nothing.

Points and their details: ``tx-signed`` and ``tx-sent`` (the intent key, e.g.
``claim/3``: journaled but not broadcast; broadcast but not mined), ``tx-replaced`` (the
intent key: a fee bump's replacement journaled but not broadcast),
``checkpoint-written`` (the number of checkpoints this run has trained, from 1),
``segment-replayed`` (the number of segments this run has replayed, from 1).
"""

from __future__ import annotations

import os
import signal

_ENV = "VERITRAIN_FAILPOINTS"


def _armed() -> list[tuple[str, str, bool]]:
    """(name, detail pattern, exact) for every armed point."""
    points = []
    for item in os.environ.get(_ENV, "").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            name, _, detail = item.partition("=")
            points.append((name, detail, True))
        else:
            name, _, prefix = item.partition(":")
            points.append((name, prefix, False))
    return points


_ARMED = _armed()


def hit(name: str, detail: str = "") -> None:
    """Die here if the point ``name`` is armed for ``detail``."""
    for armed, pattern, exact in _ARMED:
        if armed == name and (detail == pattern if exact else detail.startswith(pattern)):
            os.kill(os.getpid(), signal.SIGKILL)


def armed() -> bool:
    """Whether any point is armed in this process."""
    return bool(_ARMED)
