"""``make demo KEEP=1`` (each scenario) then ``veritrain audit task 1``: the demo's agents run
as processes, its devnet stays up, and the audit of its round holds (exit 0), the challenges'
games replayed and the payouts after them checked; with one artifact of the store corrupted,
the audit refuses the input (exit 2) and names the artifact; the devnet stopped and brought
back from its state file (no past states) audits clean again."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agents.devnet import lifecycle
from agents.devnet.anvil import REPO_ROOT
from agents.devnet.demo import SCENARIOS
from agents.devnet.processes import child_env, cli_command
from agents.store import open_store
from agents.store.cid import CID

from .specs import exact_spec

pytestmark = [pytest.mark.chain, pytest.mark.slow]

FLAGS = {"honest": [], "cheat": ["--cheat"], "dispute": ["--dispute"], "forced": ["--forced"]}
# Findings of the payouts after challenges each scenario's audit must hold: the liar's stake
# credited to the challenger that beat it; a caught forced error paid by the jackpot, and the
# verifier not slashed (its stake back, its fee less the forced-error tax).
CREDITED = "credits: what it holds and withdrew is what the pool credited it"
AFTER_CHALLENGES = {
    "honest": ["the task's flags after challenges are the ones its events call for"],
    "cheat": ["the defeated report's verifier stake goes to", CREDITED],
    "dispute": ["the defeated report's verifier stake goes to", CREDITED],
    "forced": [
        "the jackpot awarded each recipient what ForcedErrorCaught states",
        "a forced error's award is min(V, a third of the jackpot's reserve), shared",
        "a forced error's award is at most the verifier's stake (its verifier is not slashed)",
        "the verifier's payout follows the settlement table",
    ],
}


def _run(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args),
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _corrupt(store: Path, cid: str) -> None:
    """Flip the last byte of ``cid``'s block in the store directory ``store``."""
    digest = CID.parse(cid).digest.hex()
    blocks = list(store.rglob(digest))
    assert len(blocks) == 1, blocks
    data = bytearray(blocks[0].read_bytes())
    data[-1] ^= 0xFF
    blocks[0].write_bytes(bytes(data))


@pytest.mark.parametrize("scenario", sorted(FLAGS))
def test_the_kept_demo_audits_clean_and_a_corrupt_artifact_is_named(
    tmp_path: Path, scenario: str
) -> None:
    directory = tmp_path / "demo"
    spec = exact_spec(tmp_path)
    args = ["devnet", "demo", "--dir", str(directory), "--spec", str(spec), "--keep"]
    try:
        done = _run(*args, *FLAGS[scenario], timeout=2400)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert lifecycle.status(directory)["running"]
        config = str(directory / "submitter.toml")
        audit = _run("audit", "task", "1", "--json", "--config", config, timeout=1500)
        assert audit.returncode == 0, audit.stdout[-5000:] + audit.stderr[-3000:]
        report = json.loads(audit.stdout)
        assert report["outcome"] == SCENARIOS[scenario].expected and report["holds"]
        claims = [f["claim"] for f in report["findings"]]
        assert any("settlement table" in c for c in claims), claims
        if scenario != "honest":
            assert any(c.startswith("challenge ") for c in claims), claims
        for fragment in AFTER_CHALLENGES[scenario]:
            assert any(fragment in c for c in claims), (fragment, claims)

        # Checkpoint 0 starts segment 0, which every sample holds: flip a byte of its copy.
        store = tmp_path / "store"
        shutil.copytree(lifecycle.status(directory)["store"], store)
        manifest = open_store(store).get_json(report["artifacts"]["proof"])
        cid = manifest["checkpoints"][0]["cid"]
        _corrupt(store, cid)
        audit = _run("audit", "task", "1", "--config", config, "--store", str(store), timeout=1500)
        assert audit.returncode == 2, audit.stdout[-3000:] + audit.stderr[-3000:]
        assert cid in audit.stderr and "corrupt" in audit.stderr, audit.stderr[-3000:]

        # The devnet stopped and brought back from its state file keeps no past states: the
        # audit still holds, the jackpot's reserve before the award summed from its events.
        for command in ("down", "up"):
            done = _run("devnet", command, "--dir", str(directory), timeout=300)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        audit = _run("audit", "task", "1", "--json", "--config", config, timeout=1500)
        assert audit.returncode == 0, audit.stdout[-5000:] + audit.stderr[-3000:]
        again = json.loads(audit.stdout)
        assert again["outcome"] == report["outcome"] and again["holds"]
        if scenario == "forced":
            claims = [f["claim"] for f in again["findings"]]
            assert any("summed from the jackpot's events" in c for c in claims), claims
    finally:
        lifecycle.down(directory)
