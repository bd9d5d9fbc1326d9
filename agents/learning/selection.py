"""Which segments a verifier replays: the task's sample, drawn from the chain's randomness.

For a task of ``S`` segments that samples ``s`` random ones, the **sample** is
every segment when ``S ≤ s + 2``; otherwise the first segment, the last one, and
``s`` distinct middle segments (``1 … S − 2``) drawn from the 32-byte randomness
``R`` (on chain: fixed by the solver's seed and the verifier's secret hash, mixed
with the task id), all in increasing order. The first and the last segment are
always replayed: faking the first one moves every later state off the seed's
trajectory, and the last one ends in the model the submitter receives.

The draw reads the stream whose block ``j`` is
``sha256("veritrain/segments/2" || R || u64be(j))`` with the word and
``below(n)`` rules of ``agents.learning.prng``, and runs a partial Fisher–Yates
shuffle over ``pool[i] = i + 1`` for the ``m = S − 2`` middle segments:

    for i in 0 … s − 1:  r = i + below(m − i);  swap pool[i], pool[r]

``pool[0 … s − 1]`` are the draws. The contracts compute the same sample
(``contracts/lib/LibSample.sol``), so anyone recomputes it from chain data alone:
the randomness (``RandomnessDrawn``), ``S`` and ``s`` (``TaskSubmitted``).

Besides the sample, a verifier replays the segments screening flags
(``agents.learning.screening``); random sampling alone cannot stop a fake of one
segment into a cheap regime, and top-Q alone is gameable, which is why both are
used.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

from agents.learning.prng import Stream

DOMAIN = b"veritrain/segments/2"


def sample_count(segments: int, sampled: int) -> int:
    """How many segments the sample has: ``min(S, s + 2)``."""
    return min(segments, sampled + 2)


def sample_segments(randomness: bytes, segments: int, sampled: int) -> list[int]:
    """The task's sample for randomness ``R``, in increasing order (see the module docstring)."""
    if len(randomness) != 32:
        raise ValueError("randomness is 32 bytes")
    if segments < 1 or sampled < 0:
        raise ValueError(f"cannot sample {sampled} of {segments} segments")
    if segments <= sampled + 2:
        return list(range(segments))
    stream = Stream.keyed(DOMAIN + randomness)
    middle = segments - 2
    pool = list(range(1, segments - 1))
    for i in range(sampled):
        r = i + stream.below(middle - i)
        pool[i], pool[r] = pool[r], pool[i]
    return sorted([0, *pool[:sampled], segments - 1])


def largest_updates(update_norms: Sequence[float], exclude: Sequence[int], count: int) -> list[int]:
    """The ``count`` segments with the largest update norms, skipping ``exclude``."""
    skip = set(exclude)
    ranked = sorted(
        (i for i in range(len(update_norms)) if i not in skip),
        key=lambda i: (-update_norms[i], i),
    )
    return ranked[:count]


def detection_probability(segments: int, faked: int, sampled: int) -> float:
    """P(at least one faked segment is among ``sampled`` drawn uniformly without replacement)
    = 1 − C(S − F, s) / C(S, s)."""
    if sampled > segments:
        raise ValueError("cannot sample more segments than there are")
    return 1.0 - comb(segments - faked, sampled) / comb(segments, sampled)


def sample_detection(segments: int, faked: Sequence[int], sampled: int) -> float:
    """P(the task's sample holds at least one of the ``faked`` segments), over the randomness.

    The first and last segments are always in the sample; the ``s`` draws are uniform over
    the middle segments without replacement.
    """
    fakes = set(faked)
    if segments <= sampled + 2:
        return 1.0 if fakes else 0.0
    if 0 in fakes or segments - 1 in fakes:
        return 1.0
    return detection_probability(segments - 2, len(fakes), sampled)
