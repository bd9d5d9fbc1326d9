"""Tasks for the backend tests: one per example architecture (digits MLP, small digits
CNN, tiny character transformer with SiLU), defined here so the tests do not move with
the example specs, and a tiny exact-mode spec for proofs."""

from __future__ import annotations

import copy
import functools
from typing import Any

from agents.learning import datasets
from agents.learning.spec import TaskSpec, parse_spec
from agents.learning.task import Task

EXAMPLE_NAMES = ("mlp", "cnn", "transformer")
TAU = 1e-3  # the examples' threshold: one segment of exact training must stay within it

_DIGITS = {"builtin": "digits"}
_COMMON: dict[str, Any] = {
    "version": 1,
    "loss": "cross_entropy",
    "steps": 400,
    "seed": 11,
    "checkpoint_interval": 20,
    "verification": {"segments": 5, "tau": TAU},
}
_SPECS: dict[str, dict[str, Any]] = {
    "mlp": {
        "name": "test-digits-mlp",
        "dataset": {"source": _DIGITS, "preprocessing": {"scale": 0.0625}},
        "model": {"kind": "mlp", "inputs": 64, "hidden": [64], "outputs": 10},
        "optimizer": {"kind": "adam"},
        "schedule": {"kind": "linear", "lr": 0.003, "warmup": 50, "final": 0.1},
        "batch_size": 64,
    },
    "cnn": {
        "name": "test-digits-cnn",
        "dataset": {"source": _DIGITS, "preprocessing": {"scale": 0.0625}},
        "model": {
            "kind": "cnn",
            "input": [1, 8, 8],
            "convs": [
                {"channels": 8, "kernel": 3, "padding": 1},
                {"channels": 16, "kernel": 3, "stride": 2, "padding": 1},
            ],
            "hidden": [32],
            "outputs": 10,
        },
        "optimizer": {"kind": "sgd", "momentum": 0.9, "weight_decay": 0.0001},
        "schedule": {"kind": "step", "lr": 0.05, "gamma": 0.5, "every": 200},
        "batch_size": 32,
    },
    "transformer": {
        "name": "test-char-transformer",
        "dataset": {"source": {"builtin": "text", "samples": 20000, "seed": 1}},
        "model": {
            "kind": "transformer",
            "vocab": 28,
            "context": 32,
            "width": 48,
            "heads": 4,
            "layers": 2,
            "ff": 96,
            "activation": "silu",
        },
        "optimizer": {"kind": "adam"},
        "schedule": {"kind": "linear", "lr": 0.003, "warmup": 50, "final": 0.1},
        "batch_size": 16,
    },
}


def _with_real_cid(data: dict[str, Any]) -> TaskSpec:
    data = copy.deepcopy(data)
    data["dataset"]["cid"] = "Qm" + "a" * 44
    source = parse_spec(data).dataset.source
    assert source is not None
    data["dataset"]["cid"] = datasets.dataset_cid(datasets.build(source))
    return parse_spec(data)


@functools.cache
def example_task(name: str) -> Task:
    """The task of architecture ``name`` (``mlp``, ``cnn`` or ``transformer``)."""
    spec = _with_real_cid({**_COMMON, **_SPECS[name]})
    assert spec.dataset.source is not None
    return Task.bind(spec, datasets.build(spec.dataset.source))


def tiny_exact_spec(**overrides: Any) -> TaskSpec:
    """A small MLP classification task in exact mode (trains in well under a second)."""
    source = {"builtin": "synthetic-classification", "samples": 96, "features": 6, "classes": 3}
    data: dict[str, Any] = {
        "version": 1,
        "name": "tiny-exact",
        "dataset": {"source": source},
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
    return _with_real_cid(data)


def diverging_spec(tolerance: str = "exact", segments: int = 6, **overrides: Any) -> TaskSpec:
    """The tiny task with a learning rate that makes honest training overflow: every
    parameter is non-finite from step 4 (the end of the first of 6 segments) on."""
    source = {"builtin": "synthetic-classification", "samples": 96, "features": 6, "classes": 3}
    verification: dict[str, Any] = {"segments": segments, "tolerance": tolerance}
    if tolerance == "tolerant":
        verification["tau"] = 1e-3
    fields: dict[str, Any] = {
        "name": f"diverging-{tolerance}",
        "dataset": {"source": source, "preprocessing": {"scale": 1e6}},
        "optimizer": {"kind": "sgd"},
        "schedule": {"kind": "linear", "lr": 1000.0, "warmup": 8, "final": 1.0},
        "verification": verification,
    }
    fields.update(overrides)
    return tiny_exact_spec(**fields)
