"""Fault reports in the agents' decisions (pure: no chain, no store): the verifier reports a
proof a check rejected with ``reportFault`` and reveals its record's commitment; a solver
answers a fault report by publishing a sampled start state in every verification round, the
last one included (there it settles the task Unverified instead of Failed), and only when it
can stand behind its proof; no checker plays a game on one."""

from __future__ import annotations

import dataclasses
from typing import Any

from agents.chain.abi import ContractInterface
from agents.commitment import Root
from agents.learning import faults
from agents.node.config import SolverPolicy, VerifierPolicy
from agents.roles import intents, solver, verifier
from agents.roles.challenges import disagreements
from agents.roles.jobs import PublicationJob, PublicationResult, ReplayResult, result_from_json
from agents.roles.record import history
from agents.roles.report import fault_root, true_roots
from agents.roles.shares import forced_roots, seal
from agents.roles.situation import Send, Start, WorkState
from agents.roles.tasks import TaskView, apply
from tests.agents.test_decisions import ME, NOW, OTHER, PARAMS, ROOT, Case, secret_of, task
from tests.agents.test_reveals import (
    CLAIMED,
    COMMITTED,
    DRAWN,
    SUBMITTED,
    VERIFYING,
    entry,
)

RECORD = (
    b'{"cid":"QmBatches","format":"veritrain-fault/1","kind":"malformed",'
    b'"manifest":"QmProof","position":4}'
)
COMMITMENT = Root(faults.commitment(RECORD))
ROUNDS = dataclasses.replace(PARAMS, max_verification_rounds=3)
FORCING = dataclasses.replace(ROUNDS, forced_error_ppm=1_000_000)
INFINITY = 0x7F800000
# Randomness whose sample of 10 segments (s = 5 drawn, 7 in all) ends with segment 9.
H = "0x" + "22" * 32


def rejected(count: int = 3, roots: tuple[Root, ...] | None = None) -> dict[str, WorkState]:
    """A replay a check rejected: +inf everywhere, the record's commitment (or ``roots``)."""
    result = ReplayResult(
        (INFINITY,) * count,
        roots or (COMMITMENT,) * count,
        "fail",
        reasons=("batches 4: first_step is not a number",),
        fault_record=RECORD.decode(),
    )
    return {"replay/1": WorkState("replay/1", "done", result)}


def verifying(**fields: Any) -> TaskView:
    return task(status="Verifying", solver=OTHER, verifier=ME, randomness=H, **fields)


def test_a_rejected_proof_is_reported_as_a_fault_report() -> None:
    case = Case("", [verifying()], [], work=rejected(), params=ROUNDS)
    (action,) = verifier.decide(case.situation(), VerifierPolicy())
    assert isinstance(action, Send)
    assert action.intent.key == "report/1/0" and action.intent.function == "reportFault"
    sealed = seal(secret_of(1, 0), [COMMITMENT] * 3)
    assert action.intent.args == (1, COMMITMENT.chain, sealed.chain)


def test_a_fault_found_after_some_replays_is_a_fault_report_too() -> None:
    """The replays before the fault name traces at some positions, but the report rests on
    the record: no position of it can be played in a game."""
    mixed = (Root(b"\x01" * 32), Root(b"\x02" * 32), COMMITMENT)
    case = Case("", [verifying()], [], work=rejected(3, mixed), params=ROUNDS)
    (action,) = verifier.decide(case.situation(), VerifierPolicy())
    assert isinstance(action, Send) and action.intent.function == "reportFault"
    assert action.intent.args[1] == COMMITMENT.chain
    result = case.work["replay/1"].result
    assert isinstance(result, ReplayResult)
    assert fault_root(result) == COMMITMENT
    assert true_roots(result) == (COMMITMENT,) * 3


def test_a_forced_fault_report_shows_another_root_and_seals_the_record() -> None:
    view = verifying(forceable=True)
    case = Case("", [view], [], work=rejected(), params=FORCING)
    (action,) = verifier.decide(case.situation(), VerifierPolicy())
    assert isinstance(action, Send) and action.intent.function == "reportFault"
    wrong = forced_roots((COMMITMENT,), secret_of(1, 0))[0]
    assert wrong != COMMITMENT
    assert action.intent.args == (1, wrong.chain, seal(secret_of(1, 0), [COMMITMENT] * 3).chain)


def test_a_replay_without_a_fault_record_is_reported_as_before() -> None:
    result = ReplayResult((0, 0, 0), (Root(b"\x03" * 32),) * 3, "pass")
    assert fault_root(result) is None and true_roots(result) == result.trace_roots
    case = Case("", [verifying()], [], work={"replay/1": WorkState("replay/1", "done", result)})
    (action,) = verifier.decide(case.situation(), VerifierPolicy())
    assert isinstance(action, Send) and action.intent.function == "reportVerification"


def fault_reported(round_: int = 0, **fields: Any) -> TaskView:
    reported = entry(
        6,
        "VerificationReported",
        verifier=OTHER,
        distances=[INFINITY] * 7,
        extraSegments=[],
        extraDistances=[],
        traceRoots=[COMMITMENT.chain] * 7,
        sealedTraceRoots=H,
        verdict=2,
        challengeDeadline=NOW + 50,
    )
    view = task(
        status="ChallengeWindow",
        solver=ME,
        verifier=OTHER,
        randomness=H,
        verdict="Fail",
        deadline=NOW + 50,
        distances=[INFINITY] * 7,
        trace_roots=[COMMITMENT] * 7,
        fault_report=True,
        verification_round=round_,
        timeline=[SUBMITTED, CLAIMED, COMMITTED, VERIFYING, DRAWN, reported],
        **fields,
    )
    return view


PUBLISHED = PublicationResult(
    segment=9,
    state_root=Root(b"\x05" * 32),
    tensors=((bytes(12), b"\x00\x00\x80\x3f"),),
    proof=(Root(b"\x06" * 32), Root(b"\x07" * 32)),
)


def publication_work(recheck: str = "pass", round_: int = 0) -> dict[str, WorkState]:
    check = ReplayResult((0,) * 7, (Root(b"\x08" * 32),) * 7, recheck)  # type: ignore[arg-type]
    key = f"recheck/1/{round_}"
    return {
        key: WorkState(key, "done", check),
        "publication/1/9": WorkState("publication/1/9", "done", PUBLISHED),
    }


def test_an_honest_solver_publishes_against_a_fault_report(
    pool_interface: ContractInterface,
) -> None:
    view = fault_reported()
    only_recheck = {"recheck/1/0": publication_work()["recheck/1/0"]}
    case = Case("", [view], [], work=only_recheck, params=ROUNDS)
    (start,) = solver.decide(case.situation(pool_interface), SolverPolicy())
    assert isinstance(start, Start) and start.key == "publication/1/9"
    assert start.inputs == PublicationJob("QmSpec", "QmProof", 9)

    case = Case("", [view], [], work=publication_work(), params=ROUNDS)
    (send,) = solver.decide(case.situation(pool_interface), SolverPolicy())
    assert isinstance(send, Send)
    assert send.intent.key == "publish/1/0" and send.intent.function == "publishState"
    assert send.intent.args == (
        1,
        6,
        history(view, pool_interface),
        [("0x" + "00" * 12, "0x0000803f")],
        [r.chain for r in PUBLISHED.proof],
    )
    # Sent once: a restarted agent finds the key in its journal.
    sent = Case(
        "", [view], [], work=publication_work(), params=ROUNDS, journal={send.intent.key: "sent"}
    )
    assert solver.decide(sent.situation(pool_interface), SolverPolicy()) == []


def test_an_honest_solver_publishes_in_every_round_the_last_included(
    pool_interface: ContractInterface,
) -> None:
    """A fault report left standing in the last round fails the task and slashes the solver;
    a publication there settles it Unverified with the solver's stake back."""
    assert ROUNDS.max_verification_rounds == 3
    for round_ in range(ROUNDS.max_verification_rounds):
        view = fault_reported(round_)
        case = Case("", [view], [], work=publication_work(round_=round_), params=ROUNDS)
        (send,) = solver.decide(case.situation(pool_interface), SolverPolicy())
        assert isinstance(send, Send) and send.intent.function == "publishState"
        assert send.intent.key == f"publish/1/{round_}"


def test_a_solver_does_not_publish_in_vain(pool_interface: ContractInterface) -> None:
    """Nothing when its own re-check fails, nothing after the window, nothing against a report
    that names traces."""
    own_fail = Case("", [fault_reported()], [], work=publication_work("fail"), params=ROUNDS)
    late = Case("", [fault_reported()], [], work=publication_work(), params=ROUNDS, now=NOW + 60)
    traced = dataclasses.replace(fault_reported(), fault_report=False)
    named = Case("", [traced], [], work=publication_work(), params=ROUNDS)
    for case in (own_fail, late, named):
        actions = solver.decide(case.situation(pool_interface), SolverPolicy())
        assert not any(isinstance(a, Send) and a.intent.function == "publishState" for a in actions)
        assert not any(isinstance(a, Start) and a.key.startswith("publication/") for a in actions)


def test_a_devnet_adversary_publishes_only_when_told(pool_interface: ContractInterface) -> None:
    view = fault_reported()
    case = Case("", [view], [], work={}, params=ROUNDS)
    quiet = SolverPolicy(adversary="malformed:first-step-digits")
    assert solver.decide(case.situation(pool_interface), quiet) == []
    loud = SolverPolicy(adversary="malformed:first-step-digits", adversary_publishes=True)
    (start,) = solver.decide(case.situation(pool_interface), loud)
    assert isinstance(start, Start) and start.key == "publication/1/9"


def test_no_game_is_played_on_a_fault_report() -> None:
    view = fault_reported()
    mine = ReplayResult((0,) * 7, (Root(b"\x08" * 32),) * 7, "pass")
    assert disagreements(view, mine) == []
    replay = dataclasses.replace(view, fault_report=False)
    assert {d.kind for d in disagreements(replay, mine)} == {"report"}


def test_the_view_follows_fault_reports_and_publications() -> None:
    view = task(status="ChallengeWindow", verifier=OTHER)

    def event(name: str, **args: Any) -> None:
        apply(view, _log(name, args))

    event("FaultReported", verifier=OTHER, faultRoot=COMMITMENT.chain)
    assert view.fault_report
    event(
        "StatePublished",
        publisher=ME,
        verifier=OTHER,
        segment=9,
        stateRoot=ROOT,
        refunded=500,
        lastRound=False,
    )
    assert view.publications == [(ME, OTHER, 9, 500)]
    assert (OTHER, 500) in view.awards
    event("VerificationReopened", deadline=NOW + 100)
    assert not view.fault_report and view.status == "Committed"


def _log(name: str, args: dict[str, Any]) -> Any:
    from agents.chain.abi import DecodedLog

    return DecodedLog(
        contract="TaskPool",
        name=name,
        args={"taskId": 1, **args},
        address="0x" + "00" * 20,
        block_number=9,
        block_hash="0x" + "00" * 32,
        log_index=0,
        tx_hash="0x",
    )


def test_publication_keys_and_results_round_trip() -> None:
    assert intents.publish(1, 2) == "publish/1/2"
    assert intents.publication(1, 9) == "publication/1/9"
    assert intents.IntentKey.parse("publish/3/0").task_ids == (3,)
    assert result_from_json("publication", PUBLISHED.to_json()) == PUBLISHED


def test_the_verifier_reveals_its_fault_report_s_true_roots(
    pool_interface: ContractInterface,
) -> None:
    reported = entry(
        6,
        "VerificationReported",
        verifier=ME,
        distances=[INFINITY] * 3,
        extraSegments=[],
        extraDistances=[],
        traceRoots=[COMMITMENT.chain] * 3,
        sealedTraceRoots=H,
        verdict=2,
        challengeDeadline=NOW - 5,
    )
    view = task(
        status="ChallengeWindow",
        solver=OTHER,
        verifier=ME,
        randomness=H,
        verdict="Fail",
        forceable=True,
        fault_report=True,
        deadline=NOW - 5,
        timeline=[SUBMITTED, CLAIMED, COMMITTED, VERIFYING, DRAWN, reported],
    )
    mixed = (Root(b"\x01" * 32), Root(b"\x02" * 32), COMMITMENT)
    case = Case("", [view], [], work=rejected(3, mixed), params=FORCING)
    (action,) = verifier.decide(case.situation(pool_interface), VerifierPolicy())
    assert isinstance(action, Send) and action.intent.function == "revealVerification"
    assert action.intent.args[2] == [COMMITMENT.chain] * 3
