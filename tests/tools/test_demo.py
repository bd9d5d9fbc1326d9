"""The scripted round keeps working: one task on its own devnet, balances checked to the wei."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.devnet.anvil import REPO_ROOT


@pytest.mark.chain
def test_the_demo_round_settles_one_task_and_exits_zero(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "scripts.demo_round"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = ("submit", "claim", "commit", "claim verification", "reveal seed", "report", "reveal")
    for step in steps:
        assert f"== {step}" in done.stdout
    assert "ok: task 1 settled Passed, the balances add up to the wei" in done.stdout
    manifest = json.loads((tmp_path / ".demo" / "scripted" / "deployment.json").read_text())
    assert manifest["format"] == "veritrain-deployment/1"
    assert (tmp_path / ".demo" / "scripted" / "store").is_dir()
