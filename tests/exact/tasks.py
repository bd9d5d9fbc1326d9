"""Tasks for the backend tests: the three example specs, and a tiny exact-mode spec."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from agents.learning import datasets
from agents.learning.spec import TaskSpec, load_spec, parse_spec
from agents.learning.task import Task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_NAMES = ("digits-mlp", "digits-cnn", "char-transformer")


@functools.cache
def example_task(name: str) -> Task:
    """The example spec ``examples/<name>.yaml`` bound to its (rebuilt) dataset."""
    spec = load_spec(EXAMPLES / f"{name}.yaml")
    assert spec.dataset.source is not None
    return Task.bind(spec, datasets.build(spec.dataset.source))


def tiny_exact_spec(**overrides: Any) -> TaskSpec:
    """A small MLP classification task in exact mode (trains in well under a second)."""
    source = {"builtin": "synthetic-classification", "samples": 96, "features": 6, "classes": 3}
    data: dict[str, Any] = {
        "version": 1,
        "name": "tiny-exact",
        "dataset": {"cid": "Qm" + "a" * 44, "source": source},
        "model": {"kind": "mlp", "inputs": 6, "hidden": [8], "outputs": 3},
        "loss": "cross_entropy",
        "optimizer": {"kind": "adam"},
        "schedule": {"kind": "linear", "lr": 0.01, "warmup": 4, "final": 0.5},
        "steps": 24,
        "batch_size": 8,
        "seed": 3,
        "checkpoint_interval": 4,
        "verification": {"segments": 3, "tolerance": "exact"},
    }
    data.update(overrides)
    built = parse_spec(data)
    assert built.dataset.source is not None
    data["dataset"]["cid"] = datasets.dataset_cid(datasets.build(built.dataset.source))
    return parse_spec(data)
