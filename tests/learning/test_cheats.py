"""Cheating solvers are rejected at least as often as the sampling math says; honest ones never.

A cheat that fakes ``F`` of ``S`` segments is caught iff a faked segment is
sampled, so each run's verdict is checked against that, and the rejection rate
over many randomness values against ``1 − C(S − F, s) / C(S, s)``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.learning import cheats
from agents.learning.backends import Backend, backend_available, get_backend
from agents.learning.selection import detection_probability
from agents.learning.solver import train
from agents.learning.verifier import Replayer, verify
from tests.learning.conftest import Workspace, real_spec

RUNS = 60


def randomness(i: int) -> bytes:
    return hashlib.sha256(b"cheat" + i.to_bytes(4, "big")).digest()


def rejection_rate(workspace: Workspace, proof: cheats.CheatProof, runs: int = RUNS) -> float:
    replayer = Replayer(workspace.backend)
    rejected = 0
    for i in range(runs):
        verdict = verify(
            workspace.task,
            proof.manifest,
            workspace.store,
            randomness(i),
            replayer,
            spec_cid=workspace.spec_cid,
        )
        sampled_fake = bool(set(verdict.selected) & proof.faked)
        checked_before = bool(verdict.reasons) and not verdict.segments
        # Rejected exactly when a faked segment was replayed, or before any replay.
        assert verdict.passed == (not sampled_fake and not checked_before), verdict.to_json()
        rejected += not verdict.passed
    return rejected / runs


def at_least(rate: float, p: float, runs: int = RUNS) -> bool:
    """``rate`` is no lower than ``p`` beyond four standard deviations of a binomial rate."""
    return rate >= p - 4 * math.sqrt(p * (1 - p) / runs)


Cheat = Callable[[Workspace], cheats.CheatProof]

ALWAYS: list[tuple[str, Cheat]] = [
    ("interpolate", lambda w: cheats.interpolate(w.task, w.store, w.spec_cid, w.backend)),
    ("fewer_steps", lambda w: cheats.fewer_steps(w.task, w.store, w.spec_cid, w.backend)),
    ("other_order", lambda w: cheats.other_order(w.task, w.store, w.spec_cid, w.backend)),
    (
        "other_order_recorded",
        lambda w: cheats.other_order(w.task, w.store, w.spec_cid, w.backend, record_own=True),
    ),
    ("other_init", lambda w: cheats.other_init(w.task, w.store, w.spec_cid, w.backend)),
    ("add_noise", lambda w: cheats.add_noise(w.task, w.store, w.spec_cid, w.backend)),
    ("tiny_updates", lambda w: cheats.tiny_updates(w.task, w.store, w.spec_cid, w.backend)),
    (
        "copy_forward_all",
        lambda w: cheats.copy_forward(w.task, w.store, w.spec_cid, w.backend, fraction=1.0),
    ),
]


@pytest.mark.parametrize(("name", "cheat"), ALWAYS, ids=[c[0] for c in ALWAYS])
def test_cheats_faking_every_segment_are_always_rejected(
    workspace: Workspace, name: str, cheat: Cheat
) -> None:
    proof = cheat(workspace)
    assert len(proof.faked) == workspace.spec.segment_count
    assert rejection_rate(workspace, proof, runs=20) == 1.0


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_partial_copy_forward_is_caught_as_often_as_the_formula_says(
    workspace: Workspace, fraction: float
) -> None:
    proof = cheats.copy_forward(
        workspace.task, workspace.store, workspace.spec_cid, workspace.backend, fraction, seed=3
    )
    s, count = workspace.spec.verification.segments, workspace.spec.segment_count
    p = detection_probability(count, len(proof.faked), s)
    assert at_least(rejection_rate(workspace, proof), p)


def test_partial_fewer_steps(workspace: Workspace) -> None:
    proof = cheats.fewer_steps(
        workspace.task, workspace.store, workspace.spec_cid, workspace.backend, fraction=0.2, seed=1
    )
    p = detection_probability(10, len(proof.faked), 3)
    assert at_least(rejection_rate(workspace, proof), p)


def test_reusing_another_tasks_proof_is_rejected(workspace: Workspace, tmp_path: Path) -> None:
    other = Workspace(real_spec(seed=99), tmp_path / "other")
    manifest = train(other.task, workspace.store, other.backend, spec_cid=other.spec_cid)
    proof = cheats.reuse(manifest, workspace.spec_cid)
    assert rejection_rate(workspace, proof, runs=5) == 1.0


SOLVERS = [
    get_backend("native", threads=2),
    get_backend("native", microbatches=2),
    get_backend("native", microbatches=4),
]
REPLAYERS = [get_backend("native"), get_backend("native", microbatches=8)]
if backend_available("exact"):
    REPLAYERS.append(get_backend("exact"))


@pytest.mark.parametrize("optimizer", [{"kind": "adam"}, {"kind": "sgd", "momentum": 0.9}])
@pytest.mark.parametrize("solver", SOLVERS, ids=lambda b: b.describe())
def test_honest_proofs_pass_under_other_kernels(
    tmp_path: Path, optimizer: dict[str, object], solver: Backend
) -> None:
    workspace = Workspace(real_spec(optimizer=optimizer), tmp_path)
    manifest = train(workspace.task, workspace.store, solver, spec_cid=workspace.spec_cid)
    distances = []
    for replayer in REPLAYERS:
        for i in range(10):
            verdict = verify(
                workspace.task,
                manifest,
                workspace.store,
                randomness(i),
                Replayer(replayer),
                spec_cid=workspace.spec_cid,
            )
            assert verdict.passed, verdict.to_json()
            distances += [s.distance for s in verdict.segments]
    assert max(distances) > 0  # the kernels really differed
    tau = workspace.spec.verification.tau
    assert tau is not None and max(distances) < tau / 100
