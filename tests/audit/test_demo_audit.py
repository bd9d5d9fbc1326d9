"""``make demo KEEP=1`` then ``veritrain audit task 1``: the demo's devnet stays up and the
audit of its round holds, for an honest and a cheating solver."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agents.devnet import lifecycle
from agents.devnet.anvil import REPO_ROOT
from agents.devnet.processes import child_env, cli_command

from .specs import exact_spec

pytestmark = [pytest.mark.chain, pytest.mark.slow]


@pytest.mark.parametrize(("cheat", "outcome"), [(False, "Passed"), (True, "Failed")])
def test_the_kept_demo_audits_clean(tmp_path: Path, cheat: bool, outcome: str) -> None:
    directory = tmp_path / "demo"
    spec = exact_spec(tmp_path)
    args = ["devnet", "demo", "--dir", str(directory), "--spec", str(spec), "--keep"]
    if cheat:
        args.append("--cheat")
    try:
        done = subprocess.run(
            cli_command(*args),
            cwd=REPO_ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert lifecycle.status(directory)["running"]
        audit = subprocess.run(
            cli_command(
                "audit", "task", "1", "--json", "--config", str(directory / "submitter.toml")
            ),
            cwd=REPO_ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
        report = json.loads(audit.stdout)
        assert report["outcome"] == outcome and report["holds"]
        assert len(report["segments"]) == 5
    finally:
        lifecycle.down(directory)
