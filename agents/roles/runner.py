"""Running local jobs: one worker thread per job key, states polled by the agent's loop."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

from agents.errors import VeritrainError
from agents.roles.jobs import JobResult
from agents.roles.situation import WorkState

log = logging.getLogger(__name__)

Job = Callable[[], JobResult]


class WorkRunner:
    """Runs jobs in worker threads, one per key, and reports their states.

    The runtime polls :meth:`states` from its loop; nothing here touches the
    agent's database (its connection belongs to the loop's thread). A job that
    raises ``VeritrainError`` failed (its message is the reason); any other
    exception is a bug, logged with its traceback, and the job failed too.
    """

    def __init__(self, on_finished: Callable[[], None] | None = None) -> None:
        # ``on_finished`` is called (from the worker thread) after a job's state is final.
        self._on_finished = on_finished
        self._lock = threading.Lock()
        self._states: dict[str, WorkState] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._started: dict[str, float] = {}
        # The CPU seconds each finished job's thread used (its helpers' threads not counted).
        self._cpu: dict[str, float] = {}

    def start(self, key: str, job: Job) -> None:
        """Run ``job`` unless ``key`` is already running."""
        with self._lock:
            current = self._states.get(key)
            if current is not None and current.status == "running":
                return
            self._states[key] = WorkState(key, "running")
            self._started[key] = time.monotonic()
            thread = threading.Thread(target=self._run, args=(key, job), name=key, daemon=True)
            self._threads[key] = thread
        thread.start()

    def _run(self, key: str, job: Job) -> None:
        cpu = time.thread_time()
        try:
            result = job()
        except VeritrainError as exc:
            log.warning("work %s failed: %s", key, exc)
            state = WorkState(key, "failed", error=str(exc))
        except Exception as exc:  # a bug: keep the agent alive, log where
            log.error("work %s crashed: %s\n%s", key, exc, traceback.format_exc())
            state = WorkState(key, "failed", error=f"{type(exc).__name__}: {exc}")
        else:
            state = WorkState(key, "done", result)
        with self._lock:
            self._states[key] = state
            self._cpu[key] = time.thread_time() - cpu
        if self._on_finished is not None:
            self._on_finished()

    def elapsed(self, key: str) -> float:
        """Seconds since ``key`` was last started (0 if it never was)."""
        with self._lock:
            started = self._started.get(key)
        return time.monotonic() - started if started is not None else 0.0

    def cpu(self, key: str) -> float:
        """CPU seconds the thread of ``key``'s last finished run used (0 if none finished)."""
        with self._lock:
            return self._cpu.get(key, 0.0)

    def states(self) -> dict[str, WorkState]:
        with self._lock:
            return dict(self._states)

    def running(self) -> list[str]:
        with self._lock:
            return [k for k, s in self._states.items() if s.status == "running"]

    def forget(self, key: str) -> None:
        """Drop a finished job's state (after its result is persisted)."""
        with self._lock:
            state = self._states.get(key)
            if state is not None and state.status != "running":
                del self._states[key]
                self._cpu.pop(key, None)
