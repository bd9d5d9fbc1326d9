"""Screening: the rule on tables of statistics, and real spoofs found in trained proofs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from agents.learning import cheats
from agents.learning.proof import decode_checkpoint
from agents.learning.schedule import LearningRate
from agents.learning.screening import (
    CheckpointStatistics,
    Prober,
    ScreeningFlag,
    extra_segments,
    screen,
    screen_states,
    segment_rates,
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


def test_segment_0_is_judged_by_its_kind_and_norm_only() -> None:
    """Segment 0 has no segments before it and is in every sample: its first descent (an
    update and a loss change far above the later ones, as in an honest proof of the round
    bench's long spec) is no anomaly; its kind and its norm still are."""
    losses = [2.3, 0.44, 0.099, 0.061, 0.052, 0.042, 0.035, 0.041, 0.044, 0.053, 0.033]
    updates = [2.06, 0.54, 0.24, 0.19, 0.156, 0.13, 0.11, 0.1, 0.09, 0.08]
    assert screen(stats(SMOOTH, losses), updates, [1.0] * 10) == []
    frozen = screen(stats(SMOOTH, losses), [0.0, *updates[1:]], [1.0] * 10)
    assert (frozen[0].segment, frozen[0].tier) == (0, 1)
    grown = [SMOOTH[0] / 5, *SMOOTH[1:]]
    shifted = screen(stats(grown, losses), updates, [1.0] * 10)
    assert [(f.segment, f.reason) for f in shifted] == [(0, "norm out of line with its neighbours")]
    broken = stats(SMOOTH, losses)
    broken[1:] = [CheckpointStatistics(False, math.nan, math.nan)] * 10
    assert flagged(screen(broken, [math.inf] + [math.nan] * 9, [1.0] * 10)) == [0]


def test_segment_1_is_not_measured_against_segment_0_alone() -> None:
    """A warm-up that holds the first descent back to segment 1 (segments of about 100 steps
    of a 200-step warm-up): segment 1's loss change against segment 0's alone is no measure;
    from segment 2 on, two changes or more are, and a lasting rise is flagged."""
    losses = [2.3, 2.2, 0.33, 0.16, 0.099, 0.071, 0.091, 0.085, 0.08, 0.078, 0.075]
    updates = [1.27, 1.55, 0.41, 0.26, 0.21, 0.19, 0.17, 0.16, 0.15, 0.14]
    assert screen(stats(SMOOTH, losses), updates, [1.0] * 10) == []
    risen = [*losses[:5], *(v + 2.0 for v in losses[5:])]  # a lasting rise after the descent
    assert flagged(screen(stats(SMOOTH, risen), updates, [1.0] * 10)) == [4]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("spike up", []),  # checkpoint 6 alone off its level: an honest probe batch's noise
        ("spike down", []),
        ("shift up", [5]),  # checkpoints 6 on at a new level: flagged where it starts
        ("shift down", [5]),
        ("two checkpoints up", [5, 7]),  # off for two checkpoints: both ends are shifts
        ("last checkpoint", [9]),  # the last segment has one checkpoint after it
        ("second-to-last", [8]),
    ],
)
def test_a_loss_shift_is_flagged_and_a_one_checkpoint_spike_is_not(
    shape: str, expected: list[int]
) -> None:
    losses = [2.0 - 0.01 * i for i in range(11)]
    moved = {
        "spike up": {6},
        "spike down": {6},
        "shift up": set(range(6, 11)),
        "shift down": set(range(6, 11)),
        "two checkpoints up": {6, 7},
        "last checkpoint": {10},
        "second-to-last": {9, 10},
    }[shape]
    sign = -1.0 if "down" in shape else 1.0
    table = [v + sign * 0.5 if j in moved else v for j, v in enumerate(losses)]
    flags = screen(stats(SMOOTH, table), [1.0] * 10, [1.0] * 10)
    assert sorted(flagged(flags)) == expected
    assert all(f.reason == "probe loss out of line with its neighbours" for f in flags)


def test_a_quiet_stretch_does_not_make_a_small_lasting_move_a_shift() -> None:
    """The typical loss change is the median of the eight segments before: three quiet
    segments among them leave it at the level of the rest, so a lasting move of three
    typical changes is no shift; ten typical changes are."""
    changes = [0.01, -0.01] * 5 + [1e-5] * 3  # segments 0-12: noise, then a quiet stretch

    def table(move: float) -> list[CheckpointStatistics]:
        losses = [1.0]
        for change in [*changes, -move, 0.01, -0.01, 0.01]:
            losses.append(losses[-1] + change)
        return stats([10.0 + 0.01 * i for i in range(len(losses))], losses)

    count = len(changes) + 4
    assert screen(table(0.03), [1.0] * count, [1.0] * count) == []
    assert flagged(screen(table(0.1), [1.0] * count, [1.0] * count)) == [13]


def test_a_non_finite_checkpoint_between_finite_ones_is_flagged_once() -> None:
    checkpoint = stats(SMOOTH)
    checkpoint[4] = CheckpointStatistics(False, math.nan, math.nan)
    updates = [1.0, 1.0, 1.0, math.inf, math.inf, 1.0, 1.0, 1.0, 1.0, 1.0]
    # Segment 4 starts from the non-finite checkpoint; segment 5 reads it among its
    # neighbours' losses and updates, and skips it.
    assert [(f.segment, f.tier) for f in screen(checkpoint, updates, [1.0] * 10)] == [(3, 0)]


LONG_SPEC_STATISTICS = Path(__file__).with_name("long_screening.json")


def test_an_honest_long_spec_proof_is_not_flagged() -> None:
    """An honest proof of the round bench's long spec (200 segments): its probe loss jumps
    at checkpoints 18 and 142 and falls back at the next, and the changes before 141 happen
    to be tiny; no segment is flagged."""
    table = json.loads(LONG_SPEC_STATISTICS.read_text())
    checkpoint = stats(table["param_norm"], table["probe_loss"])
    losses = table["probe_loss"]
    assert losses[18] > 2 * max(losses[17], losses[19])  # the spikes are in the table
    assert losses[142] - losses[141] > 50 * abs(losses[140] - losses[139])
    assert screen(checkpoint, table["update"], table["rate"]) == []


@pytest.mark.parametrize(
    ("schedule", "steps", "interval"),
    [
        ({"kind": "constant", "lr": 0.1}, 40, 4),
        ({"kind": "step", "lr": 0.1, "gamma": 0.3, "every": 7}, 40, 4),
        ({"kind": "step", "lr": 0.7, "gamma": 0.9, "every": 1}, 60, 1),
        ({"kind": "linear", "lr": 0.2, "warmup": 8, "final": 0.25}, 40, 4),
        ({"kind": "linear", "lr": 0.05, "warmup": 0, "final": 0.1}, 40, 10),
        ({"kind": "linear", "lr": 0.05, "warmup": 40, "final": 0.1}, 40, 8),
        ({"kind": "linear", "lr": 0.05, "warmup": 200, "final": 0.1}, 31800, 159),
        ({"kind": "linear", "lr": 0.0123, "warmup": 37, "final": 0.0}, 1000, 10),
    ],
)
def test_segment_rates_are_the_sums_of_the_step_by_step_rates(
    schedule: dict[str, object], steps: int, interval: int, tmp_path: Path
) -> None:
    """``λ_i`` as the rates of each segment's steps, one by one, summed in step order: the
    same binary64 sum, bit for bit."""
    spec = real_spec(schedule=schedule, steps=steps, checkpoint_interval=interval)
    rate = LearningRate(spec)
    expected = [
        sum((float(rate(t)) for t in range(i * interval, (i + 1) * interval)), 0.0)
        for i in range(steps // interval)
    ]
    task = Workspace(spec, tmp_path / "proof").task
    assert [r.hex() for r in segment_rates(task)] == [r.hex() for r in expected]


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
