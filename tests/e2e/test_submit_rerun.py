"""``veritrain submit`` run again after its wait ran out: one submission, one task escrowed."""

from __future__ import annotations

import subprocess

import pytest

from agents.devnet.anvil import REPO_ROOT
from agents.devnet.processes import child_env, cli_command

from .conftest import TINY_SPEC, Market

pytestmark = pytest.mark.chain


def submit(market: Market, *extra: str) -> subprocess.CompletedProcess[str]:
    return market.cli("submit", str(TINY_SPEC), "--bounty", "1eth", *extra)


def pending_sends(market: Market) -> int:
    """The submitter's transactions waiting in the node's pool."""
    client, me = market.client, market.account("submitter")
    return client.nonce(me, "pending") - client.nonce(me, "latest")


def first_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()[0]


def test_a_rerun_follows_the_earlier_submission_instead_of_sending_another(
    market: Market,
) -> None:
    client = market.client
    client.rpc.request("evm_setAutomine", [False])
    # The wait runs out before the submission is mined: it stays journaled and in the pool.
    stopped = submit(market, "--wait", "2s")
    assert stopped.returncode not in (0, None), stopped.stdout + stopped.stderr
    assert "not mined after 2 s" in stopped.stderr, stopped.stderr
    assert "run the same command again" in stopped.stderr, stopped.stderr
    assert pending_sends(market) == 1
    # Run again: nothing new is sent; it follows the first one, which is mined meanwhile.
    rerun = subprocess.Popen(
        cli_command(
            "submit",
            str(TINY_SPEC),
            "--bounty",
            "1eth",
            "--config",
            str(market.config("submitter")),
        ),
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert rerun.stderr is not None
        said = ""
        while "following it" not in said and (line := rerun.stderr.readline()):
            said += line
        assert "is not mined yet: following it, nothing new sent" in said, said
        assert pending_sends(market) == 1
        client.rpc.request("evm_mine", [])
        out, err = rerun.communicate(timeout=300)
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait()
    assert rerun.returncode == 0, out + said + err
    assert out.startswith("task 1 submitted"), out
    assert set(market.tasks()) == {1}
    # Run once more, its task not settled: reported, nothing sent.
    reported = submit(market)
    assert first_line(reported).startswith("task 1 submitted")
    assert "nothing new sent" in reported.stderr and "--again" in reported.stderr
    assert pending_sends(market) == 0 and set(market.tasks()) == {1}
    # Other terms are another submission; mined while its command was away, the rerun reports it.
    stopped = submit(market, "--training-window", "30m", "--wait", "1s")
    assert "not mined after 1 s" in stopped.stderr, stopped.stdout + stopped.stderr
    # Yet other terms while that one is in flight: sent, with a note that both will be tasks.
    other = submit(market, "--training-window", "45m", "--wait", "1s")
    assert "with other terms" in other.stderr and "not mined after 1 s" in other.stderr
    assert pending_sends(market) == 2
    client.rpc.request("evm_mine", [])
    away = submit(market, "--training-window", "30m")
    assert first_line(away).startswith("task 2 submitted")
    assert "nothing new sent" in away.stderr
    assert pending_sends(market) == 0 and set(market.tasks()) == {1, 2, 3}
    # Submitting the same spec and terms again is asked for with --again.
    client.rpc.request("evm_setAutomine", [True])
    assert first_line(submit(market, "--again")).startswith("task 4 submitted")
    assert set(market.tasks()) == {1, 2, 3, 4}
    # Once every earlier task of these terms is settled, a rerun submits a new one.
    for task_id in (1, 4):
        cancelled = market.cli("cancel", str(task_id), "--no-withdraw")
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    fresh = submit(market)
    assert first_line(fresh).startswith("task 5 submitted")
    assert "as task 4, settled (Cancelled): submitting a new task" in fresh.stderr
    assert set(market.tasks()) == {1, 2, 3, 4, 5}


def test_a_rerun_follows_a_submission_whose_block_the_chain_lost(market: Market) -> None:
    """The submission was mined, then its block lost (a reorg; a devnet node killed and
    restarted from its last saved state): the journal still says mined, and its receipt is
    gone. A rerun sends its same bytes again (its nonce, no second task) and reports the task,
    rather than failing on a receipt that no longer exists."""
    client = market.client
    before = client.rpc.request("evm_snapshot", [])
    first = submit(market)
    assert first_line(first).startswith("task 1 submitted")
    tx_hash = first_line(first).rsplit("tx ", 1)[1]
    assert client.rpc.request("evm_revert", [before]) is True
    assert client.receipt(tx_hash) is None and market.tasks() == {}
    rerun = submit(market)
    assert first_line(rerun).startswith("task 1 submitted"), rerun.stdout + rerun.stderr
    assert first_line(rerun).endswith(f"tx {tx_hash}")
    assert client.receipt(tx_hash) is not None and set(market.tasks()) == {1}
    assert pending_sends(market) == 0


def test_submit_help_names_the_rerun_rule() -> None:
    done = subprocess.run(
        cli_command("submit", "--help"),
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--again" in done.stdout and "follows that submission" in done.stdout
