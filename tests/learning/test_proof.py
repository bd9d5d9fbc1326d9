"""The proof directory and manifest: CID-checked reads, strict parsing, a real kill and resume."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from agents.learning.malformed import raw_tensorfile
from agents.learning.proof import (
    ProofDirectory,
    ProofError,
    decode_batches,
    encode_batches,
    parse_manifest,
)
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
    changes: list[tuple[dict[str, Any], str]] = [
        ({"format": "veritrain-proof/2"}, "format"),
        ({"extra": 1}, "extra"),
        ({"final_model": "../../x"}, "final_model"),
        ({"checkpoint_root": "XY" * 32}, "checkpoint_root"),
    ]
    for change, words in changes:
        with pytest.raises(ProofError, match=words):
            parse_manifest(json.dumps(manifest.to_json() | change).encode())
    with pytest.raises(ProofError, match="larger"):
        parse_manifest(b" " * (65 << 20))
    with pytest.raises(ProofError, match="larger"):
        parse_manifest(good, limit=len(good) - 1)
    text = good.decode()
    for old, new, words in [
        ('"steps": 40', '"steps": ' + "9" * 5000, "5000 digits"),
        ('"steps": 40', '"steps": "40"', "steps"),
        ('"steps": 40', '"steps": 40.0', "number"),
        ('"steps": 40', '"steps": NaN', "NaN"),
        ('"steps": 40', '"steps": 1e400', "number"),
        ('"steps": 40', '"steps": true', "steps"),
        ('"steps": 40', '"steps": 40, "steps": 41', "twice"),
        ('"step": 4', '"step": "\u00b2"', "step"),
        ('"format": ', '"format": ' + "[" * 200_000 + "]" * 200_000 + ', "x": ', "nested"),
    ]:
        assert old in text, old
        with pytest.raises(ProofError, match=words):
            parse_manifest(text.replace(old, new, 1).encode())


@pytest.mark.parametrize(
    "first", ["\u00b2", "\u0660", "9" * 5000, "00", "-1", "+1", " 1", "1 ", "", "1" * 11, "0x1"]
)
def test_batches_first_step_is_plain_ascii_digits(first: str) -> None:
    batches = np.zeros((2, 3), np.int64)
    data = encode_batches(batches, 7).replace(b'"first_step":"7"', b'"first_step":"@"')
    header_size = struct.unpack("<Q", data[:8])[0]
    header = data[8 : 8 + header_size].rstrip(b" ").replace(b"@", first.encode())
    crafted = raw_tensorfile(header, data[8 + header_size :])
    with pytest.raises(ProofError, match="first_step"):
        decode_batches(crafted)
    assert decode_batches(encode_batches(batches, 1234567890))[1] == 1234567890


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
