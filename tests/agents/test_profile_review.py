"""The submitter's review of a profile: its checks of the artifact, its decision to accept or
reject (paying the rejection fee), and solvers waiting for the review to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from agents.chain.abi import DecodedLog
from agents.exact.float32 import to_bits
from agents.node.config import SolverPolicy
from agents.roles import solver, submitter
from agents.roles.admission import examine_profile
from agents.roles.situation import ProfileReview, Situation
from agents.roles.tasks import TaskView, fold
from agents.store import open_store
from tests.agents.test_decisions import ME, NOW, OTHER, PARAMS, Case, show, task

TAU = to_bits(1e-2)
FEES = dataclasses.replace(PARAMS, profile_rejection_fee_bps=150)


def reviewed(**fields: Any) -> TaskView:
    """The task of ``ME``, open with its first profile under review for 30 more seconds."""
    base: dict[str, Any] = {
        "submitter": ME,
        "mode": "tolerant",
        "threshold": TAU,
        "profiler": OTHER,
        "profile_cid": "QmProfile",
        "profiles": 1,
        "review_deadline": NOW + 30,
        "deadline": NOW + 1_000,
    }
    base.update(fields)
    return task(**base)


def situation(view: TaskView, problem: str | None = None, **case: Any) -> Situation:
    base = Case("", [view], [], params=FEES, **case).situation()
    profiles = {} if problem == "unchecked" else {1: ProfileReview("QmProfile", problem)}
    return dataclasses.replace(base, profiles=profiles)


def test_a_profile_that_passes_the_checks_is_accepted_at_once() -> None:
    assert show(submitter.decide(situation(reviewed()))) == ["send review/1/1 acceptProfile(1,)"]


def test_a_profile_that_fails_them_is_rejected_with_the_fee() -> None:
    actions = submitter.decide(situation(reviewed(), "τ = +0 fails every honest tolerant proof"))
    assert show(actions) == ["send review/1/1 rejectProfile(1,) value=15"]  # 1.5 % of 1000


@pytest.mark.parametrize(
    ("name", "view", "problem", "journal"),
    [
        ("not checked yet", reviewed(), "unchecked", {}),
        ("checked an earlier profile", reviewed(profile_cid="QmSecond", profiles=2), None, {}),
        ("decided already", reviewed(), None, {"review/1/1": "mined"}),
        ("too close to the review deadline", reviewed(review_deadline=NOW), None, {}),
        ("the review is over", reviewed(review_deadline=NOW - 5), None, {}),
        ("accepted already", reviewed(review_deadline=0), None, {}),
        ("another submitter's task", reviewed(submitter=OTHER), None, {}),
        ("not open", reviewed(status="Training"), None, {}),
    ],
)
def test_no_review_decision(
    name: str, view: TaskView, problem: str | None, journal: dict[str, str]
) -> None:
    actions = submitter.decide(situation(view, problem, journal=journal))
    assert not [a for a in show(actions) if "Profile" in a], name


def test_the_second_profile_has_a_decision_of_its_own() -> None:
    view = reviewed(profile_cid="QmProfile", profiles=2)
    actions = submitter.decide(situation(view, journal={"review/1/1": "mined"}))
    assert show(actions) == ["send review/1/2 acceptProfile(1,)"]


def test_solvers_wait_for_the_review_to_end() -> None:
    policy = SolverPolicy(max_rejection_risk=None)
    claims = "send claim/1 claim(1,) value=2000"
    others = {"submitter": OTHER}
    for view, expected in [
        (reviewed(**others), []),
        (reviewed(review_deadline=NOW - 1, **others), []),  # within the margin
        (reviewed(review_deadline=NOW - 2, **others), [claims]),
        (reviewed(review_deadline=0, **others), [claims]),  # accepted
    ]:
        actions = solver.decide(Case("", [view], []).situation(), policy)
        assert show(actions) == expected, view.review_deadline


# -- the checks of a profile artifact --------------------------------------------------------


def test_examine_profile(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")

    def put(document: Any) -> str:
        raw = document if isinstance(document, bytes) else json.dumps(document).encode()
        return store.put_bytes(raw)

    good = put({"spec": "QmSpec", "tau": 1e-2, "max_drift": 3e-5})
    view = reviewed(profile_cid=good)
    assert examine_profile(store, view) == ProfileReview(good, None)
    problems = {
        "zero τ": examine_profile(store, reviewed(profile_cid=good, threshold=0)).problem,
        "other τ": examine_profile(store, reviewed(profile_cid=good, threshold=TAU + 1)).problem,
        "other spec": examine_profile(
            store, reviewed(profile_cid=put({"spec": "QmOther", "tau": 1e-2}))
        ).problem,
        "no τ": examine_profile(store, reviewed(profile_cid=put({"spec": "QmSpec"}))).problem,
        "τ as text": examine_profile(
            store, reviewed(profile_cid=put({"spec": "QmSpec", "tau": "0.01"}))
        ).problem,
        "a list": examine_profile(store, reviewed(profile_cid=put([1, 2]))).problem,
        "not JSON": examine_profile(store, reviewed(profile_cid=put(b"\xff\x00"))).problem,
        "absent": examine_profile(
            store, reviewed(profile_cid="QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
        ).problem,
        "no CID": examine_profile(store, reviewed(profile_cid=None)).problem,
    }
    assert all(problems.values()), problems
    assert "+0" in str(problems["zero τ"]) and "QmOther" in str(problems["other spec"])


# -- the events of a review ------------------------------------------------------------------


def log(index: int, name: str, **args: Any) -> DecodedLog:
    return DecodedLog("TaskPool", name, {"taskId": 1, **args}, "0xPool", index, "0xb", 0, "0xt")


SUBMITTED = log(1, "TaskSubmitted", submitter=ME, mode=1, bounty=1000, protocolFee=10,
                specHash="0x" + "11" * 32, programRoot="0x" + "11" * 32, segments=10,
                sampledSegments=5, thresholdBound=TAU, specCid="QmSpec", trainingWindow=60,
                deadline=100)  # fmt: skip
PROFILED = log(2, "TaskProfiled", profiler=OTHER, threshold=TAU, profileCid="QmP", stake=100,
               deadline=900, reviewDeadline=130)  # fmt: skip


def test_a_review_as_the_events_tell_it() -> None:
    view = fold(1, [SUBMITTED, PROFILED])
    assert (view.status, view.review_deadline, view.profiles) == ("Open", 130, 1)
    accepted = log(3, "ProfileAccepted", profiler=OTHER, threshold=TAU, deadline=900)
    view = fold(1, [SUBMITTED, PROFILED, accepted])
    assert (view.status, view.review_deadline, view.deadline) == ("Open", 0, 900)
    rejected = log(3, "ProfileRejected", profiler=OTHER, refund=100, fee=15, deadline=400)
    view = fold(1, [SUBMITTED, PROFILED, rejected])
    assert (view.status, view.deadline, view.profiler, view.threshold) == (
        "Submitted",
        400,
        None,
        0,
    )
    assert view.rejected_profiles == [(OTHER, 100)] and view.review_deadline == 0
    again = log(4, "TaskProfiled", profiler=ME, threshold=TAU, profileCid="QmQ", stake=100,
                deadline=1900, reviewDeadline=1100)  # fmt: skip
    view = fold(1, [SUBMITTED, PROFILED, rejected, again])
    assert (view.status, view.profiler, view.profiles, view.review_deadline) == (
        "Open", ME, 2, 1100
    )  # fmt: skip
