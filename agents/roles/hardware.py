"""Where an agent's local work runs: ``solver.device``/``verifier.device`` and ``threads``.

One setting reaches every job: training (native or exact backend), replay and
profiling. Devices:

- ``cpu``: native torch on the CPU; the exact kernels' CPU path (numba);
- ``cuda``: native torch on CUDA; the exact kernels' eager path on CUDA (the same
  bits as the CPU path, PROTOCOL.md §2); an agent refuses to start when torch
  sees no CUDA device, so a job never fails on it later;
- ``auto``: CUDA for native torch where torch sees a device, else the CPU; the
  exact kernels on the CPU path, the fastest for the example models.

``threads`` is the CPU threads of torch and of the exact kernels (0: every core).

A solver may also be a swarm (``[swarm]``, docs/swarm.md): its training then runs on the
swarm's workers, each with these device and thread settings, wherever the task's shape
lets the swarm train it (``training_backend``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agents.errors import ConfigError
from agents.node.config import SwarmSettings

if TYPE_CHECKING:
    from agents.learning.backends import Backend
    from agents.learning.spec import TaskSpec

Device = Literal["auto", "cpu", "cuda"]


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@dataclass(frozen=True)
class Hardware:
    """Where local work runs (see the module docstring)."""

    device: Device = "auto"
    threads: int = 1
    swarm: SwarmSettings | None = None

    def check(self) -> None:
        """Raise ``ConfigError`` when the device cannot be used here, or the swarm's settings
        (plan, key) do not make a swarm."""
        if self.device == "cuda" and not cuda_available():
            raise ConfigError("device is cuda, but torch sees no CUDA device on this machine")
        if self.swarm is not None and self.swarm.enabled:
            from agents.swarm.solver import check_swarm

            check_swarm(self.swarm, "native", self.native_options())

    def training_backend(self, backend: str, spec: TaskSpec) -> tuple[Backend, str | None]:
        """The backend that trains ``spec`` with the arithmetic of ``backend``: the swarm
        where there is one and it can, else this process; and why not the swarm."""
        from agents.swarm.solver import training_backend

        return training_backend(self.swarm, spec, backend, self.options(backend))

    def cores(self) -> int:
        """How many CPU cores local work may use: ``threads``, or every core (0)."""
        if self.threads:
            return self.threads
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)

    def torch_device(self) -> str:
        """The device of native torch work."""
        if self.device != "auto":
            return self.device
        return "cuda" if cuda_available() else "cpu"

    def exact_device(self) -> str:
        """The device of the exact kernels (``auto``: their CPU path)."""
        return "cuda" if self.device == "cuda" else "cpu"

    def native_options(self) -> dict[str, Any]:
        """Options of the native backend: device, and threads (0: torch's default)."""
        return {"device": self.torch_device(), "threads": self.threads}

    def exact_options(self) -> dict[str, Any]:
        """Options of the exact backend: device (the eager path on CUDA), and threads of
        its CPU path (0: numba's default)."""
        return {"device": self.exact_device(), "threads": self.threads}

    def options(self, backend: str) -> dict[str, Any]:
        """Options of the backend called ``backend``."""
        return self.exact_options() if backend == "exact" else self.native_options()
