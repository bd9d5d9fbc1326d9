"""Replays the first segment of example tasks with a trace; prints roots as JSON.

Run as ``python -m tests.exact.replay_segment NAME [NAME ...]`` by the test that
compares processes with different thread counts.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from agents.commitment import state_root
from agents.learning.backends import get_backend
from tests.exact.tasks import example_task


def replay(name: str) -> dict[str, Any]:
    task = example_task(name)
    start = task.initial_state()
    session = get_backend("exact").start(task, start, trace=True)
    session.run(task.segment_batches(0))
    end = session.state()
    groups = session.traced_distances(start, end, "l2", 1e-12)
    root = session.trace_root()
    assert groups is not None and root is not None
    return {
        "state_root": state_root(end).hex(),
        "trace_root": root.hex(),
        "distance": max(groups.values()),
    }


if __name__ == "__main__":
    print(json.dumps({name: replay(name) for name in sys.argv[1:]}))
