"""The relative distance of PROTOCOL.md §3 in exact operations, so that it is part of the trace.

For one group of tensors (``agents.learning.distance`` decides the groups), with
the tensors of the three states (start ``S``, claimed end ``C``, replayed end
``R``) given in the same order, every step one binary32 exact op (docs/proof.md,
"Distances", is the normative statement):

1. finiteness: per tensor ``amax(flat(|x|))`` and, over the group's tensors, the
   ``maximum`` of those: ``m_R`` and ``m_C``; the group is finite when ``m`` is
   (``m − m == 0``; ``maximum`` propagates NaN, so one NaN or infinity anywhere
   makes ``m`` non-finite);
2. norms: l2: per tensor ``s = sum(flat((a − b)·(a − b)))``, the group's squared
   norm the sequential sum of its tensors' ``s`` from the first, the norm ``sqrt``
   of it; linf: per tensor ``amax(flat(|a − b|))``, then the ``maximum`` over the
   group: ``error = ||R − C||``, ``update = ||C − S||``;
3. ``d = error / maximum(update, ε)``;
4. ``d = +inf`` where ``error`` or ``update`` is not finite;
5. ``d = +inf`` where exactly one of ``R`` and ``C`` is finite, and ``d = +0`` where
   neither is (both diverged: a replay that diverges as the claim did matches it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from agents.exact.kernels import Array
from agents.exact.ops import ExactOps

Metric = Literal["l2", "linf"]
METRICS: tuple[Metric, ...] = ("l2", "linf")


def _flat(E: ExactOps, x: Array) -> Array:
    numel = 1
    for d in x.shape:
        numel *= int(d)
    return E.reshape(x, [numel])


def norm_of_difference(
    E: ExactOps, a: Sequence[Array], b: Sequence[Array], metric: Metric
) -> Array:
    """``||a − b||`` over the tensors of ``a`` and ``b`` taken pairwise, concatenated, as a
    one-element array."""
    total: Array | None = None
    for x, y in zip(a, b, strict=True):
        difference = _flat(E, E.sub(x, y))
        if metric == "l2":
            part = E.sum(E.mul(difference, difference), 0)
            total = part if total is None else E.add(total, part)
        else:
            part = E.amax(E.abs(difference), 0)
            total = part if total is None else E.maximum(total, part)
    if total is None:
        raise ValueError("a distance needs at least one tensor")
    return E.sqrt(total) if metric == "l2" else total


def largest_magnitude(E: ExactOps, tensors: Sequence[Array]) -> Array:
    """The ``maximum`` of ``|x|`` over every element of ``tensors``: NaN when one is NaN,
    ``+inf`` when one is infinite (and none is NaN)."""
    total: Array | None = None
    for x in tensors:
        part = E.amax(E.abs(_flat(E, x)), 0)
        total = part if total is None else E.maximum(total, part)
    if total is None:
        raise ValueError("a distance needs at least one tensor")
    return total


def finite(E: ExactOps, x: Array) -> Array:
    """``1.0`` where ``x`` is finite, ``0.0`` where it is NaN or infinite (``x − x == 0``)."""
    return E.eq(E.sub(x, x), 0.0)


def relative_distance(
    E: ExactOps,
    start: Sequence[Array],
    claimed: Sequence[Array],
    replayed: Sequence[Array],
    metric: Metric,
    epsilon: float,
) -> Array:
    """The relative distance of one group (module docstring), a one-element array."""
    replay_finite = finite(E, largest_magnitude(E, replayed))
    claim_finite = finite(E, largest_magnitude(E, claimed))
    error = norm_of_difference(E, replayed, claimed, metric)
    update = norm_of_difference(E, claimed, start, metric)
    d = E.div(error, E.maximum(update, epsilon))
    d = E.select(E.mul(finite(E, error), finite(E, update)), d, float("inf"))
    # Both finite: d. Exactly one: +inf. Neither: +0.
    both = E.mul(replay_finite, claim_finite)
    either = E.maximum(replay_finite, claim_finite)
    return E.select(both, d, E.select(either, float("inf"), 0.0))
