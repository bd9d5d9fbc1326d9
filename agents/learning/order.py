"""The data order: which samples every step of a task trains on, from the seed alone.

Epoch ``e`` is the permutation ``prng.permutation(seed, "order/epoch/<e>", N)`` of
the dataset's ``N`` samples (Fisher–Yates, see ``agents.learning.prng``). The
epochs are concatenated into one endless sequence of sample indices, and step
``t`` (counting from 0) trains on the ``B`` indices at positions
``t·B … t·B + B − 1`` of that sequence (a batch may straddle two epochs).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from agents.learning.prng import permutations

# The epochs computed last are kept (a run of consecutive segments shares the epoch that
# straddles them); those not kept are computed together, about _SLAB_SAMPLES samples of
# them at a time (at least one epoch).
_KEEP = 8
_SLAB_SAMPLES = 1 << 19
_kept: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
_lock = threading.Lock()


def _epochs(seed: int, samples: int, first: int, stop: int) -> list[np.ndarray]:
    """Epochs ``first … stop − 1`` (read-only arrays)."""
    with _lock:
        found = {e: _kept.get((seed, samples, e)) for e in range(first, stop)}
    missing = [e for e, order in found.items() if order is None]
    per_slab = max(1, _SLAB_SAMPLES // samples)
    for at in range(0, len(missing), per_slab):
        slab = missing[at : at + per_slab]
        rows = permutations(seed, [f"order/epoch/{e}" for e in slab], samples)
        rows.setflags(write=False)
        for e, row in zip(slab, rows, strict=True):
            found[e] = row
    with _lock:
        for e in range(max(first, stop - _KEEP), stop):
            order = found[e]
            assert order is not None
            _kept[(seed, samples, e)] = order
            _kept.move_to_end((seed, samples, e))
        while len(_kept) > _KEEP:
            _kept.popitem(last=False)
    return [order for order in found.values() if order is not None]


def batch_indices(
    seed: int, samples: int, batch_size: int, first_step: int, count: int
) -> np.ndarray:
    """The sample indices of steps ``first_step … first_step + count − 1``, int64 ``[count, B]``."""
    if samples < 1:
        raise ValueError("a dataset needs at least one sample")
    start = first_step * batch_size
    stop = start + count * batch_size
    out = np.empty(stop - start, dtype=np.int64)
    if stop > start:
        first = start // samples
        epochs = _epochs(seed, samples, first, (stop - 1) // samples + 1)
        offset = start - first * samples
        position = 0
        for order in epochs:
            take = min(samples - offset, out.size - position)
            out[position : position + take] = order[offset : offset + take]
            position += take
            offset = 0
    return out.reshape(count, batch_size)
