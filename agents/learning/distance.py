"""Distances between a claimed checkpoint and its replay (PROTOCOL.md §3).

For segment ``i`` with the solver's checkpoints ``w_i`` (start) and ``w_{i+1}``
(claimed end) and the verifier's replay ``w'_{i+1}``:

    d = ||w'_{i+1} − w_{i+1}|| / max(||w_{i+1} − w_i||, ε)

The state is split into groups, and ``d`` is computed for each group over the
concatenation of its tensors: ``param`` (every ``param/`` tensor) and one group
per optimizer slot (``opt/momentum``, ``opt/exp_avg``, ``opt/exp_avg_sq``) and, with
AQ-SGD compression, ``aq/activation`` and ``aq/seen`` (the per-sample buffers), so a
faked optimizer state cannot hide behind the parameters' larger scale. The
segment's distance is the largest group distance. ``||·||`` is the spec's
metric: ``l2`` (Euclidean) or ``linf`` (largest absolute value). Norms are
accumulated in binary64 from the binary32 tensors. Equal values (a NaN and a
NaN included) differ by zero, so a replay that matches its claim bit for bit
has distance 0 even where training diverged; any other non-finite difference
gives an infinite distance. The step counter is compared exactly elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from agents.exact.distance import Metric, relative_distance
from agents.learning.layout import AQ_PREFIX, OPT_PREFIX, PARAM_PREFIX, name_key

if TYPE_CHECKING:
    from agents.exact.kernels import Array
    from agents.exact.ops import ExactOps

__all__ = ["Metric", "group_distances", "group_of", "segment_distance", "traced_distances"]


def group_of(name: str) -> str | None:
    """The distance group of a state tensor (``None`` for the step counter)."""
    if name.startswith(PARAM_PREFIX):
        return "param"
    if name.startswith(OPT_PREFIX):
        return "opt/" + name.rsplit("/", 1)[1]
    if name.startswith(AQ_PREFIX):
        return "aq/" + name.rsplit("/", 1)[1]
    return None


class _Norm:
    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.value = 0.0

    def add(self, difference: np.ndarray) -> None:
        if not difference.size:
            return
        d = difference.astype(np.float64, copy=False).ravel()
        if self.metric == "l2":
            self.value += float(np.dot(d, d))
        else:
            self.value = max(self.value, float(np.max(np.abs(d))))

    def result(self) -> float:
        return math.sqrt(self.value) if self.metric == "l2" else self.value


def norm_of_difference(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], names: list[str], metric: Metric
) -> float:
    """``||a − b||`` over the tensors ``names``, concatenated (binary64 accumulation)."""
    norm = _Norm(metric)
    for name in names:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        with np.errstate(invalid="ignore", over="ignore"):  # inf − inf: handled just below
            difference = np.subtract(x, y, dtype=np.float64)
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        norm.add(np.where(same, 0.0, difference))
    return norm.result()


def group_distances(
    start: Mapping[str, np.ndarray],
    claimed: Mapping[str, np.ndarray],
    replayed: Mapping[str, np.ndarray],
    metric: Metric,
    epsilon: float,
) -> dict[str, float]:
    """The relative distance of every group (see the module docstring)."""
    groups: dict[str, list[str]] = {}
    for name in claimed:
        group = group_of(name)
        if group is not None:
            groups.setdefault(group, []).append(name)
    out: dict[str, float] = {}
    for group, names in sorted(groups.items()):
        error = norm_of_difference(replayed, claimed, names, metric)
        update = norm_of_difference(claimed, start, names, metric)
        if error == 0:
            out[group] = 0.0
        elif not (math.isfinite(error) and math.isfinite(update)):
            out[group] = math.inf
        else:
            out[group] = error / max(update, epsilon)
    return out


def segment_distance(distances: Mapping[str, float]) -> float:
    """The segment's distance: the largest group distance."""
    return max(distances.values(), default=0.0)


def traced_distances(
    E: ExactOps,
    start: Mapping[str, Array],
    claimed: Mapping[str, Array],
    replayed: Mapping[str, Array],
    metric: Metric,
    epsilon: float,
) -> tuple[dict[str, float], float]:
    """Group distances and the segment distance in exact operations (``E``, traced or not),
    as Python floats of binary32 results: each group's ``agents.exact.distance``
    ``relative_distance`` over its tensors in layout order, groups in name order, and the
    segment's distance their ``maximum``."""
    groups: dict[str, list[str]] = {}
    for name in sorted(claimed, key=name_key):
        group = group_of(name)
        if group is not None:
            groups.setdefault(group, []).append(name)
    out: dict[str, float] = {}
    segment: Array | None = None
    for group, names in sorted(groups.items()):
        d = relative_distance(
            E,
            [start[n] for n in names],
            [claimed[n] for n in names],
            [replayed[n] for n in names],
            metric,
            epsilon,
        )
        out[group] = float(E.to_numpy(d).reshape(-1)[0])
        segment = d if segment is None else E.maximum(segment, d)
    value = 0.0 if segment is None else float(E.to_numpy(segment).reshape(-1)[0])
    return out, value
