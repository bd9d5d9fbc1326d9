"""A verifier's report as the chain takes it: pure encoding of a verdict.

``reportVerification(task, report)`` takes exactly as many binary32 distances as the
task's sample has segments (``min(S, s + 2)``), in increasing segment order, then the
extra segments the verifier replayed (screening) with their distances, one 32-byte
trace root per reported segment and a seal; the pool's verdict is Pass iff every
distance's bit pattern is at most τ's. The encoding keeps that verdict equal to the
verifier's:

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
- one trace root per reported segment, in report order (the replayed state root where the
  backend does not trace); a segment that was not replayed (a rejection before replay,
  a check that failed after the replays, padding) reports the commitment to the fault
  record the check wrote (``agents.learning.faults``: ``sha256`` of the canonical record),
  or ``no_trace(position)`` when there is none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from agents.commitment import Root
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


def no_trace(position: int) -> Root:
    """The trace root reported for a segment that was not replayed."""
    return Root(hashlib.sha256(NO_TRACE + position.to_bytes(4, "big")).digest())


def fault_record(verdict: Verdict) -> bytes | None:
    """The fault record of a verdict a check decided (``None`` when none did)."""
    if verdict.fault is None:
        return None
    if verdict.manifest is None:
        raise ValueError("a fault record names the manifest: the verdict has none")
    return faults.record(verdict.fault, verdict.manifest)


def rejected(record: bytes, reasons: Sequence[str], expected: int) -> ReplayResult:
    """The report on a proof that a check rejected before any replay: every segment
    reports ``+inf`` and the commitment to the fault record."""
    commitment = Root(faults.commitment(record))
    return ReplayResult(
        distances=(UNREPLAYABLE,) * expected,
        trace_roots=(commitment,) * expected,
        verdict="fail",
        reasons=tuple(reasons),
        fault_record=record.decode(),
    )


def fault_root(result: ReplayResult) -> Root | None:
    """The commitment to the fault record a report rests on (``None`` for a report that rests
    on replays alone). Such a report goes to the pool as a fault report (``reportFault``):
    every sampled position ``+inf`` and this root, whatever the replays before the fault."""
    if result.fault_record is None:
        return None
    return Root(faults.commitment(result.fault_record.encode()))


def true_roots(result: ReplayResult) -> tuple[Root, ...]:
    """The trace roots a verifier seals and reveals for ``result``: a fault report's are its
    fault root at every sampled position; a replay's, its roots."""
    root = fault_root(result)
    if root is None:
        return result.trace_roots
    return (root,) * len(result.distances)


def encode_report(verdict: Verdict, expected: int) -> ReplayResult:
    """The report of a verification (see the module docstring)."""
    record = fault_record(verdict)
    if verdict.reasons and not verdict.segments:
        if record is None:
            raise ValueError("a proof rejected without a replay has a fault")
        return rejected(record, verdict.reasons, expected)
    sample: list[tuple[int, Root]] = []
    extras: list[tuple[int, int, Root]] = []
    for segment in verdict.segments:
        bits = segment.reported
        root = Root(bytes.fromhex(segment.trace_root or segment.replay_root))
        if segment.sampled:
            sample.append((bits, root))
        else:
            extras.append((segment.index, bits, root))
    unreplayed = None if record is None else Root(faults.commitment(record))
    if verdict.reasons and all(s.passed for s in verdict.segments):
        # a check failed after the replays: the report fails, on the fault's commitment
        sample.append((UNREPLAYABLE, unreplayed or no_trace(len(sample))))
    fitted = fit([bits for bits, _ in sample], expected)
    roots = [root for _, root in sample[:expected]]
    if len(sample) > expected and fitted[-1] != sample[expected - 1][0]:
        roots[-1] = sample[[bits for bits, _ in sample].index(fitted[-1])][1]
    roots += [unreplayed or no_trace(i) for i in range(len(roots), expected)]
    extras.sort()
    failed = bool(verdict.reasons) or any(d == UNREPLAYABLE for d in fitted)
    return ReplayResult(
        distances=tuple(fitted),
        trace_roots=(*roots, *(root for _, _, root in extras)),
        verdict="fail" if failed else "pass",
        reasons=tuple(verdict.reasons),
        fault_record=None if record is None else record.decode(),
        extra_segments=tuple(i for i, _, _ in extras),
        extra_distances=tuple(d for _, d, _ in extras),
    )
