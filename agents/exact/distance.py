"""The distance of PROTOCOL.md §3 in exact operations, so that it is part of the trace.

Same groups and rules as ``agents.learning.distance`` (one distance per group:
``param`` and each optimizer slot; the segment's distance is the largest), in
binary32 exact ops, tensors of a group in layout order:

- l2: per tensor ``s = sum(flat((a - b)·(a - b)))``; the group's squared norm is
  the sequential sum of its tensors' ``s``; the norm is ``sqrt`` of it;
- linf: per tensor ``amax(flat(|a - b|))``; the group's norm is the ``maximum``
  over its tensors;
- ``d = error / maximum(update, ε)``, replaced by ``+inf`` where ``error`` or
  ``update`` is not finite (``x - x == 0`` is the finiteness test);
- the segment's distance is the ``maximum`` of the group distances in group-name order.
"""

from __future__ import annotations

from collections.abc import Mapping

from agents.exact.kernels import Array
from agents.exact.ops import ExactOps
from agents.learning.distance import Metric, group_of
from agents.learning.layout import name_key


def _norm(
    E: ExactOps, a: Mapping[str, Array], b: Mapping[str, Array], names: list[str], metric: Metric
) -> Array:
    total: Array | None = None
    for name in names:
        numel = 1
        for d in a[name].shape:
            numel *= int(d)
        difference = E.reshape(E.sub(a[name], b[name]), [numel])
        if metric == "l2":
            part = E.sum(E.mul(difference, difference), 0)
            total = part if total is None else E.add(total, part)
        else:
            part = E.amax(E.abs(difference), 0)
            total = part if total is None else E.maximum(total, part)
    assert total is not None
    return E.sqrt(total) if metric == "l2" else total


def _finite(E: ExactOps, x: Array) -> Array:
    return E.eq(E.sub(x, x), 0.0)


def traced_distances(
    E: ExactOps,
    start: Mapping[str, Array],
    claimed: Mapping[str, Array],
    replayed: Mapping[str, Array],
    metric: Metric,
    epsilon: float,
) -> tuple[dict[str, float], float]:
    """Group distances and the segment distance (as Python floats of binary32 results)."""
    groups: dict[str, list[str]] = {}
    for name in sorted(claimed, key=name_key):
        group = group_of(name)
        if group is not None:
            groups.setdefault(group, []).append(name)
    out: dict[str, float] = {}
    segment: Array | None = None
    for group, names in sorted(groups.items()):
        error = _norm(E, replayed, claimed, names, metric)
        update = _norm(E, claimed, start, names, metric)
        d = E.div(error, E.maximum(update, epsilon))
        d = E.select(E.mul(_finite(E, error), _finite(E, update)), d, float("inf"))
        out[group] = float(E.to_numpy(d).reshape(-1)[0])
        segment = d if segment is None else E.maximum(segment, d)
    value = 0.0 if segment is None else float(E.to_numpy(segment).reshape(-1)[0])
    return out, value
