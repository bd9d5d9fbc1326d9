"""The proof directory and manifest: CID-checked reads, strict parsing, a real kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from agents.learning.proof import ProofDirectory, ProofError, parse_manifest
from agents.learning.solver import train
from agents.store import StoreError
from tests.learning.conftest import Workspace, real_spec

ROOT = Path(__file__).resolve().parents[2]


def test_reads_are_checked_against_the_cid(tmp_path: Path) -> None:
    store = ProofDirectory(tmp_path, create=True)
    cid = store.put_bytes(b"checkpoint bytes")
    assert store.get_bytes(cid) == b"checkpoint bytes" and store.has(cid)
    (store.artifacts / cid).write_bytes(b"checkpoint bytez")
    with pytest.raises(StoreError, match="does not match its CID"):
        store.get_bytes(cid)
    with pytest.raises(StoreError, match="not a CID"):
        store.get_bytes("../../etc/passwd")
    with pytest.raises(StoreError, match="not in"):
        store.get_bytes("Qm" + "x" * 44)
    with pytest.raises(StoreError, match="does not exist"):
        ProofDirectory(tmp_path / "absent")


def test_manifest_parsing_is_strict(workspace: Workspace) -> None:
    manifest = train(
        workspace.task, workspace.store, workspace.backend, spec_cid=workspace.spec_cid
    )
    good = json.dumps(manifest.to_json()).encode()
    assert parse_manifest(good) == manifest
    for change, words in [
        ({"format": "veritrain-proof/2"}, "format"),
        ({"extra": 1}, "extra"),
        ({"final_model": "../../x"}, "final_model"),
        ({"checkpoint_root": "XY" * 32}, "checkpoint_root"),
    ]:
        with pytest.raises(ProofError, match=words):
            parse_manifest(json.dumps(manifest.to_json() | change).encode())
    with pytest.raises(ProofError, match="larger"):
        parse_manifest(b" " * (65 << 20))


def _train(spec_path: Path, out: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "agents.cli", "pol", "train", "--spec", str(spec_path)]
    return subprocess.Popen(
        [*command, "--out", str(out), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )


def test_solver_killed_mid_training_resumes_to_the_same_proof(tmp_path: Path) -> None:
    spec = real_spec(steps=3000, checkpoint_interval=20)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    process = _train(spec_path, killed)
    journal = killed / "journal.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) > 5:
            break
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "manifest.json").exists()
    for out in (killed, straight):
        finished = _train(spec_path, out)
        _, err = finished.communicate(timeout=300)
        assert finished.returncode == 0, err.decode()
    assert (killed / "manifest.json").read_bytes() == (straight / "manifest.json").read_bytes()
