"""Timeout paths and RPC trouble, end to end: the right party is penalised, rounds still finish."""

from __future__ import annotations

import pytest

from .conftest import TINY_SPEC, Market, passed_payouts

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def wait_final(market: Market, task_id: int, paid: tuple[str, ...], timeout: float = 300) -> None:
    """Wait until the task is settled and the ``paid`` roles have taken what it owes them."""

    def done() -> bool:
        view = market.tasks().get(task_id)
        return bool(
            view is not None
            and view.final
            and all(view.due_to(market.account(role)) == 0 for role in paid)
        )

    market.wait(f"task {task_id} settled and {paid} paid", done, timeout)


def test_no_solver_claims_the_task_expires_and_the_bounty_returns(short_market: Market) -> None:
    market = short_market
    market.agent("verifier")  # profiles the task; no solver ever comes
    task_id = market.submit(follow=True)
    wait_final(market, task_id, ("submitter", "verifier"))
    view = market.task(task_id)
    assert view.outcome == "Expired" and view.penalised == []
    # The bounty goes back, less the profiler's fee; the profiler's stake goes back to it.
    assert view.payouts["submitter"] + view.payouts["profiler"] == view.bounty + view.profiler_stake
    assert market.account("submitter") in view.withdrawn


def test_a_solver_that_never_commits_is_slashed(short_market: Market) -> None:
    market = short_market
    market.agent("verifier")
    solver = market.agent("solver")
    solver.stop()
    solver.start(failpoints="tx-sent:claim/")  # claims, then is gone for good
    task_id = market.submit(TINY_SPEC, "--training-window", "6s", follow=True)
    assert solver.returncode() == -9
    wait_final(market, task_id, ("submitter", "verifier"))
    view = market.task(task_id)
    assert view.outcome == "SolverTimedOut"
    assert view.penalised == [(market.account("solver"), view.solver_stake)]
    assert view.payouts["solver"] == 0
    # The submitter gets the bounty back (less the profile fee) and a share of the slashed stake.
    assert view.payouts["submitter"] + view.payouts["profiler"] > view.bounty + view.profiler_stake
    assert view.payouts["jackpot"] > 0


def test_a_verifier_that_never_reports_is_slashed_and_the_proof_goes_unverified(
    short_market: Market,
) -> None:
    market = short_market
    market.agent("solver")
    verifier = market.agent("verifier")
    verifier.stop()
    verifier.start(failpoints="tx-sent:claim-verification/")  # takes the job, then is gone
    task_id = market.submit(follow=True)
    wait_final(market, task_id, ("submitter", "solver"))
    assert verifier.returncode() == -9
    view = market.task(task_id)
    assert view.outcome == "Unverified"
    slashed = [
        amount for account, amount in view.penalised if account == market.account("verifier")
    ]
    assert len(slashed) == 1 and slashed[0] > 0
    assert view.verification_round == 1  # verification was reopened once, nobody took it
    assert view.payouts["solver"] == view.solver_stake  # its stake back, no bounty
    assert view.payouts["submitter"] + view.payouts["profiler"] == view.bounty + view.profiler_stake


def test_agents_ride_out_a_node_restart(market: Market) -> None:
    market.agent("solver")
    market.agent("verifier")
    task_id = market.submit()
    market.wait("the claim", lambda: market.task(task_id).status == "Training", timeout=180)
    market.restart_node(down_for=4.0)  # the same chain comes back on the same port
    view = market.wait_settled(task_id)
    assert view.outcome == "Passed"
    assert view.payouts == passed_payouts(market, view.bounty)
    logs = [(market.directory / f"{role}.log").read_text() for role in ("solver", "verifier")]
    assert any("rpc unavailable; retrying" in text for text in logs), market.logs()
