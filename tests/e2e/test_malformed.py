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
from agents.roles.solver import adversary
from agents.store import open_store
from tests.audit.specs import exact_spec

from .conftest import Market

pytestmark = pytest.mark.chain


def submit(market: Market, spec: Path, capsys: pytest.CaptureFixture[str]) -> int:
    """``veritrain submit`` in this process (fifteen interpreters starting torch would take
    minutes); returns the task id."""
    config = str(market.config("submitter"))
    main(["submit", str(spec), "--bounty", "1eth", "--config", config])
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
