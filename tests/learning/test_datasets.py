"""Datasets: deterministic builders, artifacts through real stores, strict loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.learning import tensorfile
from agents.learning.datasets import (
    DatasetError,
    build,
    dataset_cid,
    digits,
    load,
    package,
    synthetic,
    text,
)
from agents.learning.proof import ProofDirectory
from agents.learning.spec import DatasetSource, parse_spec
from agents.learning.task import Task, fit_problem, open_task
from agents.store import open_store
from tests.learning.conftest import spec_dict


def test_builders_are_deterministic_and_seeded() -> None:
    a = synthetic("classification", 50, 4, 3, 1)
    assert dataset_cid(a) == dataset_cid(synthetic("classification", 50, 4, 3, 1))
    assert dataset_cid(a) != dataset_cid(synthetic("classification", 50, 4, 3, 2))
    assert set(a.tensors["targets"].tolist()) <= {0, 1, 2}
    corpus = text(500, 0)
    assert corpus.tensors["tokens"].shape == (500,)
    assert dataset_cid(corpus) == dataset_cid(text(500, 0))


def test_synthetic_labels_are_the_teachers_argmax() -> None:
    data = synthetic("classification", 30, 5, 4, 3)
    x = np.rint(data.tensors["inputs"] * 128).astype(np.int64)
    assert np.array_equal(data.tensors["inputs"], x.astype(np.float32) / 128)
    assert ((x >= -128) & (x <= 127)).all()
    regression = synthetic("regression", 30, 5, 2, 3)
    assert regression.tensors["targets"].shape == (30, 2)


def test_digits_shape() -> None:
    data = digits()
    assert data.tensors["inputs"].shape == (1797, 1, 8, 8)
    assert data.classes == 10 and data.tensors["inputs"].max() == 16


@pytest.mark.parametrize("kind", ["proofdir", "embedded"])
def test_package_and_load_through_real_stores(tmp_path: Path, kind: str) -> None:
    store = (
        ProofDirectory(tmp_path / "p", create=True)
        if kind == "proofdir"
        else open_store(str(tmp_path / "store"))
    )
    data = build(DatasetSource(builtin="text", samples=300, seed=4))
    cid = package(data, store)
    assert cid == dataset_cid(data)
    loaded = load(store, cid)
    assert np.array_equal(loaded.tensors["tokens"], data.tensors["tokens"])
    assert loaded.alphabet == data.alphabet


def _store_header(store: ProofDirectory, header: dict[str, Any], tensors: dict[str, Any]) -> str:
    header["tensors"] = store.put_bytes(tensorfile.encode(tensors))
    return store.put_json(header)


BAD = [
    ({"kind": "classification", "classes": 3}, {"inputs": np.zeros((4, 2), np.float32)}, "two"),
    (
        {"kind": "classification", "classes": 3},
        {"inputs": np.zeros((4, 2), np.float32), "targets": np.array([0, 1, 2, 3])},
        "outside",
    ),
    (
        {"kind": "classification", "classes": 3},
        {"inputs": np.full((4, 2), np.nan, np.float32), "targets": np.zeros(4, np.int64)},
        "NaN",
    ),
    ({"kind": "sequence", "alphabet": "ab"}, {"tokens": np.array([0, 1, 2, 0])}, "alphabet"),
    ({"kind": "sequence", "alphabet": "ab"}, {"tokens": np.zeros(3, np.int64)}, "int64 \\[4\\]"),
    (
        {"kind": "regression"},
        {"inputs": np.zeros((4, 2), np.float32), "targets": np.zeros(4, np.int64)},
        "float32",
    ),
]


@pytest.mark.parametrize(("fields", "tensors", "words"), BAD)
def test_malformed_datasets_are_rejected(
    tmp_path: Path, fields: dict[str, Any], tensors: dict[str, Any], words: str
) -> None:
    store = ProofDirectory(tmp_path, create=True)
    header = {"format": "veritrain-dataset/1", "name": "bad", "samples": 4} | fields
    cid = _store_header(store, header, tensors)
    with pytest.raises(DatasetError, match=words):
        load(store, cid)


def test_header_with_unknown_fields_is_rejected(tmp_path: Path) -> None:
    store = ProofDirectory(tmp_path, create=True)
    header = {"format": "veritrain-dataset/1", "name": "x", "samples": 1, "kind": "regression"}
    cid = _store_header(store, header | {"extra": 1}, {})
    with pytest.raises(DatasetError, match="extra"):
        load(store, cid)


def test_open_task_rebuilds_checks_and_refuses_a_wrong_cid(tmp_path: Path) -> None:
    store = ProofDirectory(tmp_path, create=True)
    with pytest.raises(DatasetError, match="the spec names"):
        open_task(parse_spec(spec_dict()), store)
    data = spec_dict()
    del data["dataset"]["source"]
    with pytest.raises(DatasetError, match="no source"):
        open_task(parse_spec(data), store)


MISFITS = [
    ({"model": {"kind": "mlp", "inputs": 5, "outputs": 3}}, "features"),
    ({"model": {"kind": "mlp", "inputs": 6, "outputs": 4}}, "classes"),
    ({"loss": "mse"}, "regression"),
    (
        {
            "model": {
                "kind": "cnn",
                "input": [1, 2, 3],
                "convs": [{"channels": 2, "kernel": 1}],
                "outputs": 3,
            }
        },
        "per sample",
    ),
]


@pytest.mark.parametrize(("overrides", "words"), MISFITS)
def test_dataset_must_fit_the_model(overrides: dict[str, Any], words: str) -> None:
    spec = parse_spec(spec_dict(**overrides))
    data = synthetic("classification", 96, 6, 3, 5)
    problem = fit_problem(spec, data)
    assert problem is not None and words in problem
    with pytest.raises(DatasetError, match=words):
        Task.bind(spec, data)
