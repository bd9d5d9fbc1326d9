"""A verifier whose own Kubo node is peered with the solver's finds an honest proof available
(its node fetches the artifacts); an artifact nobody serves is still the solver's fault.

No Kubo binary installs here, so the verifier's node is ``tests.store.peered.PeeredNode``:
Kubo's RPC answers (offline reads see only the node's own blocks, online reads fetch from its
peers until the request's timeout) over loopback HTTP, in front of the solver's real store.
tests/store/test_kubo_peers.py runs the same situation on two real Kubo nodes where one is
installed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from agents.learning import faults
from agents.learning.layout import State
from agents.learning.proof import Manifest
from agents.learning.selection import sample_segments
from agents.learning.solver import train
from agents.learning.task import Task
from agents.learning.verifier import Replay, Replayer, Verdict, verify
from agents.store import ArtifactStore, Retrieval
from agents.store.cid import CID
from agents.store.embedded import EmbeddedStore
from agents.store.kubo import KuboStore
from tests.learning.conftest import Workspace
from tests.store.counting import counting
from tests.store.peered import PeeredNode

RANDOMNESS = hashlib.sha256(b"availability").digest()
# Where an artifact is withheld, the verifier waits this long for each artifact: the withheld
# one is found missing only after it, and every artifact served must be walked within it
# (loopback HTTP through the node: about 0.05 s each, 0.1 s at most in 460 walks on a two-core
# machine running seven jobs; half a second left too little margin).
WITHHELD_TIMEOUT = 2.0


def _publish(workspace: Workspace, manifest: Manifest, root: Path, skip: set[str]) -> EmbeddedStore:
    """The solver's node: every artifact of the proof but those in ``skip``."""
    node = EmbeddedStore(root, fsync=False)
    for cid in manifest.cids():
        if cid not in skip:
            assert node.put_bytes(workspace.store.get_bytes(cid)) == cid
    return node


@pytest.fixture
def honest(workspace: Workspace) -> Manifest:
    return train(workspace.task, workspace.store, workspace.backend, spec_cid=workspace.spec_cid)


def _verify(
    workspace: Workspace,
    manifest: Manifest,
    store: ArtifactStore,
    timeout: float | None = None,
    replayer: Replayer | None = None,
    workers: int = 1,
) -> Verdict:
    return verify(
        workspace.task,
        manifest,
        store,
        RANDOMNESS,
        replayer or Replayer(workspace.backend),
        spec_cid=workspace.spec_cid,
        retrieval_timeout=timeout,
        workers=workers,
    )


def test_an_honest_proof_on_the_solvers_node_passes_a_verifier_with_its_own_node(
    workspace: Workspace, honest: Manifest, tmp_path: Path
) -> None:
    solver = _publish(workspace, honest, tmp_path / "solver", skip=set())
    with PeeredNode([solver]) as node:
        client = KuboStore(node.url, retries=1, backoff=0.01)
        assert not any(client.has(cid) for cid in honest.cids())  # nothing local yet
        verdict = _verify(workspace, honest, client, timeout=30.0)
        assert verdict.passed, verdict.reasons
        assert verdict.fault is None
        client.close()


def test_an_artifact_nobody_serves_is_the_solvers_fault_after_the_timeout(
    workspace: Workspace, honest: Manifest, tmp_path: Path
) -> None:
    withheld = honest.checkpoints[3].cid
    solver = _publish(workspace, honest, tmp_path / "solver", skip={withheld})
    with PeeredNode([solver]) as node:
        client = KuboStore(node.url, retries=1, backoff=0.01)
        verdict = _verify(workspace, honest, client, timeout=WITHHELD_TIMEOUT)
        assert not verdict.passed
        assert verdict.fault is not None
        assert (verdict.fault.kind, verdict.fault.cid) == ("unavailable", withheld)
        assert verdict.fault.position == honest.cids().index(withheld)
        assert "not available" in verdict.reasons[0] and "within 2 s" in verdict.reasons[0]
        client.close()


def test_a_second_verifier_confirms_an_unavailable_fault_only_while_nobody_serves_it(
    workspace: Workspace, honest: Manifest, tmp_path: Path
) -> None:
    withheld = honest.final_model
    solver = _publish(workspace, honest, tmp_path / "solver", skip={withheld})
    manifest_cid = solver.put_json(honest.to_json())
    assert manifest_cid == workspace.store.put_json(honest.to_json())
    with PeeredNode([solver]) as node:
        client = KuboStore(node.url, retries=1, backoff=0.01)
        verdict = _verify(workspace, honest, client, timeout=WITHHELD_TIMEOUT)
        assert verdict.fault is not None and verdict.fault.kind == "unavailable"
        record = faults.record(verdict.fault, manifest_cid)
        # Another verifier's node, peered with the solver's, checks the claim.
        confirm = {"spec_cid": workspace.spec_cid, "retrieval_timeout": WITHHELD_TIMEOUT}
        assert faults.confirm(workspace.task, client, record, **confirm)  # type: ignore[arg-type]
        # Once the solver serves the artifact, the claim no longer holds.
        solver.put_bytes(workspace.store.get_bytes(withheld))
        assert not faults.confirm(workspace.task, client, record, **confirm)  # type: ignore[arg-type]
        client.close()


def test_a_verification_checks_each_block_once_for_availability_and_once_for_its_read(
    workspace: Workspace, honest: Manifest, tmp_path: Path
) -> None:
    """On a verifier's embedded store, the availability walk checks every artifact's root,
    and each artifact the verifier reads (every checkpoint, the final model, the selected
    segments' batches) is checked once more by its read: no block is read a third time.
    (This tiny proof's artifacts are one block each.)"""
    store = _publish(workspace, honest, tmp_path / "verifier", skip=set())
    blocks = counting(store)
    verdict = _verify(workspace, honest, store)
    assert verdict.passed, verdict.reasons
    read = [c.cid for c in honest.checkpoints] + [honest.final_model]
    read += [honest.segments[i].batches for i in verdict.selected]
    expected = Counter(CID.parse(cid) for cid in honest.cids() + read)
    assert blocks.hashed() == expected
    assert blocks.per_block() == expected


class BeginningReplayer(Replayer):
    """Replays as its backend does; ``began`` is set when the first replay begins."""

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(workspace.backend)
        self.began = threading.Event()
        self.replays = 0

    def replay(self, task: Task, start: State, batches: np.ndarray, trace: bool = False) -> Replay:
        self.replays += 1
        self.began.set()
        return super().replay(task, start, batches, trace)


def _sample_artifacts(workspace: Workspace, manifest: Manifest) -> tuple[list[int], set[str]]:
    """The segments ``RANDOMNESS`` samples, and the artifacts their replays read."""
    spec = workspace.spec
    sample = sample_segments(RANDOMNESS, spec.segment_count, spec.verification.segments)
    cids = {manifest.checkpoints[i + d].cid for i in sample for d in (0, 1)}
    return sample, cids | {manifest.segments[i].batches for i in sample}


def _withheld(manifest: Manifest, sample: list[int], case: str) -> list[str]:
    unsampled = next(i for i in range(len(manifest.segments)) if i not in sample)
    # A checkpoint no sampled segment reads.
    apart = next(i for i in range(len(manifest.checkpoints)) if {i - 1, i}.isdisjoint(sample))
    return {
        "nothing": [],
        "a sampled checkpoint": [manifest.checkpoints[sample[1] + 1].cid],
        "batches outside the sample": [manifest.segments[unsampled].batches],
        "sampled batches and an earlier checkpoint": [
            manifest.segments[sample[0]].batches,
            manifest.checkpoints[apart].cid,
        ],
        "a sampled checkpoint and the final model": [
            manifest.checkpoints[sample[-1]].cid,
            manifest.final_model,
        ],
    }[case]


@pytest.mark.parametrize(
    "case",
    [
        "nothing",
        "a sampled checkpoint",
        "batches outside the sample",
        "sampled batches and an earlier checkpoint",
        "a sampled checkpoint and the final model",
    ],
)
def test_the_verdict_on_withheld_artifacts_is_the_same_for_any_number_of_workers(
    workspace: Workspace, honest: Manifest, tmp_path: Path, case: str
) -> None:
    """With several workers the sample's artifacts are checked first and their replays start
    while the rest are checked: whatever is withheld, the verdict is one worker's (the first
    unavailable artifact in the manifest's order, no segment replayed)."""
    sample, _ = _sample_artifacts(workspace, honest)
    withheld = _withheld(honest, sample, case)
    store = _publish(workspace, honest, tmp_path / "verifier", skip=set(withheld))
    verdicts = []
    for workers in (1, 2, 3):
        replayer = BeginningReplayer(workspace)
        verdicts.append(
            _verify(workspace, honest, store, replayer=replayer, workers=workers).to_json()
        )
        if case == "batches outside the sample" and workers > 1:
            assert replayer.replays > 0  # begun before the withheld batches were found
    one = verdicts[0]
    assert all(other == one for other in verdicts[1:])
    if not withheld:
        assert one["verdict"] == "pass"
        return
    positions = [honest.cids().index(cid) for cid in withheld]
    assert one["segments"] == []
    assert one["fault"] == {
        "kind": "unavailable",
        "position": min(positions),
        "cid": honest.cids()[min(positions)],
    }


class GatedStore(EmbeddedStore):
    """The verifier's store: checking an artifact outside the sample's waits, the first time,
    up to ``wait`` seconds for a replay to begin, and notes whether one had."""

    def __init__(self, root: Path, sample: set[str], began: threading.Event, wait: float) -> None:
        super().__init__(root, fsync=False)
        self.sample = sample
        self.began = began
        self.wait = wait
        self.began_during_walk: list[bool] = []

    def require_available(self, cid: str, retrieval: Retrieval | None = None) -> None:
        if cid not in self.sample:
            if self.began_during_walk:
                self.began_during_walk.append(self.began.is_set())
            else:
                self.began_during_walk.append(self.began.wait(self.wait))
        super().require_available(cid, retrieval)


def test_the_sample_replays_while_the_other_artifacts_are_checked_for_availability(
    workspace: Workspace, honest: Manifest, tmp_path: Path
) -> None:
    _, sample = _sample_artifacts(workspace, honest)
    _publish(workspace, honest, tmp_path / "verifier", skip=set())
    verdicts = []
    for workers, wait in ((1, 0.0), (2, 60.0)):
        replayer = BeginningReplayer(workspace)
        store = GatedStore(tmp_path / "verifier", sample, replayer.began, wait)
        verdict = _verify(workspace, honest, store, replayer=replayer, workers=workers)
        assert verdict.passed, verdict.reasons
        verdicts.append(verdict.to_json())
        others = sum(cid not in sample for cid in honest.cids())
        assert len(store.began_during_walk) == others
        # One worker replays after the walk; two begin the sample's first replay before
        # any other artifact is checked.
        assert store.began_during_walk == [workers > 1] * others
    assert verdicts[0] == verdicts[1]
