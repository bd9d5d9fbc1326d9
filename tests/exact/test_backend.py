"""The exact backend: both paths train to the same bits, fused and op-by-op updates
agree, traces are well formed, thread counts and processes change nothing, and
exact training follows native training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional

from agents.commitment import merkle_root, state_root
from agents.exact.trace import Op, SegmentTrace
from agents.learning.backends import BackendError, get_backend
from agents.learning.backends.exact import ExactSession
from agents.learning.distance import group_distances
from agents.learning.layout import PARAM_PREFIX
from agents.learning.models import build_model
from agents.learning.task import Task
from tests.exact.tasks import EXAMPLE_NAMES, TAU, example_task

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_paths_and_fusion_give_the_same_bits(name: str) -> None:
    task = example_task(name)
    start = task.initial_state()
    batches = task.batches(0, 2)
    results = {}
    runs = (("cpu", "cpu", False), ("cpu traced", "cpu", True), ("eager", "eager", True))
    for label, path, trace in runs:
        session = get_backend("exact", path=path).start(task, start, trace=trace)
        session.run(batches)
        results[label] = (state_root(session.state()), session.trace_root())
    assert results["cpu"][0] == results["cpu traced"][0] == results["eager"][0]
    assert results["cpu traced"][1] == results["eager"][1] is not None


def test_trace_is_well_formed() -> None:
    task = example_task("mlp")
    start = task.initial_state()
    session = get_backend("exact").start(task, start, trace=True)
    assert isinstance(session, ExactSession)
    states = []
    for rows in task.batches(0, 3):
        session.run(rows[None, :])
        states.append(session.state())
    assert session._tracer is not None
    segment = SegmentTrace.decode(session._tracer.segment.encode())
    assert len(segment.steps) == 3 and segment.distance is None
    for step, state in zip(segment.steps, states, strict=True):
        last = step.records[-1]
        assert last.op is Op.STATE and last.output == state_root(state)
        assert last.inputs == ()  # the state root stands for the tensors (docs/exact.md, Traces)
        assert step.root() == merkle_root([r.digest() for r in step.records])
    assert segment.root() == session.trace_root()
    groups = session.traced_distances(start, states[-1], "l2", 1e-12)
    assert groups is not None
    assert set(groups) == {"param", "opt/exp_avg", "opt/exp_avg_sq"}
    assert all(d == 0.0 for d in groups.values())
    assert session._tracer.segment.distance is not None
    assert session.trace_root() != segment.root()  # the distance closes the trace


def test_distances_measure_a_difference() -> None:
    task = example_task("mlp")
    start = task.initial_state()
    session = get_backend("exact").start(task, start)
    session.run(task.batches(0, 2))
    end = session.state()
    claimed = dict(end)
    name = next(n for n in end if n.startswith(PARAM_PREFIX))
    claimed[name] = end[name] + np.float32(0.01)
    groups = session.traced_distances(start, claimed, "l2", 1e-12)
    want = group_distances(start, claimed, end, "l2", 1e-12)
    assert groups is not None
    assert groups["param"] > 0 and abs(groups["param"] - want["param"]) <= 1e-5 * want["param"]
    assert groups["opt/exp_avg"] == want["opt/exp_avg"] == 0
    groups = session.traced_distances(start, claimed, "linf", 1e-12)
    want = group_distances(start, claimed, end, "linf", 1e-12)
    assert groups is not None
    assert abs(groups["param"] - want["param"]) <= 1e-5 * want["param"]
    claimed[name] = end[name] * np.float32(np.inf)
    assert (session.traced_distances(start, claimed, "l2", 1e-12) or {})["param"] == np.inf
    with pytest.raises(BackendError, match="metric"):
        session.traced_distances(start, claimed, "l1", 1e-12)


def test_processes_and_thread_counts_agree() -> None:
    runs = []
    for threads, min_work in (("1", None), ("2", "1")):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        if min_work is not None:
            env["VERITRAIN_PARALLEL_MIN_WORK"] = min_work  # every parallel kernel, on 2 threads
        out = subprocess.run(
            [sys.executable, "-m", "tests.exact.replay_segment", *EXAMPLE_NAMES],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
        runs.append(json.loads(out.stdout))
    assert runs[0] == runs[1]
    assert all(r["distance"] == 0.0 for r in runs[0].values())


def test_bad_input_is_refused() -> None:
    task = example_task("mlp")
    start = task.initial_state()
    with pytest.raises(BackendError, match="does not fit"):
        get_backend("exact").start(task, {k: v for k, v in start.items() if k != "step"})
    session = get_backend("exact").start(task, start)
    with pytest.raises(BackendError, match="sample indices"):
        session.run(np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(BackendError, match="outside the dataset"):
        session.run(np.full((1, task.spec.batch_size), 10**6, dtype=np.int64))
    with pytest.raises(BackendError, match="unknown exact path"):
        get_backend("exact", path="gpu")
    with pytest.raises(BackendError, match="cpu path"):
        get_backend("exact", device="cuda", path="cpu")


def _loss(task: Task, state: dict[str, np.ndarray], count: int = 256) -> float:
    """The spec's loss of ``state``'s parameters on the first samples, in float64 torch."""
    model = build_model(task.spec).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.tensor(state[PARAM_PREFIX + name], dtype=torch.float64))
        if task.targets is None:
            tokens = torch.tensor(task.inputs)
            windows = tokens.unfold(0, task.context + 1, 1)[:count]
            logits = model(windows[:, :-1])
            return float(functional.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten()))
        x = torch.tensor(task.inputs[:count], dtype=torch.float64)
        return float(functional.cross_entropy(model(x), torch.tensor(task.targets[:count])))


def _train(task: Task, backend: str, steps: int) -> dict[str, np.ndarray]:
    session = get_backend(backend).start(task, task.initial_state())
    session.run(task.batches(0, steps))
    return session.state()


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_one_segment_stays_within_the_examples_tau(name: str) -> None:
    task = example_task(name)
    start = task.initial_state()
    batches = task.segment_batches(0)
    states = []
    for backend in ("native", "exact"):
        session = get_backend(backend).start(task, start)
        session.run(batches)
        states.append(session.state())
    distances = group_distances(start, states[0], states[1], "l2", 1e-12)
    assert max(distances.values()) <= TAU, distances


def _converges_like_native(name: str, steps: int) -> None:
    task = example_task(name)
    before = _loss(task, task.initial_state())
    native = _loss(task, _train(task, "native", steps))
    exact = _loss(task, _train(task, "exact", steps))
    assert native < 0.7 * before
    assert abs(exact - native) <= 0.02 * native + 1e-3, (before, native, exact)


def test_mlp_converges_like_native() -> None:
    _converges_like_native("mlp", 300)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn", "transformer"])
def test_converges_like_native(name: str) -> None:
    _converges_like_native(name, 300)


def test_a_path_that_flushes_subnormals_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.exact.cpu import CpuKernels
    from agents.exact.errors import ExactEnvironmentError

    real_mul = CpuKernels.mul

    def flushing_mul(self: CpuKernels, a: object, b: object) -> np.ndarray:
        out = real_mul(self, a, b)
        return np.where(np.abs(out) < np.float32(2.0**-126), np.float32(0), out).astype(np.float32)

    monkeypatch.setattr(CpuKernels, "mul", flushing_mul)
    task = example_task("mlp")
    with pytest.raises(ExactEnvironmentError, match="subnormal"):
        get_backend("exact").start(task, task.initial_state())
