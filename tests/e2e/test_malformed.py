"""A solver that commits malformed proofs, one of each kind: every task fails, the verifier
reports in time and is paid, and no honest party loses its stake."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agents.cli import main
from agents.learning import faults
from agents.learning.malformed import CRAFTS, fault_of
from agents.learning.spec import spec_from_bytes
from agents.learning.task import open_task
from agents.roles.situation import POOL
from agents.roles.solver import adversary
from agents.store import open_store
from scripts.deploy import DEFAULT_PARAMETERS
from tests.audit.specs import exact_spec

from .conftest import Market, open_market

pytestmark = pytest.mark.chain


def submit(market: Market, spec: Path, capsys: pytest.CaptureFixture[str]) -> int:
    """``veritrain submit --again`` in this process (fifteen interpreters starting torch would
    take minutes): a new task of the same spec each call; returns the task id."""
    config = str(market.config("submitter"))
    main(["submit", str(spec), "--bounty", "1eth", "--again", "--config", config])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("task "), first
    return int(first.split()[1])


def test_every_malformed_proof_fails_its_solver_and_pays_the_verifier(
    market: Market, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path = exact_spec(tmp_path)
    market.agent(
        "solver", "--set", "solver.adversary=malformed:cycle", "--set", "solver.max_parallel=4"
    )
    market.agent("verifier")
    task_ids = [submit(market, spec_path, capsys) for _ in CRAFTS]
    crafts = {task_id: str(adversary("malformed:cycle", task_id)) for task_id in task_ids}
    assert sorted(crafts.values()) == sorted(f"malformed:{name}" for name in CRAFTS)
    market.wait(
        "every task settled",
        lambda: all(market.tasks()[t].final for t in task_ids),
        timeout=600,
    )
    # A verifier's reveal settles its task and pushes every party its payout; a task settled
    # otherwise (by `settle` after a deadline) owes the submitter (no agent here) its refund,
    # which it takes as `submit --follow` would.
    done = market.cli("withdraw", *(str(t) for t in task_ids))
    nothing_owed = done.returncode == 2 and "owes anything" in done.stderr
    assert done.returncode == 0 or nothing_owed, done.stdout + done.stderr
    views = {task_id: market.wait_settled(task_id, timeout=120) for task_id in task_ids}

    store = open_store(market.info.store)
    records = {}
    for cid in store.pins():
        data = store.get_bytes(cid)
        if data.startswith(b'{"cid":') and b'"format":"veritrain-fault/1"' in data:
            records[hashlib.sha256(data).digest()] = data
    solver, verifier = market.account("solver"), market.account("verifier")
    for task_id, view in views.items():
        name = crafts[task_id].removeprefix("malformed:")
        assert view.outcome == "Failed" and view.verdict == "Fail", (name, view.outcome)
        assert view.verifier == verifier and view.verification_round == 0, name
        # Only the solver loses: the verifier has its stake back and more, the submitter its
        # bounty, and both took it.
        assert view.payouts["solver"] == 0 and solver not in view.withdrawn, name
        assert all(account == solver for account, _ in view.penalised), name
        assert view.payouts["verifier"] > view.verifier_stake, name
        assert view.payouts["submitter"] >= view.bounty, name
        assert view.withdrawn.get(verifier) == view.payouts["verifier"], name
        assert view.withdrawn.get(market.account("submitter")) == view.payouts["submitter"]
        # The report commits to a fault record of the craft's kind, which anyone can confirm.
        assert view.trace_roots and len(set(view.trace_roots)) == 1, name
        record = records[bytes(view.trace_roots[0])]
        fault, manifest = faults.parse(record)
        assert manifest == view.proof_cid
        assert view.spec_cid is not None and view.checkpoint_root is not None
        task = open_task(spec_from_bytes(store.get_bytes(view.spec_cid)), store)
        assert fault.kind == fault_of(name), (name, fault)
        assert faults.confirm(
            task,
            store,
            record,
            spec_cid=view.spec_cid,
            committed_root=bytes(view.checkpoint_root).hex(),
        ), name


def test_a_solver_that_publishes_against_every_fault_report_settles_unverified_unpaid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The solver of a malformed proof (its batches unreadable, its checkpoints fine) disputes
    each fault report by publishing a sampled start state (``publishState``): each voids the
    report without slashing its verifier, who is credited its stake and takes it, and the task
    is verified again; the last round's publication, with nobody able to tell on chain who
    lied, settles the task Unverified: the submitter has its bounty back, the solver its stake
    and no bounty, the verifier its stake each time and no fee. No game is ever played on a
    fault report."""
    market = open_market(tmp_path / "devnet", challengeWindow=60, forcedErrorPpm=0)
    try:
        spec_path = exact_spec(tmp_path)
        market.agent(
            "solver",
            "--set",
            "solver.adversary=malformed:first-step-digits",
            "--set",
            "solver.adversary_publishes=true",
        )
        market.agent("verifier")
        task_id = submit(market, spec_path, capsys)
        market.wait("the task settled", lambda: market.tasks()[task_id].final, timeout=900)
        done = market.cli("withdraw", str(task_id))
        nothing_owed = done.returncode == 2 and "owes anything" in done.stderr
        assert done.returncode == 0 or nothing_owed, done.stdout + done.stderr
        view = market.wait_settled(task_id, timeout=120)
        pool = market.deployment.contract(POOL)
        solver, verifier = market.account("solver"), market.account("verifier")
        submitter = market.account("submitter")

        def credit(account: str) -> int:
            raw = market.client.call(pool.address, pool.encode_call("credit", (account,)))
            return int(pool.decode_output("credit", raw))

        market.wait("the verifier took its credit", lambda: credit(verifier) == 0, timeout=120)
        rounds = DEFAULT_PARAMETERS.maxVerificationRounds  # the devnet keeps the default
        assert view.outcome == "Unverified", view.outcome
        assert view.verification_round == rounds - 1
        assert len(view.publications) == rounds
        for publisher, voided, segment, refunded in view.publications:
            assert publisher == solver and voided == verifier
            assert segment == view.segments - 1
            assert refunded == view.verifier_stake
        assert not view.challenges  # no game was played on a fault report
        assert not view.proof_failed
        assert "challengeReport" not in market.calls_by("solver")
        assert market.calls_by("solver").count("publishState") == rounds
        assert market.calls_by("verifier").count("reportFault") == rounds
        # Nobody gains: the submitter has its bounty back (an exact task: no profile fee), the
        # solver its stake and no bounty, the verifier its stake each round and no fee.
        assert view.payouts == {
            "submitter": view.bounty,
            "solver": view.solver_stake,
            "verifier": 0,
            "profiler": 0,
            "jackpot": 0,
        }
        market.wait(
            "the solver took its stake back",
            lambda: market.tasks()[task_id].withdrawn.get(solver) == view.solver_stake,
            timeout=120,
        )
        assert view.withdrawn.get(submitter) == view.bounty
        assert verifier not in view.withdrawn
    finally:
        market.stop()
