"""A model cut into pipeline stages, with activation compression where they meet: the spec
fields, the state layout, and single-process training (the arithmetic a swarm follows)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from agents.commitment import tensor_root
from agents.exact.ops import Tracer
from agents.learning import datasets
from agents.learning.backends import get_backend
from agents.learning.backends.base import StageSession
from agents.learning.backends.exact import ExactBackend, step_batch_tensors
from agents.learning.distance import group_of
from agents.learning.layout import parameter_shapes, state_shapes
from agents.learning.spec import SpecError, parse_spec, stage_bounds
from agents.learning.stages import stage_of_path, stage_paths
from agents.learning.task import Task, fit_problem

MLP: dict[str, Any] = {
    "version": 1,
    "name": "staged-mlp",
    "loss": "cross_entropy",
    "dataset": {
        "cid": "Qm" + "a" * 44,
        "source": {
            "builtin": "synthetic-classification",
            "samples": 48,
            "features": 6,
            "classes": 3,
            "seed": 5,
        },
    },
    "model": {"kind": "mlp", "inputs": 6, "hidden": [8, 5], "outputs": 3},
    "optimizer": {"kind": "adam"},
    "schedule": {"kind": "constant", "lr": 0.01},
    "steps": 12,
    "batch_size": 8,
    "seed": 3,
    "checkpoint_interval": 2,
    "verification": {"segments": 2, "tolerance": "exact"},
}
TRANSFORMER: dict[str, Any] = {
    **MLP,
    "name": "staged-transformer",
    "dataset": {"cid": "Qm" + "a" * 44, "source": {"builtin": "text", "samples": 60, "seed": 1}},
    "model": {
        "kind": "transformer", "vocab": 28, "context": 6, "width": 8, "heads": 2,
        "layers": 3, "ff": 12,
    },
    "batch_size": 4,
}  # fmt: skip


def _spec(base: dict[str, Any], **parallel: Any) -> Any:
    data = copy.deepcopy(base)
    if parallel:
        data["parallel"] = parallel
    return parse_spec(data)


def _task(base: dict[str, Any], **parallel: Any) -> Task:
    spec = _spec(base, **parallel)
    return Task.bind(spec, datasets.build(spec.dataset.source))


AQ = {"method": "aq", "bits": 2, "backward_bits": 4}


# --- the spec --------------------------------------------------------------------------


def test_new_fields_at_their_defaults_leave_the_canonical_form_alone() -> None:
    split = _spec(MLP, microbatches=2)
    written_out = _spec(MLP, microbatches=2, stages=1, compression=None)
    assert written_out.canonical_bytes() == split.canonical_bytes()
    assert b'"parallel":{"microbatches":2}' in split.canonical_bytes()
    staged = _spec(MLP, microbatches=2, stages=3)
    assert b'"parallel":{"microbatches":2,"stages":3}' in staged.canonical_bytes()
    compressed = _spec(MLP, microbatches=2, stages=3, compression={"method": "direct", "bits": 4})
    assert b'"compression":{"backward_bits":null,"bits":4,"method":"direct","samples":null}' in (
        compressed.canonical_bytes()
    )
    hashes = {s.spec_hash() for s in (split, staged, compressed)}
    assert len(hashes) == 3


INVALID = [
    ({"stages": 1, "compression": {"method": "direct", "bits": 2}}, "stages must be at least 2"),
    ({"stages": 2, "compression": {"method": "aq", "bits": 2}}, "give samples"),
    ({"stages": 2, "compression": {"method": "direct", "bits": 2, "samples": 48}}, "keeps no"),
    ({"stages": 2, "compression": {"method": "direct", "bits": 5}}, "bits"),
    ({"stages": 2, "compression": {"method": "direct", "bits": 2, "backward_bits": 1}}, "bits"),
    ({"stages": 2, "compression": {"method": "zip", "bits": 2}}, "method"),
    ({"stages": 4}, "exceeds the model's 3 layers"),
    ({"stages": 0}, "stages"),
]


@pytest.mark.parametrize(("parallel", "words"), INVALID)
def test_bad_parallel_sections_are_refused(parallel: dict[str, Any], words: str) -> None:
    with pytest.raises(SpecError, match=words):
        _spec(MLP, microbatches=2, **parallel)


def test_a_cnn_is_not_cut_and_buffers_are_bounded() -> None:
    cnn = copy.deepcopy(MLP)
    cnn["model"] = {
        "kind": "cnn", "input": [1, 8, 8], "convs": [{"channels": 2, "kernel": 3}],
        "hidden": [4], "outputs": 3,
    }  # fmt: skip
    with pytest.raises(SpecError, match="a cnn is not cut"):
        _spec(cnn, microbatches=1, stages=2)
    big = copy.deepcopy(TRANSFORMER)
    big["model"] = {**big["model"], "width": 4096, "heads": 8, "context": 512, "ff": 8}
    with pytest.raises(SpecError, match="aq buffers would hold"):
        _spec(big, microbatches=1, stages=2, compression={**AQ, "samples": 1000})


def test_aq_samples_must_be_the_datasets() -> None:
    spec = _spec(MLP, microbatches=2, stages=2, compression={**AQ, "samples": 47})
    dataset = datasets.build(spec.dataset.source)
    assert fit_problem(spec, dataset) == (
        "parallel.compression.samples is 47, the dataset has 48 samples"
    )
    text = _spec(TRANSFORMER, microbatches=1, stages=2, compression={**AQ, "samples": 54})
    assert fit_problem(text, datasets.build(text.dataset.source)) is None  # 60 tokens − 6


# --- stages and the state -------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "stages", "want"),
    [(3, 1, [(0, 3)]), (3, 2, [(0, 2), (2, 3)]), (3, 3, [(0, 1), (1, 2), (2, 3)]),
     (5, 3, [(0, 2), (2, 4), (4, 5)]), (4, 2, [(0, 2), (2, 4)])],
)  # fmt: skip
def test_stage_bounds(units: int, stages: int, want: list[tuple[int, int]]) -> None:
    assert stage_bounds(units, stages) == want


@pytest.mark.parametrize("base", [MLP, TRANSFORMER])
@pytest.mark.parametrize("stages", [1, 2, 3])
def test_every_parameter_is_in_one_stage(base: dict[str, Any], stages: int) -> None:
    spec = _spec(base)
    held = [p for s in range(stages) for p in stage_paths(spec, stages, s)]
    assert sorted(held) == sorted(parameter_shapes(spec))
    if base is TRANSFORMER:
        assert stage_of_path(spec, stages, "tokens.weight") == 0
        assert stage_of_path(spec, stages, "positions.weight") == 0
        assert stage_of_path(spec, stages, "head.bias") == stages - 1
        assert stage_of_path(spec, stages, "blocks.2.mlp_in.weight") == stages - 1
        assert stage_of_path(spec, stages, "blocks.0.norm1.bias") == 0


def test_aq_buffers_are_in_the_state_and_their_own_distance_groups() -> None:
    spec = _spec(MLP, microbatches=2, stages=3, compression={**AQ, "samples": 48})
    shapes = state_shapes(spec)
    assert shapes["aq/0/activation"] == (48, 8)  # after the first layer: hidden 8
    assert shapes["aq/1/activation"] == (48, 5)
    assert shapes["aq/0/seen"] == shapes["aq/1/seen"] == (48,)
    assert list(shapes)[:4] == ["aq/0/activation", "aq/0/seen", "aq/1/activation", "aq/1/seen"]
    text = _spec(TRANSFORMER, microbatches=1, stages=2, compression={**AQ, "samples": 54})
    assert state_shapes(text)["aq/0/activation"] == (54, 6 * 8)
    assert group_of("aq/1/activation") == "aq/activation"
    assert group_of("aq/0/seen") == "aq/seen"
    direct = _spec(MLP, microbatches=2, stages=3, compression={"method": "direct", "bits": 2})
    assert not any(name.startswith("aq/") for name in state_shapes(direct))
    task = _task(MLP, microbatches=2, stages=3, compression={**AQ, "samples": 48})
    state = task.initial_state()
    assert not state["aq/0/activation"].any() and not state["aq/1/seen"].any()


# --- training ----------------------------------------------------------------------------


def _staged_step(
    session: StageSession, spec: Any, rows: np.ndarray, slices: int, stages: int
) -> None:
    """One step driven stage by stage through the StageSession interface, uncompressed."""
    size = len(rows) // slices
    paths = [p for s in range(stages) for p in stage_paths(spec, stages, s)]
    acc = None
    for m in range(slices):
        part = rows[m * size : (m + 1) * size]
        h = None
        for stage in range(stages):
            h = session.stage_forward(stages, stage, part, h)
        d = None
        grads: dict[str, Any] = {}
        for stage in reversed(range(stages)):
            d, got = session.stage_backward(stage, slices, d)
            grads.update(got)
        acc = session.accumulate(acc, grads, paths)
    assert acc is not None
    session.apply_stage(paths, acc)


@pytest.mark.parametrize("base", [MLP, TRANSFORMER])
@pytest.mark.parametrize("stages", [2, 3])
def test_stages_in_turn_compute_the_unstaged_step_bit_for_bit(
    base: dict[str, Any], stages: int
) -> None:
    task = _task(base, microbatches=2)
    batches = task.batches(0, 3)
    whole = get_backend("exact", threads=1).start(task, task.initial_state())
    whole.run(batches)
    staged = get_backend("exact", threads=1).start(task, task.initial_state())
    assert isinstance(staged, StageSession)
    for rows in batches:
        _staged_step(staged, task.spec, rows, 2, stages)
    want, got = whole.state(), staged.state()
    assert list(got) == list(want)
    for name, value in want.items():
        assert got[name].tobytes() == value.tobytes(), name
    assert float(got["step"]) == 3


@pytest.mark.parametrize("base", [MLP, TRANSFORMER])
def test_compression_changes_training_and_native_follows_exact(base: dict[str, Any]) -> None:
    samples = 48 if base is MLP else 54
    states = {}
    for label, compression in (
        ("none", None),
        ("direct", {"method": "direct", "bits": 2, "backward_bits": 4}),
        ("aq", {**AQ, "samples": samples}),
    ):
        parallel: dict[str, Any] = {"microbatches": 2, "stages": 2}
        if compression is not None:
            parallel["compression"] = compression
        task = _task(base, **parallel)
        batches = task.batches(0, 12)
        exact = get_backend("exact", threads=1).start(task, task.initial_state())
        exact.run(batches)
        native = get_backend("native").start(task, task.initial_state())
        native.run(batches)
        states[label] = exact.state()
        for name, value in exact.state().items():
            np.testing.assert_allclose(
                native.state()[name], value, rtol=1e-3, atol=1e-4, err_msg=f"{label} {name}"
            )
    for label in ("direct", "aq"):
        moved = max(
            float(np.abs(states[label][n] - states["none"][n]).max())
            for n in states["none"]
            if n.startswith("param/")
        )
        assert moved > 1e-4, label


def test_aq_buffers_follow_the_samples_a_step_saw() -> None:
    task = _task(MLP, microbatches=2, stages=3, compression={**AQ, "samples": 48})
    session = get_backend("exact", threads=1).start(task, task.initial_state())
    batches = task.batches(0, 6)  # one epoch of 48 samples in batches of 8
    session.run(batches[:1])
    state = session.state()
    rows = batches[0]
    seen = state["aq/0/seen"]
    assert seen[rows].tolist() == [1.0] * 8
    assert seen.sum() == 8
    # A sample's first pass is in full: its buffer is the first layer's activation exactly.
    start = task.initial_state()
    x = task.inputs[rows]
    w, b = start["param/layers.0.weight"], start["param/layers.0.bias"]
    reference = np.maximum(x @ w.T + b, 0)
    np.testing.assert_allclose(state["aq/0/activation"][rows], reference, rtol=1e-5, atol=1e-6)
    untouched = np.setdiff1d(np.arange(48), rows)
    assert not state["aq/0/activation"][untouched].any()
    session.run(batches[1:])
    assert session.state()["aq/1/seen"].sum() == 48


def test_a_compressed_proof_verifies_with_traced_replays_and_forged_buffers_fail(
    tmp_path: Any,
) -> None:
    import hashlib

    from agents.commitment import state_root
    from agents.learning.proof import checkpoint_root, decode_checkpoint, encode_checkpoint
    from agents.learning.solver import train
    from agents.learning.verifier import Replayer, verify
    from agents.store import open_store

    data = copy.deepcopy(MLP)
    data["verification"] = {"segments": 6, "tolerance": "exact"}
    data["parallel"] = {"microbatches": 2, "stages": 3, "compression": {**AQ, "samples": 48}}
    spec = parse_spec(data)
    assert spec.dataset.source is not None
    task = Task.bind(spec, datasets.build(spec.dataset.source))
    store = open_store(str(tmp_path / "store"))
    backend = get_backend("exact", threads=1)
    manifest = train(task, store, backend)
    randomness = hashlib.sha256(b"r").digest()
    verdict = verify(
        task, manifest, store, randomness, Replayer(backend), spec_cid=manifest.spec, trace=True
    )
    assert verdict.passed, verdict.reasons
    assert all(s.trace_root is not None for s in verdict.segments)
    assert "aq/activation" in verdict.segments[0].distances
    # A checkpoint whose buffers are not what the steps left: the segment after it fails
    # (its replay starts from them), though the parameters are honest.
    entries = list(manifest.checkpoints)
    state = dict(decode_checkpoint(store.get_bytes(entries[3].cid)))
    state["aq/0/activation"] = state["aq/0/activation"] * np.float32(0.5)
    forged_cid = store.put_bytes(encode_checkpoint(state))
    entries[3] = entries[3].model_copy(
        update={"cid": forged_cid, "state_root": state_root(state).hex()}
    )
    roots = [bytes.fromhex(c.state_root) for c in entries]
    forged = manifest.model_copy(
        update={"checkpoints": entries, "checkpoint_root": checkpoint_root(roots).hex()}
    )
    verdict = verify(task, forged, store, randomness, Replayer(backend), spec_cid=manifest.spec)
    assert not verdict.passed
    failed = [s.index for s in verdict.segments if not s.passed]
    assert failed and set(failed) <= {2, 3}


class _SourceTracer(Tracer):
    """Keeps, per step, the op sequence (step scalars by index) and the roots of the arrays a
    step reads that no op of it made and that are neither the state it starts from nor the
    dataset: its index tensors, in first-read order."""

    def __init__(self, kernels: Any, start: Any) -> None:
        super().__init__(kernels)
        self.start = {tensor_root(np.asarray(v)) for v in start.values()}
        self.known: set[int] = set()
        self.alive: list[Any] = []
        self.ops: list[list[tuple[Any, ...]]] = [[]]
        self.inputs: list[list[bytes]] = [[]]

    def pin(self, array: Any) -> bytes:
        self.known.add(id(array))
        self.alive.append(array)
        return super().pin(array)

    def record(
        self, op: Any, attributes: Any, inputs: Any, output: Any, scalars: Any = None
    ) -> None:
        super().record(op, attributes, inputs, output, scalars)
        for x in inputs:
            if id(x) in self.known:
                continue
            root = tensor_root(self.kernels.to_numpy(x))
            if len(self.ops) == 1 and root in self.start:
                continue
            if root not in self.inputs[-1]:
                self.inputs[-1].append(root)
        marked: list[Any] = [float(a) for a in attributes]
        for position, index in (scalars or {}).items():
            marked[position] = ("scalar", index)
        shapes = tuple(tuple(int(d) for d in x.shape) for x in inputs)
        self.ops[-1].append((op, tuple(marked), shapes))
        self.known.add(id(output))
        self.alive.append(output)

    def record_state(self, arrays: Any) -> None:
        super().record_state(arrays)
        self.known = {id(a) for a in arrays} | {id(a) for a in self.alive if a is not None}
        self.ops.append([])
        self.inputs.append([])


@pytest.mark.parametrize("base", [MLP, TRANSFORMER])
def test_a_compressed_step_reads_its_batch_tensors_and_one_op_sequence(
    base: dict[str, Any],
) -> None:
    samples = 48 if base is MLP else 54
    task = _task(base, microbatches=2, stages=3, compression={**AQ, "samples": samples})
    state = task.initial_state()
    ordinary = task.batches(0, 1)[0]
    repeated = ordinary.copy()
    repeated[-1] = repeated[0]  # a step straddling two epochs may see a sample twice
    batches = np.stack([ordinary, repeated, task.batches(1, 1)[0]])
    backend = get_backend("exact", threads=1)
    assert isinstance(backend, ExactBackend)
    tracer = _SourceTracer(backend.kernels, state)
    session = backend.start(task, state, tracer=tracer)
    session.run(batches)
    for step, rows in enumerate(batches):
        want = [tensor_root(t) for t in step_batch_tensors(task, rows)]
        assert tracer.inputs[step] == want, step
    assert tracer.ops[0] == tracer.ops[1] == tracer.ops[2]
