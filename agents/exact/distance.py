"""The relative distance of PROTOCOL.md §3 in exact operations, so that it is part of the trace.

For one group of tensors (``agents.learning.distance`` decides the groups), with
the tensors of the three states given in the same order, in binary32 exact ops:

- l2: per tensor ``s = sum(flat((a - b)·(a - b)))``; the group's squared norm is
  the sequential sum of its tensors' ``s``; the norm is ``sqrt`` of it;
- linf: per tensor ``amax(flat(|a - b|))``; the group's norm is the ``maximum``
  over its tensors;
- ``d = error / maximum(update, ε)``, replaced by ``+inf`` where ``error`` or
  ``update`` is not finite (``x - x == 0`` is the finiteness test).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from agents.exact.kernels import Array
from agents.exact.ops import ExactOps

Metric = Literal["l2", "linf"]
METRICS: tuple[Metric, ...] = ("l2", "linf")


def norm_of_difference(
    E: ExactOps, a: Sequence[Array], b: Sequence[Array], metric: Metric
) -> Array:
    """``||a − b||`` over the tensors of ``a`` and ``b`` taken pairwise, concatenated, as a
    one-element array."""
    total: Array | None = None
    for x, y in zip(a, b, strict=True):
        numel = 1
        for d in x.shape:
            numel *= int(d)
        difference = E.reshape(E.sub(x, y), [numel])
        if metric == "l2":
            part = E.sum(E.mul(difference, difference), 0)
            total = part if total is None else E.add(total, part)
        else:
            part = E.amax(E.abs(difference), 0)
            total = part if total is None else E.maximum(total, part)
    if total is None:
        raise ValueError("a distance needs at least one tensor")
    return E.sqrt(total) if metric == "l2" else total


def _finite(E: ExactOps, x: Array) -> Array:
    return E.eq(E.sub(x, x), 0.0)


def relative_distance(
    E: ExactOps,
    start: Sequence[Array],
    claimed: Sequence[Array],
    replayed: Sequence[Array],
    metric: Metric,
    epsilon: float,
) -> Array:
    """``||replayed − claimed|| / max(||claimed − start||, ε)`` of one group (module docstring)."""
    error = norm_of_difference(E, replayed, claimed, metric)
    update = norm_of_difference(E, claimed, start, metric)
    d = E.div(error, E.maximum(update, epsilon))
    return E.select(E.mul(_finite(E, error), _finite(E, update)), d, float("inf"))
