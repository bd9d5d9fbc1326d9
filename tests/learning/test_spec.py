"""The task spec: validation, canonical form, parameter counts."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from agents.learning.layout import parameter_shapes
from agents.learning.opcount import EXP_OPS, op_count
from agents.learning.spec import SpecError, parameter_count, parse_spec, spec_from_bytes
from agents.store import cid_of_bytes
from tests.learning.conftest import spec_dict


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(spec_dict())
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return data


INVALID = [
    # (field path, bad value, words the error must contain)
    ("version", 2, "version"),
    ("color", "red", "color"),
    ("model.kind", "rnn", "model"),
    ("model.hidden", [0], "model.mlp.hidden.0"),
    ("model.extra", 1, "model.mlp.extra"),
    ("steps", 0, "steps"),
    ("steps", 2**24, "steps"),
    ("steps", 42, "multiple of checkpoint_interval"),
    ("batch_size", 10**6, "batch_size"),
    ("seed", -1, "seed"),
    ("schedule.lr", -0.1, "schedule.constant.lr"),
    ("schedule.lr", float("nan"), "schedule.constant.lr"),
    ("optimizer.beta1", 1.0, "optimizer.adam.beta1"),
    ("verification.segments", 11, "only 10"),
    ("verification.tolerance", "loose", "verification.tolerance"),
    ("dataset.cid", "x", "dataset.cid"),
    ("name", "bad name!", "name"),
    ("batch_size", True, "true/false"),
    ("model.hidden", [8, False], "true/false"),
    ("dataset.source.outputs", 2, "takes no outputs"),
    ("loss", "hinge", "loss"),
    ("model.activation", "gelu", "model.mlp.activation"),
]


@pytest.mark.parametrize(("path", "value", "words"), INVALID)
def test_invalid_fields_are_rejected_with_their_name(path: str, value: Any, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(_with(path, value))
    assert words in str(caught.value)


def test_exact_mode_forbids_a_positive_tau() -> None:
    with pytest.raises(SpecError, match="tau must be 0"):
        parse_spec(_with("verification", {"tolerance": "exact", "tau": 0.1}))
    assert parse_spec(_with("verification", {"tolerance": "exact"})).verification.threshold() == 0


def test_transformer_width_must_split_into_heads() -> None:
    model = {"kind": "transformer", "vocab": 30, "context": 8, "width": 10, "heads": 4}
    model |= {"layers": 1, "ff": 16}
    with pytest.raises(SpecError, match="multiple of heads"):
        parse_spec(_with("model", model))


def test_cnn_that_shrinks_to_nothing_is_rejected() -> None:
    model = {"kind": "cnn", "input": [1, 4, 4], "convs": [{"channels": 2, "kernel": 5}]}
    with pytest.raises(SpecError, match="shrinks to nothing"):
        parse_spec(_with("model", model | {"outputs": 3}))


def test_canonical_form_ignores_how_the_spec_was_written() -> None:
    explicit = spec_dict()
    explicit["optimizer"] = {"kind": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    as_yaml = yaml.safe_dump(spec_dict(), sort_keys=False).encode()
    as_json = json.dumps(explicit, indent=4).encode()
    a, b = spec_from_bytes(as_yaml), spec_from_bytes(as_json)
    assert a.canonical_bytes() == b.canonical_bytes()
    assert a.spec_hash() == b.spec_hash()
    assert parse_spec(json.loads(a.canonical_bytes())) == a


def test_any_change_changes_the_hash() -> None:
    hashes = {parse_spec(spec_dict(seed=s)).spec_hash() for s in range(5)}
    hashes.add(parse_spec(spec_dict(batch_size=4)).spec_hash())
    assert len(hashes) == 6


# spec_dict()'s hash as the spec code computed it before model.activation existed.
HASH_BEFORE_ACTIVATION = "c27a2e92f1639ab85eabb6104f79c6f3382798afe551074771e9512633cf63b5"

MODELS = [
    {"kind": "mlp", "inputs": 6, "hidden": [8], "outputs": 3},
    {"kind": "cnn", "input": [1, 4, 4], "convs": [{"channels": 2, "kernel": 3}], "outputs": 3},
    {"kind": "transformer", "vocab": 5, "context": 4, "width": 8, "heads": 2, "layers": 1, "ff": 8},
]


def test_a_spec_without_activation_keeps_its_hash_from_before_the_field() -> None:
    spec = parse_spec(spec_dict())
    assert spec.spec_hash().hex() == HASH_BEFORE_ACTIVATION
    assert b"activation" not in spec.canonical_bytes()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m["kind"])
def test_the_default_activation_is_left_out_of_the_canonical_form(model: dict[str, Any]) -> None:
    data = spec_dict(model=model)
    if model["kind"] == "transformer":
        data["dataset"]["source"] = {"builtin": "text", "samples": 16}
    written = {
        activation: parse_spec(_with_model(data, activation))
        for activation in (None, "relu", "silu")
    }
    unset, relu, silu = written[None], written["relu"], written["silu"]
    assert relu.model.activation == unset.model.activation == "relu"
    assert relu.canonical_bytes() == unset.canonical_bytes()
    assert b"activation" not in unset.canonical_bytes()
    assert cid_of_bytes(relu.canonical_bytes()) == cid_of_bytes(unset.canonical_bytes())
    assert b'"activation":"silu"' in silu.canonical_bytes()
    assert silu.spec_hash() != unset.spec_hash()
    assert cid_of_bytes(silu.canonical_bytes()) != cid_of_bytes(unset.canonical_bytes())
    for spec in written.values():
        assert parse_spec(json.loads(spec.canonical_bytes())) == spec


def _with_model(data: dict[str, Any], activation: str | None) -> dict[str, Any]:
    data = copy.deepcopy(data)
    if activation is not None:
        data["model"]["activation"] = activation
    return data


def test_garbage_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="mapping"):
        spec_from_bytes(b"- 1\n- 2\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        spec_from_bytes(b"a: [1,\n")


MODELS = [
    {"kind": "mlp", "inputs": 6, "hidden": [8, 5], "outputs": 3},
    {
        "kind": "cnn",
        "input": [1, 8, 8],
        "convs": [
            {"channels": 4, "kernel": 3, "padding": 1},
            {"channels": 6, "kernel": 3, "stride": 2},
        ],
        "hidden": [7],
        "outputs": 3,
    },
    {
        "kind": "transformer",
        "vocab": 30,
        "context": 8,
        "width": 16,
        "heads": 2,
        "layers": 2,
        "ff": 24,
    },
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m["kind"])
def test_parameter_count_matches_the_torch_model(model: dict[str, Any]) -> None:
    spec = parse_spec(_with("model", model))
    shapes = parameter_shapes(spec)
    numel = 0
    for shape in shapes.values():
        size = 1
        for d in shape:
            size *= d
        numel += size
    assert parameter_count(spec.model) == numel


def _activations_per_sample(model: dict[str, Any]) -> int:
    """Activated values per sample, counted from the architecture by hand."""
    if model["kind"] == "mlp":
        return int(sum(model["hidden"]))
    if model["kind"] == "cnn":
        height, count = 8, 0
        for conv in model["convs"]:
            stride = conv.get("stride", 1)
            height = (height + 2 * conv.get("padding", 0) - conv["kernel"]) // stride + 1
            count += conv["channels"] * height * height
        return count + int(sum(model["hidden"]))
    return int(model["layers"] * model["context"] * model["ff"])


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m["kind"])
def test_silu_costs_its_sequence_per_activated_value(model: dict[str, Any]) -> None:
    relu = op_count(parse_spec(_with("model", model)))
    silu = op_count(parse_spec(_with("model", {**model, "activation": "silu"})))
    batch = spec_dict()["batch_size"]
    # ReLU is one op; SiLU negates, exps, adds, divides and multiplies.
    extra = batch * _activations_per_sample(model) * (4 + EXP_OPS - 1)
    assert silu.forward - relu.forward == extra
    assert silu.task > relu.task
