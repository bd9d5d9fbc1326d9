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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agents.errors import ConfigError

Device = Literal["auto", "cpu", "cuda"]


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@dataclass(frozen=True)
class Hardware:
    """Where local work runs (see the module docstring)."""

    device: Device = "auto"
    threads: int = 1

    def check(self) -> None:
        """Raise ``ConfigError`` when the device cannot be used here."""
        if self.device == "cuda" and not cuda_available():
            raise ConfigError("device is cuda, but torch sees no CUDA device on this machine")

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
