"""``veritrain pol``: train, verify, profile and inspect, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.learning import cheats
from agents.learning.proof import ProofDirectory
from agents.learning.selection import sample_segments
from agents.learning.spec import load_spec
from tests import command_line
from tests.learning.conftest import real_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def veritrain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """Run the command line; return its exit status, its JSON output (if any) and stderr."""
    code, out, err = command_line.veritrain(capsys, *args)
    return code, json.loads(out) if out.strip() else None, err


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(real_spec().model_dump(mode="json")))
    return path


def _randomness_hitting(spec_path: Path, segments: set[int], hit: bool) -> str:
    spec = load_spec(spec_path)
    for i in range(1000):
        value = i.to_bytes(32, "big")
        chosen = sample_segments(value, spec.segment_count, spec.verification.segments)
        if bool(set(chosen) & segments) == hit:
            return value.hex()
    raise AssertionError("no such randomness")


def test_train_then_verify(
    capsys: pytest.CaptureFixture[str], spec_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "proof"
    code, summary, _ = veritrain(
        capsys, "pol", "train", "--spec", str(spec_file), "--out", str(out)
    )
    assert code == 0, summary
    assert (out / "manifest.json").exists() and not (out / "journal.json").exists()
    assert summary["manifest"] == ProofDirectory(out).manifest_cid()
    code, verdict, _ = veritrain(
        capsys,
        "pol",
        "verify",
        "--spec",
        str(spec_file),
        "--proof",
        str(out),
        "--randomness",
        "ab" * 32,
        "--backend",
        "native",
    )
    assert code == 0 and verdict["verdict"] == "pass" and len(verdict["segments"]) == 5


def test_verify_exit_codes(
    capsys: pytest.CaptureFixture[str], spec_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "proof"
    assert (
        veritrain(capsys, "pol", "train", "--spec", str(spec_file), "--out", str(out), "--quiet")[0]
        == 0
    )
    store = ProofDirectory(out)
    store.write_manifest(cheats.average_neighbours(store, store.manifest(), 4).manifest)
    base = ["pol", "verify", "--spec", str(spec_file), "--proof", str(out), "--backend", "native"]

    hit = _randomness_hitting(spec_file, {3, 4}, True)
    code, verdict, _ = veritrain(capsys, *base, "--randomness", hit)
    assert code == 1 and verdict["verdict"] == "fail" and verdict["reasons"]
    miss = _randomness_hitting(spec_file, {3, 4}, False)
    code, verdict, _ = veritrain(capsys, *base, "--randomness", miss)
    assert code == 0 and verdict["verdict"] == "pass"

    for bad in ("zz", "ab" * 31):
        code, verdict, err = veritrain(capsys, *base, "--randomness", bad)
        assert code == 2 and verdict is None and "randomness" in err
    code, _, err = veritrain(
        capsys,
        "pol",
        "verify",
        "--spec",
        str(spec_file),
        "--proof",
        str(tmp_path / "none"),
        "--randomness",
        hit,
    )
    assert code == 2 and "does not exist" in err
    (out / "manifest.json").write_text("{}")
    code, verdict, _ = veritrain(capsys, *base, "--randomness", hit)
    assert code == 1 and "format" in verdict["reasons"][0]


def test_invalid_spec_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nname: x\nsteps: -3\n")
    code, _, err = veritrain(capsys, "pol", "inspect", "--spec", str(path))
    assert code == 2 and err.count("\n") == 1 and "steps" in err and "dataset" in err


def test_inspect_and_profile(capsys: pytest.CaptureFixture[str], spec_file: Path) -> None:
    code, info, _ = veritrain(capsys, "pol", "inspect", "--spec", str(spec_file))
    spec = load_spec(spec_file)
    assert code == 0 and info["spec_hash"] == spec.spec_hash().hex() and info["segments"] == 10
    assert info["ops"]["task"] == info["ops"]["step"] * spec.steps > 0
    code, profile, _ = veritrain(
        capsys, "pol", "profile", "--spec", str(spec_file), "--budget", "0.5"
    )
    assert code == 0 and profile["tau"] >= 1e-6 and profile["max_drift"] > 0
    assert profile["cheat_min_distance"] > profile["tau"] and profile["window"] == [0, 1, 2, 3]
    assert 0 < profile["exceed_probability"] <= 1.001e-6 and profile["cost_ratio"] > 0
    code, _, err = veritrain(capsys, "pol", "profile", "--spec", str(spec_file), "--budget", "2")
    assert code == 2 and "budget" in err


def test_digits_example_passes_and_an_averaged_checkpoint_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = str(EXAMPLES / "digits-mlp.yaml")
    out = tmp_path / "digits"
    code, summary, _ = veritrain(
        capsys, "pol", "train", "--spec", spec, "--out", str(out), "--quiet"
    )
    assert code == 0 and summary["segments"] == 200
    verify = ["pol", "verify", "--spec", spec, "--proof", str(out), "--randomness"]
    code, verdict, _ = veritrain(capsys, *verify, "cd" * 32)
    assert code == 0 and verdict["verdict"] == "pass", verdict

    store = ProofDirectory(out)
    store.write_manifest(cheats.average_neighbours(store, store.manifest(), 100).manifest)
    code, verdict, _ = veritrain(
        capsys, *verify, _randomness_hitting(EXAMPLES / "digits-mlp.yaml", {99, 100}, True)
    )
    assert code == 1 and verdict["verdict"] == "fail"
    failed = {s["index"] for s in verdict["segments"] if not s["pass"]}
    assert failed and failed <= {99, 100}
    code, verdict, _ = veritrain(
        capsys, *verify, _randomness_hitting(EXAMPLES / "digits-mlp.yaml", {99, 100}, False)
    )
    assert code == 0 and verdict["verdict"] == "pass"
