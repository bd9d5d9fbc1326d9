"""The model of honest drift that the profiler fits and a solver weighs τ against.

Honest drift is the relative distance (``agents.learning.distance``) between an
honest solver's claimed end of a segment and the verifier's replay of it. The
model (docs/proof.md, Profiling): across a task's segments, the logarithm of
honest drift is normal with the measured mean ``μ`` and a spread ``σ`` of at least
``SPREAD_FLOOR``, and later segments may drift ``growth`` times more (the learning
rate shrinks). Under it, an honest segment exceeds ``bound(p)`` with probability
``p``, and ``exceed_probability(τ)`` is the chance that one exceeds τ. Pure
arithmetic: the solver's decisions use it without loading any learning engine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

EXCEED_TARGET = 1e-6
"""The probability, under the model, that an honest segment exceeds a profiled τ."""

SPREAD_FLOOR = 1.0
"""The least spread of log drift the model assumes: well-conditioned examples spread by at
most 0.7 over every segment of their training, so a few similar measurements cannot talk
the spread down."""


@dataclass(frozen=True)
class DriftModel:
    """Log-normal honest drift with a growth allowance (see the module docstring)."""

    samples: int
    log_mean: float
    log_spread: float  # the spread used: the measured one, at least SPREAD_FLOOR
    growth: float

    def _width(self) -> float:
        return self.log_spread * math.sqrt(1.0 + 1.0 / self.samples)

    def bound(self, target: float = EXCEED_TARGET) -> float:
        """The drift an honest segment exceeds with probability ``target``."""
        z = statistics.NormalDist().inv_cdf(1.0 - target)
        return self.growth * math.exp(self.log_mean + z * self._width())

    def exceed_probability(self, tau: float) -> float:
        """The probability that an honest segment's distance exceeds ``tau``."""
        if tau <= 0:
            return 1.0
        if not math.isfinite(self.growth):
            return 1.0
        z = (math.log(tau / self.growth) - self.log_mean) / self._width()
        return statistics.NormalDist().cdf(-z)

    def to_json(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "log_mean": self.log_mean,
            "log_spread": self.log_spread,
            "spread_floor": SPREAD_FLOOR,
            "growth": self.growth if math.isfinite(self.growth) else "inf",
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DriftModel:
        growth = data["growth"]
        return cls(
            samples=int(data["samples"]),
            log_mean=float(data["log_mean"]),
            log_spread=float(data["log_spread"]),
            growth=math.inf if growth == "inf" else float(growth),
        )


def fit_model(distances: Sequence[float], growth: float) -> DriftModel | None:
    """The model of the finite drift in ``distances`` (``None`` when every one is 0,
    bit-identical replays, or infinite). An infinite distance (one side diverged,
    docs/proof.md "Divergence") is no drift a τ can cover: it stays in the profile's
    largest drift, which then rules the task out, and out of the model."""
    logs = [math.log(d) for d in distances if 0 < d < math.inf]
    if not logs:
        return None
    spread = statistics.stdev(logs) if len(logs) > 1 else 0.0
    return DriftModel(len(logs), statistics.fmean(logs), max(spread, SPREAD_FLOOR), growth)


def rejection_probability(exceed: float, segments: int) -> float:
    """The chance that any of ``segments`` replayed segments exceeds τ when each does so
    with probability ``exceed``."""
    if exceed >= 1:
        return 1.0
    return -math.expm1(segments * math.log1p(-exceed))
