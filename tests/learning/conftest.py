"""Small specs and datasets that train in milliseconds, shared by the learning tests."""

from __future__ import annotations

from typing import Any

import pytest

from agents.learning.datasets import Dataset, synthetic
from agents.learning.spec import TaskSpec, parse_spec

FAKE_CID = "Qm" + "a" * 44


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """A valid tiny MLP classification spec as plain data, with top-level overrides."""
    base: dict[str, Any] = {
        "version": 1,
        "name": "tiny-mlp",
        "dataset": {
            "cid": FAKE_CID,
            "source": {
                "builtin": "synthetic-classification",
                "samples": 96,
                "features": 6,
                "classes": 3,
                "seed": 5,
            },
        },
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


@pytest.fixture
def tiny_spec() -> TaskSpec:
    return parse_spec(spec_dict())


@pytest.fixture
def tiny_dataset() -> Dataset:
    return synthetic("classification", 96, 6, 3, 5)
