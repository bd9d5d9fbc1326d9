"""The example specs: valid, their datasets rebuild to the CIDs they name, they train."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.learning.backends import get_backend
from agents.learning.datasets import build, dataset_cid
from agents.learning.distance import group_distances, segment_distance
from agents.learning.opcount import op_count
from agents.learning.spec import load_spec, spec_from_bytes
from tests.learning.conftest import Workspace

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_there_are_the_three_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {"digits-mlp", "digits-cnn", "char-transformer"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_rebuilds_its_dataset_and_trains_within_tau(path: Path, tmp_path: Path) -> None:
    spec = load_spec(path)
    assert spec_from_bytes(spec.canonical_bytes()) == spec  # the canonical form reads back
    assert spec.dataset.source is not None
    assert dataset_cid(build(spec.dataset.source)) == spec.dataset.cid
    assert op_count(spec).task > 0
    workspace = Workspace(spec, tmp_path)
    task = workspace.task
    session = workspace.backend.start(task, task.initial_state())
    session.run(task.segment_batches(0))
    start = session.state()
    session.run(task.segment_batches(1))
    end = session.state()
    other = get_backend("native", microbatches=2).start(task, start)
    other.run(task.segment_batches(1))
    verification = spec.verification
    distance = segment_distance(
        group_distances(start, end, other.state(), verification.metric, verification.epsilon)
    )
    assert verification.tau is not None
    assert 0 < distance < verification.tau / 10
