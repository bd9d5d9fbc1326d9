"""Where local work runs: the device setting reaches the exact backend and profiling."""

from __future__ import annotations

import pytest

from agents.errors import ConfigError
from agents.learning.backends import get_backend
from agents.roles import hardware
from agents.roles.hardware import Hardware


@pytest.mark.parametrize(
    ("device", "cuda", "native", "exact"),
    [
        ("cpu", False, "cpu", "cpu"),
        ("cpu", True, "cpu", "cpu"),
        ("auto", False, "cpu", "cpu"),
        ("auto", True, "cuda", "cpu"),
        ("cuda", True, "cuda", "cuda"),
    ],
)
def test_devices(
    monkeypatch: pytest.MonkeyPatch, device: str, cuda: bool, native: str, exact: str
) -> None:
    monkeypatch.setattr(hardware, "cuda_available", lambda: cuda)
    chosen = Hardware(device, threads=2)  # type: ignore[arg-type]
    chosen.check()
    assert chosen.native_options() == {"device": native, "threads": 2}
    assert chosen.exact_options() == {"device": exact, "threads": 2}
    assert chosen.options("exact") == chosen.exact_options()
    assert chosen.options("native") == chosen.native_options()


def test_cuda_without_a_device_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)
    with pytest.raises(ConfigError, match="torch sees no CUDA device"):
        Hardware("cuda").check()


def test_the_exact_backend_gets_the_device() -> None:
    backend = get_backend("exact", **Hardware("cpu", threads=1).exact_options())
    assert backend.describe() == "exact(path=cpu, device=cpu, threads=1)"
    if not hardware.cuda_available():
        with pytest.raises(Exception, match="no CUDA device"):
            get_backend("exact", device="cuda", threads=1)
