"""Exact mode end to end through the command line: ``veritrain pol train`` trains with the
exact kernels, ``veritrain pol verify`` replays with the exact backend by default, and
every sampled segment has distance exactly 0 and the claimed state root."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.commitment import state_root
from agents.learning.proof import (
    ProofDirectory,
    checkpoint_root,
    decode_checkpoint,
    encode_checkpoint,
)
from tests.command_line import veritrain
from tests.exact.tasks import tiny_exact_spec

RANDOMNESS = "11" * 32


@pytest.fixture
def proof(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    spec_path = tmp_path / "spec.json"
    spec_path.write_bytes(tiny_exact_spec().canonical_bytes())
    out = tmp_path / "proof"
    code, _, _ = veritrain(capsys, "pol", "train", "--spec", str(spec_path), "--out", str(out))
    assert code == 0
    return spec_path, out


@pytest.mark.parametrize("trace", [False, True], ids=["untraced", "traced"])
def test_exact_proof_verifies_with_zero_distances(
    proof: tuple[Path, Path], capsys: pytest.CaptureFixture[str], trace: bool
) -> None:
    spec_path, out = proof
    code, text, _ = veritrain(
        capsys, "pol", "verify", "--spec", str(spec_path), "--proof", str(out),
        "--randomness", RANDOMNESS, *(["--trace"] if trace else []),
    )  # fmt: skip
    verdict = json.loads(text)
    assert code == 0 and verdict["verdict"] == "pass", verdict
    assert verdict["backend"].startswith("exact(")
    assert verdict["segments"]
    for segment in verdict["segments"]:
        assert segment["distance"] == 0
        assert all(d == 0 for d in segment["distances"].values())
        assert segment["claimed_root"] == segment["replay_root"]
        # With --trace, the trace root covers the replay and the distance computation.
        assert (segment["trace_root"] is not None) == trace


def test_one_flipped_bit_in_a_checkpoint_fails(
    proof: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path, out = proof
    store = ProofDirectory(out)
    manifest = store.manifest()
    # Flip the lowest bit of one weight in every checkpoint strictly between the first
    # and the last (so every segment touches one), and re-point the manifest (roots
    # included) so that only the replay can tell.
    data = json.loads((out / "manifest.json").read_text())
    roots = []
    for i, entry in enumerate(manifest.checkpoints):
        state = dict(decode_checkpoint(store.get_bytes(entry.cid)))
        if 0 < i < len(manifest.checkpoints) - 1:
            name = next(n for n in state if n.startswith("param/"))
            flipped = state[name].copy()
            flipped.reshape(-1).view(np.uint32)[0] ^= 1
            state[name] = flipped
        cid = store.put_bytes(encode_checkpoint(state))
        data["checkpoints"][i]["cid"] = cid
        data["checkpoints"][i]["state_root"] = state_root(state).hex()
        roots.append(state_root(state))
    data["checkpoint_root"] = checkpoint_root(roots).hex()
    (out / "manifest.json").write_text(json.dumps(data))
    code, text, _ = veritrain(
        capsys, "pol", "verify", "--spec", str(spec_path), "--proof", str(out),
        "--randomness", RANDOMNESS,
    )  # fmt: skip
    verdict = json.loads(text)
    assert code == 1 and verdict["verdict"] == "fail", json.dumps(verdict)
    assert verdict["segments"] and not any(s["pass"] for s in verdict["segments"])
    assert all(s["distance"] > 0 for s in verdict["segments"])
