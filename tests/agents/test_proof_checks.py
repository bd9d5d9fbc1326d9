"""The whistleblower checks the solver's proof itself, outside the sample: which tasks and
segments it draws, how it replays them, and when it challenges the proof (table tests)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from agents.chain.abi import ContractInterface
from agents.node.config import WhistleblowerPolicy
from agents.roles import whistleblower
from agents.roles.challenges import traced_segments
from agents.roles.jobs import OpeningJob
from agents.roles.situation import Start, WorkState
from agents.roles.whistleblower import proof_draw, proof_segments
from tests.agents.test_decisions import ME, Case, secret_of, show, task
from tests.agents.test_whistleblower import (
    BOND,
    FAIL,
    LIE,
    MIDDLE,
    SAMPLE,
    UNSAMPLED,
    WITH_BOND,
    opening,
    proof_line,
    replayed,
    report_line,
    reported,
    traced,
)

# Every task drawn, every segment replayed: which segments is then no draw's business.
EVERY = WhistleblowerPolicy(recheck_share=0.0, proof_share=1.0, proof_segments=6)
# The same, and the report re-checked too (the sample is then left to the re-check).
BOTH = WhistleblowerPolicy(recheck_share=1.0, proof_share=1.0, proof_segments=6)
ALL_SEGMENTS = range(6)


def checked(distances: dict[int, int] | None = None, *segments: int) -> dict[str, WorkState]:
    """Finished traces of ``segments`` (every one by default), +0 unless ``distances`` says."""
    distances = distances or {}
    work: dict[str, WorkState] = {}
    for segment in segments or ALL_SEGMENTS:
        work.update(traced(segment, distances.get(segment, 0)))
    return work


def state(segment: int, status: str) -> dict[str, WorkState]:
    key = f"opening/1/{segment}"
    return {key: WorkState(key, status)}


CASES: list[tuple[Case, WhistleblowerPolicy]] = [
    (
        Case(
            "every replayed segment passes: nothing",
            [reported()],
            [],
            work=checked(),
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "a segment outside the sample fails (the report passed it unseen): challengeProof",
            [reported()],
            [proof_line(UNSAMPLED[0])],
            work=checked({UNSAMPLED[0]: FAIL}),
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "without a re-check of the report, sampled segments are checked too",
            [reported()],
            [proof_line(MIDDLE)],
            work=checked({MIDDLE: FAIL}),
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "a replay still running: waits (one at a time)",
            [reported()],
            [],
            work={**checked({}, *UNSAMPLED[1:], *SAMPLE), **state(UNSAMPLED[0], "running")},
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "restarted mid replay: replays that segment again",
            [reported()],
            [f"start opening opening/1/{UNSAMPLED[0]}"],
            work={**checked({}, *UNSAMPLED[1:], *SAMPLE), **state(UNSAMPLED[0], "interrupted")},
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "a replay that failed for good proves nothing: the next failing segment is taken",
            [reported()],
            [proof_line(UNSAMPLED[1])],
            work={
                **checked({UNSAMPLED[1]: FAIL}, *UNSAMPLED[1:], *SAMPLE),
                **state(UNSAMPLED[0], "failed"),
            },
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "the verification is still running: replays, but challenges only in the window",
            [reported("Verifying")],
            [],
            work=checked({UNSAMPLED[0]: FAIL}),
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "the challenge window has passed: too late",
            [reported(deadline=999)],
            [],
            work=checked({UNSAMPLED[0]: FAIL}),
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "tolerant: a distance of exactly τ passes",
            [reported(threshold=0x3A83126F)],
            [],
            work=checked({UNSAMPLED[0]: 0x3A83126F}),
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "tolerant: one ulp above τ fails",
            [reported(threshold=0x3A83126F)],
            [proof_line(UNSAMPLED[0])],
            work=checked({UNSAMPLED[0]: 0x3A831270}),
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "exact: the smallest distance from the claimed end fails",
            [reported(threshold=0)],
            [proof_line(UNSAMPLED[0])],
            work=checked({UNSAMPLED[0]: 1}),
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "a task not drawn (share 0): no segment replayed, nothing challenged",
            [reported()],
            [],
            work=checked({UNSAMPLED[0]: FAIL}),
            params=WITH_BOND,
        ),
        EVERY.model_copy(update={"proof_share": 0.0}),
    ),
    (
        Case(
            "proof_segments 0: nothing",
            [reported()],
            [],
            work=checked({UNSAMPLED[0]: FAIL}),
            params=WITH_BOND,
        ),
        EVERY.model_copy(update={"proof_segments": 0}),
    ),
    (
        Case(
            "with a re-check: the failing unsampled segment is challenged once it agrees",
            [reported()],
            [proof_line(UNSAMPLED[0])],
            work={**replayed(), **checked({UNSAMPLED[0]: FAIL}, *UNSAMPLED)},
            params=WITH_BOND,
        ),
        BOTH,
    ),
    (
        Case(
            "with a re-check: the sample is the re-check's, not replayed again",
            [reported()],
            [],
            work={**replayed(), **checked({}, *UNSAMPLED)},
            params=WITH_BOND,
        ),
        BOTH,
    ),
    (
        Case(
            "the report's lie comes first: the report is challenged, not the proof",
            [reported(**LIE)],
            [report_line(MIDDLE)],
            work={
                **replayed(),
                **traced(MIDDLE),
                **checked({UNSAMPLED[0]: FAIL}, *UNSAMPLED),
            },
            params=WITH_BOND,
        ),
        BOTH,
    ),
    (
        Case(
            "the re-check still runs: the proof challenge waits for it",
            [reported()],
            [],
            work={
                "recheck/1/0": WorkState("recheck/1/0", "running"),
                **checked({UNSAMPLED[0]: FAIL}, *UNSAMPLED),
            },
            params=WITH_BOND,
        ),
        BOTH,
    ),
    (
        Case(
            "the re-check runs: no segment of the proof is replayed beside it",
            [reported("Verifying")],
            [],
            work={"recheck/1/0": WorkState("recheck/1/0", "running")},
            params=WITH_BOND,
        ),
        BOTH,
    ),
    (
        Case(
            "the re-check is done before the report: the proof's segments are replayed meanwhile",
            [reported("Verifying")],
            [f"start opening opening/1/{s}" for s in UNSAMPLED[:1]],
            work={**replayed(), **checked({}, *UNSAMPLED[1:])},
            params=WITH_BOND,
        ),
        BOTH,
    ),
    (
        Case(
            "the report lies: only the disputed segment is traced, the proof is left alone",
            [reported(**LIE)],
            [f"start opening opening/1/{MIDDLE}"],
            work=replayed(),
            params=WITH_BOND,
        ),
        BOTH,
    ),
    (
        Case(
            "challenged this round already: no more replays, no second challenge",
            [reported()],
            [],
            work=checked({UNSAMPLED[0]: FAIL}, UNSAMPLED[0]),
            journal={f"challenge/1/0/{SAMPLE[0]}": "mined"},
            params=WITH_BOND,
        ),
        EVERY,
    ),
    (
        Case(
            "the budget is held by another challenge: no challenge",
            [reported(), task(2, "ChallengeWindow")],
            [],
            work=checked({UNSAMPLED[0]: FAIL}),
            journal={"challenge/2/0/3": "mined"},
            params=WITH_BOND,
        ),
        EVERY.model_copy(update={"budget_wei": BOND}),
    ),
    (
        Case(
            "a task this account solved: not checked",
            [reported(solver=ME)],
            [],
            work=checked({UNSAMPLED[0]: FAIL}),
            params=WITH_BOND,
        ),
        EVERY,
    ),
]


@pytest.mark.parametrize(("case", "policy"), CASES, ids=[c.name for c, _ in CASES])
def test_proof_checks(
    case: Case, policy: WhistleblowerPolicy, pool_interface: ContractInterface
) -> None:
    assert show(whistleblower.decide(case.situation(pool_interface), policy)) == case.expected


def test_the_segments_are_replayed_one_at_a_time_from_the_committed_proof() -> None:
    """From nothing: one opening job of the committed proof; once each passes, the next one,
    until every drawn segment was replayed once."""
    case = Case("", [reported()], [], params=WITH_BOND)
    seen: list[int] = []
    work: dict[str, WorkState] = {}
    for _ in range(6):
        (action,) = whistleblower.decide(dataclasses.replace(case, work=work).situation(), EVERY)
        assert isinstance(action, Start) and isinstance(action.inputs, OpeningJob)
        job = action.inputs
        assert (job.spec_cid, job.proof_cid, job.lie) == ("QmSpec", "QmProof", "")
        seen.append(job.segment)
        work.update(traced(job.segment))
    assert sorted(seen) == list(ALL_SEGMENTS)
    assert whistleblower.decide(dataclasses.replace(case, work=work).situation(), EVERY) == []


def test_the_segments_drawn_are_outside_the_recheck_and_depend_on_the_key() -> None:
    view = reported()
    situation = Case("", [view], []).situation()
    policy = WhistleblowerPolicy(proof_share=1.0, proof_segments=3)
    with_recheck = proof_segments(situation, view, policy, rechecked=True)
    assert len(with_recheck) == len(set(with_recheck)) == min(3, len(UNSAMPLED))
    assert not set(with_recheck) & set(SAMPLE)
    alone = proof_segments(situation, view, policy, rechecked=False)
    assert len(alone) == len(set(alone)) == 3 and set(alone) <= set(ALL_SEGMENTS)
    # Over many tasks of 100 segments, the segments drawn are spread over all of them, and
    # another key draws other ones.
    big = dataclasses.replace(view, segments=100, sampled_segments=2)

    def drawn(secret: Any) -> list[frozenset[int]]:
        out = []
        for t in range(200):
            v = dataclasses.replace(big, task_id=t)
            s = dataclasses.replace(situation, tasks={t: v}, secret=secret)
            out.append(frozenset(proof_segments(s, v, policy, rechecked=True)))
        return out

    mine = drawn(secret_of)
    other = drawn(lambda t, r: b"\x07" * 32 + bytes([t % 256, r]))
    assert len(set().union(*mine)) > 90  # 600 draws over 98 unsampled segments
    assert sum(a == b for a, b in zip(mine, other, strict=True)) < 5


def test_the_share_of_tasks_checked_is_the_policys() -> None:
    share, n = 0.25, 4000
    drawn = [proof_draw(secret_of(t % 250, t // 250), t, 0) < share for t in range(n)]
    assert abs(sum(drawn) / n - share) < 0.03
    # The task's draw and a segment's are not the same number.
    assert proof_draw(b"k" * 32, 1, 0) != proof_draw(b"k" * 32, 1, 0, 0)


def test_traced_segments_count_by_result() -> None:
    view = reported(threshold=10)
    work = {
        **traced(0, 10),
        **traced(1, 11),
        **traced(2, 0),
        **state(3, "running"),
        **state(4, "failed"),
        "replay/1": WorkState("replay/1", "done", opening(5)),  # not an opening's key
    }
    situation = Case("", [view], [], work=work).situation()
    assert traced_segments(situation) == {"pass": 2, "fail": 1, "running": 1, "error": 1}
