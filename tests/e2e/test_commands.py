"""The submitter's commands and an agent's metrics endpoint, against a devnet."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from agents.devnet.anvil import REPO_ROOT
from agents.devnet.processes import child_env, cli_command

from .conftest import TINY_SPEC, Market

pytestmark = pytest.mark.chain


def test_submit_list_show_cancel_and_refund(market: Market) -> None:
    task_id = market.submit(TINY_SPEC, "--training-window", "30m")
    listed = json.loads(market.cli("tasks", "--json").stdout)
    assert [(t["task_id"], t["status"], t["mode"]) for t in listed] == [
        (task_id, "Submitted", "tolerant")
    ]
    assert listed[0]["training_window"] == 1800
    table = market.cli("tasks").stdout
    assert "Submitted" in table and "1 ETH" in table
    cancelled = market.cli("cancel", str(task_id))
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stdout and "refund withdrawn" in cancelled.stdout
    shown = json.loads(market.cli("task", "show", str(task_id), "--json").stdout)
    assert shown["status"] == "Settled" and shown["outcome"] == "Cancelled"
    assert [e["event"] for e in shown["timeline"]] == [
        "TaskSubmitted",
        "TaskCancelled",
        "TaskSettled",
        "PayoutWithdrawn",
    ]
    assert shown["withdrawn"] == {market.account("submitter"): shown["bounty"]}
    again = market.cli("cancel", str(task_id))
    assert again.returncode == 2 and "only an unclaimed task can be cancelled" in again.stderr
    assert market.cli("tasks").stdout.strip().endswith("(--all shows settled ones)")
    text = market.cli("task", "show", str(task_id)).stdout
    assert "outcome Cancelled" in text and "TaskCancelled" in text


def test_agent_serves_metrics(market: Market) -> None:
    solver = market.agent("solver", "--metrics-port", "0")
    url: list[str] = []

    def served() -> bool:
        found = re.search(r"url=(http://\S+/metrics)", solver.log.read_text(errors="replace"))
        if found:
            url.append(found.group(1))
        return bool(found) and "agent started" in solver.log.read_text(errors="replace")

    market.wait("the metrics endpoint", served, timeout=60)
    market.submit(TINY_SPEC)  # a task the solver sees (waiting for a profile: no verifier runs)

    def counted() -> bool:
        body = urllib.request.urlopen(url[0], timeout=5).read().decode()
        return 'veritrain_tasks{state="Submitted"} 1.0' in body

    market.wait("the task counted in the metrics", counted, timeout=120)
    body = urllib.request.urlopen(url[0], timeout=5).read().decode()
    for name in (
        "veritrain_tasks{",
        "veritrain_balance_wei",
        "veritrain_withdrawable_wei",
        "veritrain_head_block",
        "veritrain_cursor_block",
        "veritrain_reaction_seconds_bucket",
        "veritrain_rpc_errors_total",
    ):
        assert name in body, name
    assert url[0].startswith("http://127.0.0.1:")
    balance = re.search(r"^veritrain_balance_wei (\S+)$", body, re.MULTILINE)
    assert balance is not None and float(balance.group(1)) > 0


def test_devnet_up_down_up_keeps_its_chain(tmp_path: Path) -> None:
    directory = tmp_path / "devnet"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_command("devnet", *args, "--dir", str(directory)),
            cwd=REPO_ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        assert cli("up").returncode == 0
        first = json.loads(cli("status", "--json").stdout)
        manifest = (directory / "deployment.json").read_text()
        assert first["running"] and first["block"] >= 5
        assert all(a["balance_wei"] == 1000 * 10**18 for a in first["accounts"].values())
        assert "stopped" in cli("down").stdout
        assert json.loads(cli("status", "--json").stdout)["running"] is False
        restarted = cli("up")
        assert "deploying" not in restarted.stdout  # same chain: the contracts are there
        second = json.loads(cli("status", "--json").stdout)
        assert second["running"] and second["url"] == first["url"]
        assert second["block"] == first["block"]
        assert (directory / "deployment.json").read_text() == manifest
        assert "already up" in cli("up").stdout
    finally:
        cli("down", "--purge")
    assert not directory.exists()
