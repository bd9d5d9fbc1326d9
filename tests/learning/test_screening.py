"""Screening: the rule on tables of statistics, and real spoofs found in trained proofs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from agents.learning import cheats
from agents.learning.proof import decode_checkpoint
from agents.learning.screening import (
    CheckpointStatistics,
    Prober,
    ScreeningFlag,
    extra_segments,
    screen,
    screen_states,
)
from agents.learning.verifier import Replayer, verify
from tests.learning.conftest import Workspace, real_spec


def stats(norms: list[float], losses: list[float] | None = None) -> list[CheckpointStatistics]:
    losses = losses or [2.0 - 0.01 * i for i in range(len(norms))]
    return [CheckpointStatistics(True, n, v) for n, v in zip(norms, losses, strict=True)]


def flagged(flags: list[ScreeningFlag]) -> list[int]:
    return [f.segment for f in flags]


SMOOTH = [10.0 + 0.1 * i for i in range(11)]


def test_smooth_training_is_not_flagged() -> None:
    updates = [1.0 * 0.97**i for i in range(10)]
    assert screen(stats(SMOOTH), updates, [1.0] * 10) == []


def test_a_schedules_drop_is_no_anomaly() -> None:
    # The rate falls tenfold at segment 5; so does the update: normalized, nothing moved oddly.
    rates = [1.0] * 5 + [0.1] * 5
    updates = [0.5 * r for r in rates]
    assert screen(stats(SMOOTH), updates, rates) == []
    # Without the drop in the rate, the same updates are a collapse, flagged where it starts
    # (and while the segments before still set the level).
    assert flagged(screen(stats(SMOOTH), updates, [1.0] * 10))[0] == 5


@pytest.mark.parametrize(
    ("case", "expected", "reason"),
    [
        ("nan", [4], "turns non-finite"),
        ("frozen", [6], "frozen"),
        ("jump", [3], "update"),
        ("collapse", [7], "update"),
        ("norm", [2], "norm"),
        ("loss", [5], "probe loss"),
    ],
)
def test_each_kind_of_regime_change_is_flagged(case: str, expected: list[int], reason: str) -> None:
    norms, losses = list(SMOOTH), [2.0 - 0.01 * i for i in range(11)]
    updates, rates = [1.0] * 10, [1.0] * 10
    checkpoint = [CheckpointStatistics(True, n, v) for n, v in zip(norms, losses, strict=True)]
    if case == "nan":
        for i in range(5, 11):
            checkpoint[i] = CheckpointStatistics(False, math.nan, math.nan)
            updates[i - 1] = math.nan if i > 5 else math.inf
    elif case == "frozen":
        updates[6] = 0.0
    elif case == "jump":
        updates[3] = 20.0
    elif case == "collapse":
        updates[7:] = [0.05] * 3
    elif case == "norm":
        checkpoint[3] = CheckpointStatistics(True, norms[2] * 5, losses[3])
        checkpoint[4:] = [
            CheckpointStatistics(True, norms[2] * 5 + 0.1 * j, losses[3 + j]) for j in range(1, 8)
        ]
    elif case == "loss":
        checkpoint[6:] = [
            CheckpointStatistics(True, norms[i], losses[i] + 1.0) for i in range(6, 11)
        ]
    flags = screen(checkpoint, updates, rates)
    assert flagged(flags)[: len(expected)] == expected
    assert reason in flags[0].reason


def test_flags_are_ranked_and_the_sample_is_skipped() -> None:
    checkpoint = stats(SMOOTH)
    checkpoint[9:] = [CheckpointStatistics(False, math.nan, math.nan)] * 2
    updates = [1.0, 0.0, 1.0, 25.0, 1.0, 1.0, 1.0, 1.0, math.inf, math.nan]
    flags = screen(checkpoint, updates, [1.0] * 10)
    assert [(f.segment, f.tier) for f in flags[:3]] == [(8, 0), (1, 1), (3, 2)]
    assert extra_segments(flags, exclude=[1], limit=2) == [3, 8]


def test_screening_needs_consistent_lengths() -> None:
    with pytest.raises(ValueError):
        screen(stats(SMOOTH), [1.0] * 9, [1.0] * 10)


# -- real proofs ---------------------------------------------------------------------------


SPOOFS = {
    "nan_state": lambda ws: cheats.nan_state(ws.task, ws.store, ws.spec_cid, ws.backend, at=4),
    "zero_weights": lambda ws: cheats.zero_weights(
        ws.task, ws.store, ws.spec_cid, ws.backend, at=4
    ),
    "copy_forward": lambda ws: cheats.copy_forward(
        ws.task, ws.store, ws.spec_cid, ws.backend, fraction=0.5
    ),
}


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(real_spec(), tmp_path / "proof")


def checkpoints(workspace: Workspace, proof: cheats.CheatProof) -> list[dict]:  # type: ignore[type-arg]
    return [
        dict(decode_checkpoint(workspace.store.get_bytes(c.cid)))
        for c in proof.manifest.checkpoints
    ]


def test_an_honest_proof_is_not_flagged(workspace: Workspace) -> None:
    proof = cheats.honest(workspace.task, workspace.store, workspace.spec_cid, workspace.backend)
    assert screen_states(workspace.task, checkpoints(workspace, proof)) == []


@pytest.mark.parametrize("name", sorted(SPOOFS))
def test_spoofs_are_flagged_where_they_fake(workspace: Workspace, name: str) -> None:
    proof = SPOOFS[name](workspace)
    flags = screen_states(workspace.task, checkpoints(workspace, proof))
    assert set(flagged(flags)[:1]) <= set(proof.faked)
    assert flags and flags[0].segment in proof.faked


@pytest.mark.parametrize("name", sorted(SPOOFS))
def test_the_verifier_rejects_spoofs_whatever_the_randomness(
    workspace: Workspace, name: str
) -> None:
    """With screening the one faked segment is replayed on every draw, not only when sampled."""
    proof = SPOOFS[name](workspace)
    replayer = Replayer(workspace.backend)
    for i in range(8):
        randomness = i.to_bytes(32, "big")
        verdict = verify(
            workspace.task,
            proof.manifest,
            workspace.store,
            randomness,
            replayer,
            spec_cid=workspace.spec_cid,
        )
        assert not verdict.passed
        assert set(verdict.selected) & proof.faked


def test_probing_runs_on_one_torch_thread_and_leaves_the_count(workspace: Workspace) -> None:
    """The probe's forward pass gives the statistics of a one-thread process and leaves the
    process's torch thread count as it was."""
    proof = cheats.honest(workspace.task, workspace.store, workspace.spec_cid, workspace.backend)
    states = checkpoints(workspace, proof)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = [Prober(workspace.task).statistics(s) for s in states]
        torch.set_num_threads(2)
        shared = [Prober(workspace.task).statistics(s) for s in states]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert shared == alone
