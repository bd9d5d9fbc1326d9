"""The report encoding, driven by tables: binary32 patterns, the distances a report carries for
every kind of verdict, its extra segments and its trace roots."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

from agents.commitment import Root
from agents.exact.float32 import from_bits32, to_bits
from agents.learning import faults
from agents.learning.verifier import Fault, SegmentVerdict, Verdict
from agents.roles.report import UNREPLAYABLE, encode_report, fit, no_trace

INF = float("inf")


@pytest.mark.parametrize(
    "value", [0.0, -0.0, 1.0, 1e-3, 3.4028234663852886e38, 1e-45, 0.1, 123456.789, 2.0**-149]
)
def test_to_bits_rounds_to_nearest(value: float) -> None:
    expected = int(np.float32(value).view(np.uint32))
    assert to_bits(value) == expected
    assert from_bits32(expected) == float(np.float32(value))


def test_to_bits_of_specials() -> None:
    assert to_bits(INF) == UNREPLAYABLE == 0x7F800000
    assert to_bits(-INF) == 0xFF800000
    assert to_bits(float("nan")) == 0x7FC00000
    assert to_bits(1e39) == UNREPLAYABLE  # overflows binary32
    assert to_bits(-1e39) == 0xFF800000
    assert struct.unpack("<f", UNREPLAYABLE.to_bytes(4, "little"))[0] == INF
    with pytest.raises(ValueError):
        from_bits32(1 << 32)


def test_codec_round_trips_random_patterns() -> None:
    patterns = np.random.default_rng(0).integers(0, 1 << 32, 20_000, dtype=np.uint64)
    for pattern in patterns:
        value = from_bits32(int(pattern))
        if value == value:  # NaNs become the canonical NaN
            assert to_bits(value) == int(pattern)
        else:
            assert to_bits(value) == 0x7FC00000


ONE, TWO, THREE = (to_bits(v) for v in (1.0, 2.0, 3.0))


@pytest.mark.parametrize(
    ("distances", "expected", "fitted"),
    [
        ([ONE, TWO, THREE], 3, [ONE, TWO, THREE]),
        ([THREE, ONE, TWO, ONE], 3, [THREE, ONE, TWO]),  # more than the pool takes: worst kept
        ([ONE, TWO, ONE, THREE], 2, [ONE, THREE]),
        ([TWO], 3, [TWO, TWO, TWO]),  # fewer: padded with the worst
        ([], 2, [UNREPLAYABLE, UNREPLAYABLE]),
    ],
)
def test_reports_carry_exactly_the_pools_count_and_keep_the_worst(
    distances: list[int], expected: int, fitted: list[int]
) -> None:
    out = fit(distances, expected)
    assert out == fitted
    if distances:
        assert max(map(from_bits32, out)) == max(map(from_bits32, distances))


def _segment(
    index: int, distance: float, passed: bool, trace: bytes | None, sampled: bool = True
) -> SegmentVerdict:
    # The bits agents.learning.verdict would give: the tolerant rule, or +inf for an exact fail.
    reported = to_bits(distance) if passed or distance > 0 else UNREPLAYABLE
    return SegmentVerdict(
        index=index,
        first_step=0,
        sampled=sampled,
        distance=distance,
        distances={"param": distance},
        claimed_root="aa" * 32,
        replay_root="bb" * 32,
        trace_root=None if trace is None else trace.hex(),
        passed=passed,
        reported=reported,
    )


T1, T2 = hashlib.sha256(b"1").digest(), hashlib.sha256(b"2").digest()
MANIFEST = "Qm" + "m" * 44


def test_a_passing_report() -> None:
    verdict = Verdict(
        1e-3, "exact", None, [0, 1], [_segment(0, 0.0, True, T1), _segment(1, 1e-4, True, T2)]
    )
    report = encode_report(verdict, 2)
    assert report.verdict == "pass" and report.distances == (0, to_bits(1e-4))
    assert report.trace_roots == (Root(T1), Root(T2))


def test_extra_segments_follow_the_sample_in_segment_order() -> None:
    T3 = hashlib.sha256(b"3").digest()
    segments = [
        _segment(0, 0.0, True, T1),
        _segment(9, 0.0, True, T2),
        _segment(7, 1e-4, True, T3, sampled=False),
        _segment(4, 0.0, True, T1, sampled=False),
    ]
    report = encode_report(Verdict(1e-3, "exact", None, [0, 9, 7, 4], segments), 2)
    assert report.distances == (0, 0)
    assert (report.extra_segments, report.extra_distances) == ((4, 7), (0, to_bits(1e-4)))
    assert report.trace_roots == (Root(T1), Root(T2), Root(T1), Root(T3))


def test_segments_without_a_trace_commit_their_replayed_state_root() -> None:
    verdict = Verdict(0.0, "native", None, [0], [_segment(0, 0.0, True, None)])
    report = encode_report(verdict, 1)
    assert report.trace_roots == (Root(bytes.fromhex("bb" * 32)),)


def test_a_failing_segment_posts_its_rulings_bits() -> None:
    # Exact mode, roots unequal at distance 0: the rule posts +inf; the worst pads the report.
    verdict = Verdict(0.0, "exact", None, [0], [_segment(0, 0.0, False, T1)])
    verdict.reasons.append("segment 0: the replay's state root differs from the claim")
    report = encode_report(verdict, 2)
    assert report.verdict == "fail" and report.distances == (UNREPLAYABLE, UNREPLAYABLE)


def test_a_reason_raised_after_passing_replays_fails_the_report() -> None:
    verdict = Verdict(1e-3, "exact", MANIFEST, [0], [_segment(0, 0.0, True, T1)])
    fault = Fault("inconsistent", 14, "Qm" + "c" * 44)
    verdict.reject("batches of segment 1 are not the seed's data order", fault)
    report = encode_report(verdict, 2)
    assert report.verdict == "fail" and report.distances == (0, UNREPLAYABLE)
    # The trace root of the replay, then the commitment to the fault record.
    record = faults.record(fault, MANIFEST)
    assert report.fault_record == record.decode()
    assert report.trace_roots == (Root(T1), Root(hashlib.sha256(record).digest()))


def test_a_rejection_before_any_replay_commits_to_its_fault_record() -> None:
    reason = "checkpoint 0 is not the initialization the seed fixes"
    fault = Fault("inconsistent", 2, "Qm" + "d" * 44)
    verdict = Verdict(0.0, "exact", MANIFEST).reject(reason, fault)
    report = encode_report(verdict, 3)
    assert report.distances == (UNREPLAYABLE,) * 3 and report.verdict == "fail"
    record = faults.record(fault, MANIFEST)
    assert report.trace_roots == (Root(hashlib.sha256(record).digest()),) * 3
    assert report.reasons == (reason,) and report.fault_record == record.decode()
    # Another fault, or the same fault in another proof, commits to another root.
    other = encode_report(Verdict(0.0, "exact", MANIFEST).reject(reason, Fault("structure")), 3)
    elsewhere = encode_report(Verdict(0.0, "exact", "Qm" + "e" * 44).reject(reason, fault), 3)
    assert len({report.trace_roots, other.trace_roots, elsewhere.trace_roots}) == 3


def test_a_rejection_needs_its_fault_and_manifest() -> None:
    with pytest.raises(ValueError, match="has a fault"):
        encode_report(Verdict(0.0, "exact", MANIFEST, reasons=["why"]), 1)
    with pytest.raises(ValueError, match="names the manifest"):
        encode_report(Verdict(0.0, "exact", None).reject("why", Fault("structure")), 1)


def test_a_sample_cut_short_is_padded_with_no_trace() -> None:
    verdict = Verdict(1e-3, "exact", None, [0], [_segment(0, 0.0, True, T1)])
    verdict.reasons.append("checkpoint 5 is unreadable")
    report = encode_report(verdict, 3)
    assert report.trace_roots == (Root(T1), no_trace(1), no_trace(2))


def test_a_sample_cut_to_the_pools_count_keeps_the_worst_segments_root() -> None:
    T3 = hashlib.sha256(b"3").digest()
    segments = [
        _segment(0, 0.0, True, T1),
        _segment(1, 0.0, True, T2),
        _segment(2, 0.5, False, T3),
    ]
    verdict = Verdict(1e-3, "exact", None, [0, 1, 2], segments)
    verdict.reasons.append("segment 2: the replay's state root differs from the claim")
    report = encode_report(verdict, 2)
    assert report.distances == (0, to_bits(0.5))
    assert report.trace_roots == (Root(T1), Root(T3))


def test_a_sample_cut_short_after_a_fault_reports_its_commitment() -> None:
    verdict = Verdict(1e-3, "exact", MANIFEST, [0], [_segment(0, 0.0, True, T1)])
    fault = Fault("unavailable", 7, "Qm" + "f" * 44)
    verdict.reject("checkpoint 5 cannot be had", fault)
    report = encode_report(verdict, 3)
    commitment = Root(faults.commitment(faults.record(fault, MANIFEST)))
    assert report.distances == (0, UNREPLAYABLE, UNREPLAYABLE)
    assert report.trace_roots == (Root(T1), commitment, commitment)
