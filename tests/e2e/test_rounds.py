"""Whole rounds on anvil, agents as subprocesses: honest, cheating, crashing, timing out."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exact.tasks import diverging_spec

from .conftest import Market, assert_once, passed_payouts

pytestmark = pytest.mark.chain


def test_honest_round_settles_and_everyone_is_paid(market: Market) -> None:
    market.agent("solver")
    market.agent("verifier")
    task_id = market.submit(follow=True)
    view = market.wait_settled(task_id)
    assert view.outcome == "Passed" and view.verdict == "Pass"
    assert view.solver == market.account("solver") and view.verifier == market.account("verifier")
    assert view.penalised == []
    bounty = view.bounty
    assert view.payouts["solver"] > bounty  # bounty less fees, plus the stake back
    assert view.withdrawn == {
        market.account("solver"): view.payouts["solver"],
        market.account("verifier"): view.payouts["verifier"] + view.payouts["profiler"],
    }
    # Exactly one transaction per decision, counted from the chain: the solver reveals its
    # seed once the verifier has claimed; the verifier's reveal after the challenge window
    # settles the task and pays every party, so nobody withdraws or settles. A verifier that
    # was forced to err (p = 12 %, the devnet's forcedErrorPpm: about one run in eight takes
    # this branch) reopens the report with its reveal instead, and the parties it pays settle
    # it by withdrawing after the second window.
    withdraw = {"withdraw"} if view.forced else set()
    assert_once(market.calls_by("solver"), {"claim", "commit", "revealSeed", *withdraw})
    assert_once(
        market.calls_by("verifier"),
        {"claimVerification", "profile", "reportVerification", "revealVerification", *withdraw},
    )
    # The submitter follows its task: it checks the profile and accepts it at once.
    assert market.calls_by("submitter") == ["submit", "acceptProfile"]
    assert view.review_deadline == 0


def test_an_honest_diverging_exact_task_passes(market: Market, tmp_path: Path) -> None:
    # Training overflows in the first segment; the replay reaches the same non-finite bits,
    # so every reported distance is +0 and the honest solver is paid (docs/proof.md).
    spec = tmp_path / "diverging.json"
    spec.write_bytes(diverging_spec("exact", segments=5).canonical_bytes())
    market.agent("solver")
    market.agent("verifier")
    task_id = market.submit(spec, follow=True)
    view = market.wait_settled(task_id)
    assert view.outcome == "Passed" and view.verdict == "Pass"
    assert view.distances == [0] * min(view.segments, view.sampled_segments + 2)
    assert view.penalised == []
    assert view.withdrawn[market.account("solver")] == view.payouts["solver"] > view.bounty


def test_cheating_solver_is_slashed_and_the_submitter_refunded(market: Market) -> None:
    market.agent("solver", "--set", "solver.adversary=fake-half")
    market.agent("verifier")
    task_id = market.submit(follow=True)
    view = market.wait_settled(task_id)
    assert view.outcome == "Failed" and view.verdict == "Fail"
    assert view.payouts["solver"] == 0
    assert view.payouts["submitter"] >= view.bounty - view.payouts["profiler"]
    # The verifier's fee is the same for a fail as for a pass: no share of the slash.
    assert view.payouts["verifier"] == passed_payouts(market, view.bounty)["verifier"]
    assert market.account("solver") not in view.withdrawn
    # The verifier's reveal settles and pays the submitter its refund (or, when it was forced
    # to err, reopens the report, and the submitter withdraws once it settles).
    assert_once(market.calls_by("solver"), {"claim", "commit", "revealSeed"})
    withdraw = {"withdraw"} if view.forced else set()
    assert_once(market.calls_by("submitter"), {"submit", "acceptProfile", *withdraw})


def test_killed_agents_resume_without_repeating_a_transaction(market: Market) -> None:
    # The solver dies right after its third checkpoint, the verifier between broadcasting its
    # report and seeing it mined; both are restarted and the round ends as if nothing happened.
    solver = market.agent("solver")
    solver.stop()
    solver.start(failpoints="checkpoint-written=3")
    verifier = market.agent("verifier")
    verifier.stop()
    verifier.start(failpoints="tx-sent:report/")
    task_id = market.submit()
    market.wait("the solver to die mid-training", lambda: not solver.alive, timeout=240)
    assert solver.returncode() == -9
    solver.start()
    market.wait("the verifier to die after reporting", lambda: not verifier.alive, timeout=300)
    assert verifier.returncode() == -9
    verifier.start()
    view = market.wait_settled(task_id)
    assert view.outcome == "Passed"
    withdraw = {"withdraw"} if view.forced else set()  # a forced report settles later
    assert_once(market.calls_by("solver"), {"claim", "commit", "revealSeed", *withdraw})
    assert_once(
        market.calls_by("verifier"),
        {"profile", "claimVerification", "reportVerification", "revealVerification", *withdraw},
    )
