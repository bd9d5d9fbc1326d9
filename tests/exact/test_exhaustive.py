"""Sweeps over the whole binary32 range (``make test-all``): sqrt on every non-negative
float32 on both paths against numpy (the eager path's binary64 route included), and
exp and log on a dense stride of all bit patterns, paths against each other and
within their ulp bounds."""

from __future__ import annotations

import numpy as np
import pytest

from agents.exact.cpu import CpuKernels
from agents.exact.eager import EagerKernels
from agents.exact.float32 import from_bits, ulp_error
from tests.exact.conftest import assert_bits_equal
from tests.exact.test_composites import EXP_MAX_ULP, LOG_MAX_ULP

CHUNK = 1 << 24


@pytest.mark.slow
def test_sqrt_of_every_non_negative_float32(cpu: CpuKernels, eager: EagerKernels) -> None:
    for start in range(0, 0x80000000, CHUNK):
        x = from_bits(np.arange(start, start + CHUNK, dtype=np.uint32))
        with np.errstate(invalid="ignore"):
            want = np.sqrt(x)
        want[np.isnan(want)] = np.float32(np.nan)
        assert_bits_equal(cpu.sqrt(x), want, f"cpu sqrt from 0x{start:08x}")
        got = eager.to_numpy(eager.sqrt(eager.from_numpy(x)))
        assert_bits_equal(got, want, f"eager sqrt from 0x{start:08x}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["exp", "log"])
def test_exp_and_log_sweep(cpu: CpuKernels, eager: EagerKernels, name: str) -> None:
    stride = 61  # odd and prime: every exponent and many mantissa patterns
    for start in range(0, 1 << 32, CHUNK * stride):
        patterns = np.arange(start, min(start + CHUNK * stride, 1 << 32), stride, dtype=np.uint64)
        x = from_bits(patterns.astype(np.uint32))
        got = getattr(cpu, name)(x)
        assert_bits_equal(eager.to_numpy(getattr(eager, name)(eager.from_numpy(x))), got, name)
        with np.errstate(all="ignore"):
            want = np.exp(x.astype(np.float64)) if name == "exp" else np.log(x.astype(np.float64))
        if name == "exp":
            ok = np.isfinite(want) & (want >= 2.0**-126) & (want < 3.4e38)
            bound = EXP_MAX_ULP
        else:
            ok = np.isfinite(want) & (x > 0)
            bound = LOG_MAX_ULP
        if ok.any():
            assert ulp_error(got[ok], want[ok]).max() <= bound, f"{name} from 0x{start:08x}"
