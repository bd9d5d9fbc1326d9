"""Which segments a verifier replays: drawn from the chain's randomness, plus the largest updates.

Given the 32-byte randomness ``R`` (on chain: a value that appears only after
the solver's commit, already mixed with the task id) and the spec hash ``H``,
the draw reads the stream whose block ``j`` is
``sha256("veritrain/segments/1" || R || H || u64be(j))`` with the word and
``below(n)`` rules of ``agents.learning.prng``, and runs a partial Fisher–Yates
shuffle over ``pool = [0, 1, …, S − 1]``:

    for i in 0 … s − 1:  r = i + below(S − i);  swap pool[i], pool[r]

The first ``s`` entries of ``pool`` are the sampled segments: ``s`` of the ``S``
segments uniformly without replacement. Then ``q`` more segments are added:
those with the largest parameter update ``||w_{i+1} − w_i||₂`` among the ones not
sampled (ties to the lower index; a NaN update ranks as the largest). Top-``q``
alone is gameable, random sampling is not, which is why both are used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agents.learning.prng import Stream

DOMAIN = b"veritrain/segments/1"


def sample_segments(randomness: bytes, spec_hash: bytes, segments: int, count: int) -> list[int]:
    """The ``count`` segments drawn for (randomness, task), in draw order."""
    if len(randomness) != 32 or len(spec_hash) != 32:
        raise ValueError("randomness and spec hash are 32 bytes each")
    if not 0 <= count <= segments:
        raise ValueError(f"cannot sample {count} of {segments} segments")
    stream = Stream.keyed(DOMAIN + randomness + spec_hash)
    pool = list(range(segments))
    for i in range(count):
        r = i + stream.below(segments - i)
        pool[i], pool[r] = pool[r], pool[i]
    return pool[:count]


def largest_updates(update_norms: Sequence[float], exclude: Sequence[int], count: int) -> list[int]:
    """The ``count`` segments with the largest update norms, skipping ``exclude``.

    A NaN norm (a checkpoint holding NaN) ranks as the largest, like +inf, so the
    order is a total one and the same for everyone.
    """
    skip = set(exclude)

    def key(i: int) -> tuple[float, int]:
        norm = update_norms[i]
        return (-math.inf if math.isnan(norm) else -norm, i)

    ranked = sorted((i for i in range(len(update_norms)) if i not in skip), key=key)
    return ranked[:count]


def detection_probability(segments: int, faked: int, sampled: int) -> float:
    """P(at least one faked segment is sampled) = 1 − C(S − F, s) / C(S, s)."""
    from math import comb

    if sampled > segments:
        raise ValueError("cannot sample more segments than there are")
    return 1.0 - comb(segments - faked, sampled) / comb(segments, sampled)
