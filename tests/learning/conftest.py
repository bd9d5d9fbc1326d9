"""Small specs and datasets that train in milliseconds, shared by the learning tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from agents.learning.backends import Backend, get_backend
from agents.learning.datasets import build, dataset_cid
from agents.learning.proof import ProofDirectory
from agents.learning.spec import TaskSpec, parse_spec
from agents.learning.task import Task, open_task

FAKE_CID = "Qm" + "a" * 44
TINY_SOURCE: dict[str, Any] = {
    "builtin": "synthetic-classification",
    "samples": 96,
    "features": 6,
    "classes": 3,
    "seed": 5,
}


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """A valid tiny MLP classification spec as plain data, with top-level overrides."""
    base: dict[str, Any] = {
        "version": 1,
        "name": "tiny-mlp",
        "dataset": {"cid": FAKE_CID, "source": copy.deepcopy(TINY_SOURCE)},
        "model": {"kind": "mlp", "inputs": 6, "hidden": [8], "outputs": 3},
        "loss": "cross_entropy",
        "optimizer": {"kind": "adam"},
        "schedule": {"kind": "constant", "lr": 0.01},
        "steps": 40,
        "batch_size": 8,
        "seed": 7,
        "checkpoint_interval": 4,
        "verification": {"segments": 3, "tau": 0.01},
    }
    base.update(overrides)
    return base


def real_spec(**overrides: Any) -> TaskSpec:
    """``spec_dict`` with the dataset CID its source really has."""
    data = spec_dict(**overrides)
    source = parse_spec(data).dataset.source
    assert source is not None
    data["dataset"]["cid"] = dataset_cid(build(source))
    return parse_spec(data)


class Workspace:
    """A spec, its task and a proof directory holding the spec and the dataset."""

    def __init__(self, spec: TaskSpec, root: Path) -> None:
        self.spec = spec
        self.store = ProofDirectory(root, create=True)
        self.task: Task = open_task(spec, self.store)
        self.spec_cid = self.store.put_bytes(spec.canonical_bytes())
        self.backend: Backend = get_backend("native")


@pytest.fixture
def tiny_spec() -> TaskSpec:
    return real_spec()


@pytest.fixture
def workspace(tiny_spec: TaskSpec, tmp_path: Path) -> Workspace:
    return Workspace(tiny_spec, tmp_path / "proof")
