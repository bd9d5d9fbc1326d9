"""A verifier's report as the chain takes it: pure encoding of a verdict.

``reportVerification(task, report)`` takes exactly as many binary32 distances as the
task's sample has segments (``min(S, s + 2)``), in increasing segment order, then the
extra segments the verifier replayed (screening) with their distances, and a 32-byte
root; the pool's verdict is Pass iff every distance's bit pattern is at most τ's. The
encoding keeps that verdict equal to the verifier's:

- each replayed segment reports the bits the verdict rule gives it
  (``agents.learning.verdict``): exact mode ``+0`` or ``+inf`` by the roots, tolerant
  mode its binary32 distance; so the chain's verdict is the verifier's;
- the sampled segments' distances go first (``distances``), the extra ones after, with
  their indices (``extra_segments``, ``extra_distances``);
- a proof that a check rejected before any replay (an unreadable manifest, a
  checkpoint root other than the committed one, any check of the verifier)
  reports ``+inf`` for every segment;
- a check that failed after some replays passed adds one ``+inf``;
- ``fit`` cuts or pads the sample's distances to the expected count, always keeping the
  worst value;
- the trace roots root is the Merkle root over the segments' trace roots in report order
  (their replayed state roots where the backend does not trace), followed, when a check
  rejected the proof, by the commitment to its fault record
  (``agents.learning.faults``: ``sha256`` of the canonical record); with no replay
  it is that commitment alone. Never all zero (the pool refuses that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from agents.commitment import Root, merkle_root
from agents.exact.float32 import POSITIVE_INFINITY_BITS, from_bits32
from agents.learning import faults
from agents.learning.verifier import Verdict
from agents.roles.jobs import ReplayResult

UNREPLAYABLE = POSITIVE_INFINITY_BITS
"""Reported for a segment that could not be replayed: above every threshold."""
NO_TRACE = hashlib.sha256(b"veritrain/no-trace").digest()


def fit(distances: Sequence[int], expected: int) -> list[int]:
    """Exactly ``expected`` values, in order, always keeping the worst (it decides the verdict).

    More values than the pool takes: the first ``expected``, the last of them replaced by the
    worst if it was cut. Fewer: padded with the worst (``+inf`` when there is none).
    """
    if not distances:
        return [UNREPLAYABLE] * expected
    worst = max(distances, key=from_bits32)
    if len(distances) >= expected:
        kept = list(distances[:expected])
        if expected and worst not in kept:
            kept[-1] = worst
        return kept
    return [*distances, *[worst] * (expected - len(distances))]


def roots_root(roots: Sequence[bytes]) -> Root:
    """The Merkle root over ``roots`` (``NO_TRACE`` where that would be all zero)."""
    root = merkle_root(list(roots)) if roots else bytes(32)
    return Root(NO_TRACE if root == bytes(32) else root)


def fault_record(verdict: Verdict) -> bytes | None:
    """The fault record of a verdict a check decided (``None`` when none did)."""
    if verdict.fault is None:
        return None
    if verdict.manifest is None:
        raise ValueError("a fault record names the manifest: the verdict has none")
    return faults.record(verdict.fault, verdict.manifest)


def rejected(record: bytes, reasons: Sequence[str], expected: int) -> ReplayResult:
    """The report on a proof that a check rejected before any replay."""
    return ReplayResult(
        distances=(UNREPLAYABLE,) * expected,
        trace_roots_root=Root(faults.commitment(record)),
        verdict="fail",
        reasons=tuple(reasons),
        fault_record=record.decode(),
    )


def encode_report(verdict: Verdict, expected: int) -> ReplayResult:
    """The report of a verification (see the module docstring)."""
    record = fault_record(verdict)
    if verdict.reasons and not verdict.segments:
        if record is None:
            raise ValueError("a proof rejected without a replay has a fault")
        return rejected(record, verdict.reasons, expected)
    distances: list[int] = []
    extras: list[tuple[int, int]] = []
    sample_roots: list[bytes] = []
    extra_roots: list[bytes] = []
    for segment in verdict.segments:
        bits = segment.reported
        root = bytes.fromhex(segment.trace_root or segment.replay_root)
        if segment.sampled:
            distances.append(bits)
            sample_roots.append(root)
        else:
            extras.append((segment.index, bits))
            extra_roots.append(root)
    fault_roots = [] if record is None else [faults.commitment(record)]
    if verdict.reasons and all(s.passed for s in verdict.segments):
        distances.append(UNREPLAYABLE)  # a check failed after the replays: the report fails
    fitted = fit(distances, expected)
    extras.sort()
    failed = bool(verdict.reasons) or any(d == UNREPLAYABLE for d in fitted)
    return ReplayResult(
        distances=tuple(fitted),
        trace_roots_root=roots_root([*sample_roots, *extra_roots, *fault_roots]),
        verdict="fail" if failed else "pass",
        reasons=tuple(verdict.reasons),
        fault_record=None if record is None else record.decode(),
        extra_segments=tuple(i for i, _ in extras),
        extra_distances=tuple(d for _, d in extras),
    )
