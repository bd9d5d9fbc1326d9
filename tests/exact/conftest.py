"""Fixtures of the exact-kernel tests: both paths, and the sample sizes."""

from __future__ import annotations

import numpy as np
import pytest

from agents.exact.cpu import CpuKernels
from agents.exact.eager import EagerKernels
from agents.exact.kernels import Kernels

# Random inputs per basic op: the fast suite, and the slow suite (>= 10^6).
FAST_SAMPLES = 1 << 16
SLOW_SAMPLES = 1 << 20


@pytest.fixture(scope="session")
def cpu() -> CpuKernels:
    return CpuKernels()


@pytest.fixture(scope="session")
def eager() -> EagerKernels:
    return EagerKernels("cpu")


@pytest.fixture(params=["cpu", "eager"], scope="session")
def path(request: pytest.FixtureRequest, cpu: CpuKernels, eager: EagerKernels) -> Kernels:
    return cpu if request.param == "cpu" else eager


def assert_bits_equal(got: np.ndarray, want: np.ndarray, context: str = "") -> None:
    """Bit-for-bit equality, reporting the first differing element."""
    got = np.ascontiguousarray(got, dtype=np.float32)
    want = np.ascontiguousarray(want, dtype=np.float32)
    assert got.shape == want.shape, f"{context}: shape {got.shape} != {want.shape}"
    diff = got.view(np.uint32) != want.view(np.uint32)
    if diff.any():
        i = np.flatnonzero(diff.reshape(-1))[0]
        g, w = got.reshape(-1)[i], want.reshape(-1)[i]
        raise AssertionError(
            f"{context}: {int(diff.sum())} of {diff.size} differ; first at {i}: "
            f"got {g!r} (0x{g.view(np.uint32):08x}), want {w!r} (0x{w.view(np.uint32):08x})"
        )
