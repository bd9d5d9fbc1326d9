"""The data order: which samples every step of a task trains on, from the seed alone.

Epoch ``e`` is the permutation ``prng.permutation(seed, "order/epoch/<e>", N)`` of
the dataset's ``N`` samples (Fisher–Yates, see ``agents.learning.prng``). The
epochs are concatenated into one endless sequence of sample indices, and step
``t`` (counting from 0) trains on the ``B`` indices at positions
``t·B … t·B + B − 1`` of that sequence (a batch may straddle two epochs).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from agents.learning.prng import permutation


@lru_cache(maxsize=8)
def _epoch(seed: int, samples: int, epoch: int) -> np.ndarray:
    order = permutation(seed, f"order/epoch/{epoch}", samples)
    order.setflags(write=False)
    return order


def batch_indices(
    seed: int, samples: int, batch_size: int, first_step: int, count: int
) -> np.ndarray:
    """The sample indices of steps ``first_step … first_step + count − 1``, int64 ``[count, B]``."""
    if samples < 1:
        raise ValueError("a dataset needs at least one sample")
    start = first_step * batch_size
    stop = start + count * batch_size
    out = np.empty(stop - start, dtype=np.int64)
    position = start
    while position < stop:
        epoch, offset = divmod(position, samples)
        take = min(samples - offset, stop - position)
        out[position - start : position - start + take] = _epoch(seed, samples, epoch)[
            offset : offset + take
        ]
        position += take
    return out.reshape(count, batch_size)
