"""The demo round on the transformer example: profiled, claimed, trained natively,
replayed with the exact kernels, and settled Passed (no honest proof rejected)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agents.devnet.anvil import REPO_ROOT
from agents.devnet.processes import child_env, cli_command

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def test_the_transformer_demo_settles_passed(tmp_path: Path) -> None:
    spec = REPO_ROOT / "examples" / "char-transformer.yaml"
    done = subprocess.run(
        cli_command("devnet", "demo", "--dir", str(tmp_path / "demo"), "--spec", str(spec)),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "OK: task 1 Passed" in done.stdout
    assert "TaskProfiled" in done.stdout and "verdict Pass" in done.stdout
