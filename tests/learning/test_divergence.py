"""Honest training that diverges (overflow, NaN): what `veritrain pol verify` decides, in both
modes (docs/proof.md, "Divergence"), and what a solver measures before claiming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.cli import main
from agents.learning.cheats import replace_checkpoint
from agents.learning.proof import ProofDirectory, decode_checkpoint
from agents.roles.hardware import Hardware
from agents.roles.jobs import DriftJob
from agents.roles.work import drift_job
from agents.store import open_store
from tests.command_line import veritrain
from tests.exact.tasks import diverging_spec, tiny_exact_spec

RANDOMNESS = "22" * 32
PASS_BITS, FAIL_BITS = "0x00000000", "0x7f800000"


def _train(tmp_path: Path, capsys: pytest.CaptureFixture[str], spec_bytes: bytes) -> Path:
    spec_path = tmp_path / "spec.json"
    spec_path.write_bytes(spec_bytes)
    out = tmp_path / "proof"
    code, text, _ = veritrain(capsys, "pol", "train", "--spec", str(spec_path), "--out", str(out))
    assert code == 0, text
    return out


def _verify(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out: Path, *extra: str
) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, text, _ = veritrain(
        capsys, "pol", "verify", "--spec", str(tmp_path / "spec.json"), "--proof", str(out),
        "--randomness", RANDOMNESS, *extra,
    )  # fmt: skip
    return code, json.loads(text)


def _finite_checkpoints(out: Path) -> list[bool]:
    store = ProofDirectory(out)
    flags = []
    for entry in store.manifest().checkpoints:
        state = decode_checkpoint(store.get_bytes(entry.cid))
        flags.append(all(bool(np.isfinite(v).all()) for n, v in state.items() if n != "step"))
    return flags


@pytest.fixture(scope="module")
def exact_proof(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("diverging-exact")
    spec_path = root / "spec.json"
    spec_path.write_bytes(diverging_spec("exact").canonical_bytes())
    out = root / "proof"
    try:
        main(["pol", "train", "--spec", str(spec_path), "--out", str(out)])
    except SystemExit as exc:
        assert not exc.code
    return root, out


@pytest.mark.parametrize("trace", [False, True], ids=["untraced", "traced"])
def test_an_honest_diverging_exact_training_passes(
    exact_proof: tuple[Path, Path], capsys: pytest.CaptureFixture[str], trace: bool
) -> None:
    root, out = exact_proof
    # The training really diverged: finite at the start, not finite from the first segment on.
    assert _finite_checkpoints(out) == [True] + [False] * 6
    code, verdict = _verify(capsys, root, out, *(["--trace"] if trace else []))
    assert code == 0 and verdict["verdict"] == "pass", verdict
    assert len(verdict["segments"]) == 6  # every segment, the one where it diverged included
    for segment in verdict["segments"]:
        assert segment["claimed_root"] == segment["replay_root"]
        assert segment["reported"] == PASS_BITS and segment["pass"]
        assert (segment["trace_root"] is not None) == trace


def test_a_tolerant_diverging_training_passes_when_the_replay_diverges_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Trained natively, replayed with the exact kernels: both diverge in the first segment,
    # so every group is non-finite on both sides: distance +0.
    out = _train(tmp_path, capsys, diverging_spec("tolerant").canonical_bytes())
    assert _finite_checkpoints(out) == [True] + [False] * 6
    code, verdict = _verify(capsys, tmp_path, out, "--trace")
    assert code == 0 and verdict["verdict"] == "pass", verdict
    assert all(s["distance"] == 0 and s["reported"] == PASS_BITS for s in verdict["segments"])


def test_a_divergence_the_replay_does_not_reach_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A finite training whose last checkpoint claims NaNs: one side diverged, +inf.
    spec = tiny_exact_spec(verification={"segments": 6, "tolerance": "tolerant", "tau": 1e-3})
    out = _train(tmp_path, capsys, spec.canonical_bytes())
    store = ProofDirectory(out)
    manifest = store.manifest()
    last = len(manifest.checkpoints) - 1
    state = dict(decode_checkpoint(store.get_bytes(manifest.checkpoints[last].cid)))
    state = {n: (v if n == "step" else np.full_like(v, np.nan)) for n, v in state.items()}
    forged = replace_checkpoint(store, manifest, last, state)
    (out / "manifest.json").write_text(json.dumps(forged.to_json()))
    code, verdict = _verify(capsys, tmp_path, out)
    assert code == 1 and verdict["verdict"] == "fail"
    (segment,) = (s for s in verdict["segments"] if s["index"] == last - 1)
    assert segment["distance"] == "inf" and segment["reported"] == FAIL_BITS
    assert all(s["pass"] for s in verdict["segments"] if s["index"] != last - 1)


def test_the_solvers_own_drift_on_a_diverging_spec_is_zero(tmp_path: Path) -> None:
    # Before claiming, a solver measures its drift (native training against the exact
    # replay): both diverge, so it measures +0, as verification will (docs/proof.md).
    store = open_store(tmp_path / "store")
    cid = store.put_bytes(diverging_spec("tolerant").canonical_bytes())
    result = drift_job(store, DriftJob(spec_cid=cid, budget=1.0), Hardware("cpu", 1))
    assert result.max_drift == 0.0
