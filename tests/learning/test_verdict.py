"""The verdict rule on one segment, by table (docs/proof.md, "The verdict")."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.learning.verdict import FAIL_BITS, PASS_BITS, Ruling, binary32_tau, rule

A, B = "ab" * 32, "cd" * 32


def _bits(value: float) -> int:
    return int(np.float32(value).view(np.uint32))


@pytest.mark.parametrize(
    ("exact", "claimed", "replayed", "distance", "tau", "want"),
    [
        # Exact mode: the roots decide; the distance is never posted.
        (True, A, A, 0.0, 0.0, Ruling(True, PASS_BITS)),
        (True, A, A, math.inf, 0.0, Ruling(True, PASS_BITS)),  # a diverged replay matching
        (True, A, A.upper(), 0.5, 0.0, Ruling(True, PASS_BITS)),
        (True, A, B, 0.0, 0.0, Ruling(False, FAIL_BITS)),  # other bits at distance 0 (±0)
        (True, A, B, 1e-30, 0.0, Ruling(False, FAIL_BITS)),
        # Tolerant mode: the binary32 distance against τ (rounded to binary32).
        (False, A, B, 0.0, 0.0, Ruling(True, 0)),
        (False, A, B, 1e-4, 1e-3, Ruling(True, _bits(1e-4))),
        (False, A, B, 1e-3, 1e-3, Ruling(True, _bits(1e-3))),
        (False, A, B, float(np.float32(1e-3)), 1e-3, Ruling(True, _bits(1e-3))),
        (False, A, B, float(np.nextafter(np.float32(1e-3), np.float32(1))), 1e-3,
         Ruling(False, _bits(1e-3) + 1)),
        (False, A, A, 0.5, 1e-3, Ruling(False, _bits(0.5))),  # equal roots do not matter
        (False, A, B, math.inf, 1e3, Ruling(False, FAIL_BITS)),
        # Never a distance, but never a pass either.
        (False, A, B, math.nan, 1e3, Ruling(False, FAIL_BITS)),
        (False, A, B, -0.0, 1e-3, Ruling(False, FAIL_BITS)),
    ],
)  # fmt: skip
def test_rule(
    exact: bool, claimed: str, replayed: str, distance: float, tau: float, want: Ruling
) -> None:
    got = rule(exact=exact, claimed_root=claimed, replay_root=replayed, distance=distance, tau=tau)
    assert got == want
    # What the chain decides from the posted bits is the segment's verdict.
    assert (got.reported <= _bits(tau) and not got.reported & 0x80000000) == got.passed


def test_tau_is_the_binary32_threshold() -> None:
    assert binary32_tau(1e-3) == float(np.float32(1e-3)) != 1e-3
    assert binary32_tau(0.0) == 0.0
    assert binary32_tau(1e3) == 1000.0
