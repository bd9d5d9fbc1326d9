"""Agents as separate processes (``python -m agents.cli <role> run``), for the demo, the
end-to-end tests and the round benchmark: start, stop gracefully, kill -9, restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from agents.devnet.anvil import REPO_ROOT


def cli_command(*args: str) -> list[str]:
    """The ``veritrain`` command line with ``args``, run by this interpreter."""
    return [sys.executable, "-m", "agents.cli", *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an agent process: this one's, unbuffered, the repository importable."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO_ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env.pop("VERITRAIN_FAILPOINTS", None)
    env.update(extra or {})
    return env


@dataclass
class AgentProcess:
    """One agent process writing its log lines to ``log``."""

    role: str
    config: Path
    log: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self, *, failpoints: str | None = None) -> None:
        """Start (or start again) the agent; ``failpoints`` arms crash points in this run only."""
        extra = dict(self.env)
        if failpoints:
            extra["VERITRAIN_FAILPOINTS"] = failpoints
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                cli_command(self.role, "run", "--config", str(self.config), *self.args),
                cwd=REPO_ROOT,
                env=child_env(extra),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """``kill -9``: no cleanup, no flushing."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (the agent finishes its tick and exits), SIGKILL after ``timeout``."""
        if not self.alive:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
