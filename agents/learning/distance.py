"""Distances between a claimed checkpoint and its replay (PROTOCOL.md §3; docs/proof.md,
"Distances", states the rule).

For segment ``i`` with the solver's checkpoints ``w_i`` (start) and ``w_{i+1}``
(claimed end) and the verifier's replay ``w'_{i+1}``:

    d = ||w'_{i+1} − w_{i+1}|| / max(||w_{i+1} − w_i||, ε)

The state is split into groups, and ``d`` is computed for each group over the
concatenation of its tensors (in layout order): ``param`` (every ``param/``
tensor), one group per optimizer slot (``opt/momentum``, ``opt/exp_avg``,
``opt/exp_avg_sq``) and, with AQ-SGD compression, ``aq/activation`` and
``aq/seen`` (the per-sample buffers), so a faked optimizer state cannot hide
behind the parameters' larger scale. The segment's distance is the ``maximum`` of
the group distances in group-name order. ``||·||`` is the spec's metric: ``l2``
or ``linf``.

There is one definition, in binary32 exact operations (``agents.exact.distance``),
for every input, non-finite ones included: a tracing replay computes it as the
last part of its trace (``traced_distances``), and every other caller gets the
same bits from the same operations run untraced (``group_distances``). The step
counter is not part of any group (the state root covers it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from agents.exact.distance import Metric, relative_distance
from agents.exact.distance import norm_of_difference as exact_norm
from agents.exact.ops import ExactOps
from agents.learning.layout import AQ_PREFIX, OPT_PREFIX, PARAM_PREFIX, name_key

if TYPE_CHECKING:
    from agents.exact.kernels import Array

__all__ = [
    "Metric",
    "group_distances",
    "group_of",
    "groups",
    "norm_of_difference",
    "segment_distance",
    "traced_distances",
]


def group_of(name: str) -> str | None:
    """The distance group of a state tensor (``None`` for the step counter)."""
    if name.startswith(PARAM_PREFIX):
        return "param"
    if name.startswith(OPT_PREFIX):
        return "opt/" + name.rsplit("/", 1)[1]
    if name.startswith(AQ_PREFIX):
        return "aq/" + name.rsplit("/", 1)[1]
    return None


def groups(names: Sequence[str]) -> dict[str, list[str]]:
    """The groups of the tensors ``names``, in group-name order, each in layout order."""
    out: dict[str, list[str]] = {}
    for name in sorted(names, key=name_key):
        group = group_of(name)
        if group is not None:
            out.setdefault(group, []).append(name)
    return dict(sorted(out.items()))


@functools.cache
def _untraced() -> ExactOps:
    """The exact operations without a trace, on the CPU (one thread)."""
    try:
        from agents.exact.cpu import CpuKernels

        return ExactOps(CpuKernels(1))
    except ImportError:  # no numba here: the eager path gives the same bits
        from agents.exact.eager import EagerKernels

        return ExactOps(EagerKernels("cpu"))


def _scalar(E: ExactOps, value: Array) -> float:
    return float(E.to_numpy(value).reshape(-1)[0])


def traced_distances(
    E: ExactOps,
    start: Mapping[str, Array],
    claimed: Mapping[str, Array],
    replayed: Mapping[str, Array],
    metric: Metric,
    epsilon: float,
) -> tuple[dict[str, float], float]:
    """Group distances and the segment distance in exact operations (``E``, traced or not),
    as Python floats of binary32 results (see the module docstring)."""
    out: dict[str, float] = {}
    segment: Array | None = None
    for group, names in groups(list(claimed)).items():
        d = relative_distance(
            E,
            [start[n] for n in names],
            [claimed[n] for n in names],
            [replayed[n] for n in names],
            metric,
            epsilon,
        )
        out[group] = _scalar(E, d)
        segment = d if segment is None else E.maximum(segment, d)
    return out, (0.0 if segment is None else _scalar(E, segment))


def _arrays(E: ExactOps, state: Mapping[str, np.ndarray]) -> dict[str, Array]:
    return {n: E.array(np.ascontiguousarray(v, dtype=np.float32)) for n, v in state.items()}


def group_distances(
    start: Mapping[str, np.ndarray],
    claimed: Mapping[str, np.ndarray],
    replayed: Mapping[str, np.ndarray],
    metric: Metric,
    epsilon: float,
) -> dict[str, float]:
    """The relative distance of every group: ``traced_distances``' values, computed untraced."""
    E = _untraced()
    out, _ = traced_distances(
        E, _arrays(E, start), _arrays(E, claimed), _arrays(E, replayed), metric, epsilon
    )
    return out


def segment_distance(distances: Mapping[str, float]) -> float:
    """The segment's distance: the largest group distance (``+0`` for no group)."""
    return max(distances.values(), default=0.0)


def norm_of_difference(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], names: list[str], metric: Metric
) -> float:
    """``||a − b||`` over the tensors ``names`` in layout order, concatenated, in binary32
    exact operations (the same norm as a distance's; NaN where an element is NaN)."""
    E = _untraced()
    ordered = sorted(names, key=name_key)
    arrays_a = [E.array(np.ascontiguousarray(a[n], dtype=np.float32)) for n in ordered]
    arrays_b = [E.array(np.ascontiguousarray(b[n], dtype=np.float32)) for n in ordered]
    return _scalar(E, exact_norm(E, arrays_a, arrays_b, metric))
