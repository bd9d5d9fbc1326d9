"""Progress bars on a terminal (rich), nothing otherwise; safe to update from worker threads."""

from __future__ import annotations

import sys
import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from agents.node import logs


class ProgressDisplay:
    """Named progress bars; a no-op unless enabled (``mode`` auto: when stderr is a terminal)."""

    def __init__(self, mode: str = "auto") -> None:
        enabled = mode == "always" or (mode == "auto" and sys.stderr.isatty())
        self._lock = threading.Lock()
        self._bars: dict[str, TaskID] = {}
        self._progress: Progress | None = None
        if enabled:
            console = logs.console() or Console(file=sys.stderr)
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._progress.start()

    def update(self, name: str, done: int, total: int) -> None:
        """Show ``done`` of ``total`` for ``name``; a bar disappears when it completes."""
        progress = self._progress
        if progress is None:
            return
        with self._lock:
            bar = self._bars.get(name)
            if bar is None:
                bar = progress.add_task(name, total=total)
                self._bars[name] = bar
            progress.update(bar, completed=done, total=total)
            if done >= total:
                progress.remove_task(bar)
                del self._bars[name]

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
