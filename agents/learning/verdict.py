"""The verdict on one replayed segment: the one rule every verifier, the chain and an auditor
apply (docs/proof.md, "The verdict", states it; PROTOCOL.md §3, §5).

- Exact mode: the segment passes iff the replay's state root equals the claimed
  state root. The reported distance is ``+0`` (bits ``0x00000000``) on a pass and
  ``+inf`` (``0x7F800000``) on a fail: the roots decide, and the chain's "every
  distance ≤ τ = 0" then agrees. The computed distance is shown, never posted.
- Tolerant mode: the reported distance is the distance of ``agents.learning.distance``
  (binary32, never negative, never NaN), posted as its bit pattern; the segment
  passes iff that pattern is at most τ's, τ rounded to binary32 first, which is
  the chain's own comparison (for non-negative binary32 values, comparing bit
  patterns as integers is comparing values).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.exact.float32 import POSITIVE_INFINITY_BITS, from_bits32, to_bits

PASS_BITS = 0x00000000
FAIL_BITS = POSITIVE_INFINITY_BITS
_SIGN = 0x80000000


@dataclass(frozen=True)
class Ruling:
    """Whether a segment passes, and the binary32 bits its report carries."""

    passed: bool
    reported: int


def binary32_tau(tau: float) -> float:
    """τ rounded to binary32 (to nearest, ties to even): the threshold the chain holds."""
    return from_bits32(to_bits(tau))


def rule(
    *, exact: bool, claimed_root: str, replay_root: str, distance: float, tau: float
) -> Ruling:
    """The verdict on one segment (module docstring); roots as hex, ``tau`` ≥ 0."""
    if exact:
        passed = claimed_root.lower() == replay_root.lower()
        return Ruling(passed, PASS_BITS if passed else FAIL_BITS)
    bits = to_bits(distance)
    if bits & _SIGN or bits > POSITIVE_INFINITY_BITS:
        bits = FAIL_BITS  # not a distance (negative or NaN): the definition never gives one
    return Ruling(bits <= to_bits(tau), bits)
