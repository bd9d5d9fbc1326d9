"""The native backend: the state layout in and out, determinism, honest variation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.commitment import state_root
from agents.learning.backends import BackendError, get_backend
from agents.learning.layout import state_shapes
from tests.learning.conftest import Workspace


def test_state_keeps_the_layout_and_counts_steps(workspace: Workspace) -> None:
    task = workspace.task
    session = workspace.backend.start(task, task.initial_state())
    session.run(task.batches(0, 5))
    state = session.state()
    assert {n: s.shape for n, s in state.items()} == state_shapes(task.spec)
    assert float(state["step"]) == 5.0
    assert all(t.dtype == np.float32 for t in state.values())
    assert not np.array_equal(
        state["param/layers.0.weight"], task.initial_state()["param/layers.0.weight"]
    )


def test_a_run_split_anywhere_gives_the_same_bits(workspace: Workspace) -> None:
    task, backend = workspace.task, workspace.backend
    whole = backend.start(task, task.initial_state())
    whole.run(task.batches(0, 12))
    first = backend.start(task, task.initial_state())
    first.run(task.batches(0, 5))
    second = backend.start(task, first.state())
    second.run(task.batches(5, 7))
    assert state_root(whole.state()) == state_root(second.state())


def test_microbatches_change_bits_not_the_result(workspace: Workspace) -> None:
    task = workspace.task
    one = workspace.backend.start(task, task.initial_state())
    two = get_backend("native", microbatches=2).start(task, task.initial_state())
    one.run(task.batches(0, 8))
    two.run(task.batches(0, 8))
    a, b = one.state()["param/layers.0.weight"], two.state()["param/layers.0.weight"]
    assert np.allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        (np.zeros((2, 3), np.int64), "batches must be"),
        (np.full((1, 8), 96, np.int64), "outside the dataset"),
        (np.zeros((41, 8), np.int64), "overshoots"),
    ],
)
def test_bad_batches_are_refused(workspace: Workspace, rows: np.ndarray, words: str) -> None:
    session = workspace.backend.start(workspace.task, workspace.task.initial_state())
    with pytest.raises(BackendError, match=words):
        session.run(rows)


def test_state_of_another_task_is_refused(workspace: Workspace) -> None:
    state = dict(workspace.task.initial_state())
    state["param/layers.0.weight"] = np.zeros((2, 2), np.float32)
    with pytest.raises(BackendError, match="shape"):
        workspace.backend.start(workspace.task, state)


@pytest.mark.parametrize(
    ("name", "options", "words"),
    [
        ("nope", {}, "unknown backend"),
        ("native", {"microbatches": 0}, "microbatches"),
        ("native", {"colour": 1}, "does not take"),
    ],
)
def test_backend_registry_errors(name: str, options: dict[str, int], words: str) -> None:
    with pytest.raises(BackendError, match=words):
        get_backend(name, **options)


def test_training_never_computes_in_tensorfloat32(workspace: Workspace) -> None:
    # TF32 (on by default for cuDNN convolutions) would drift far beyond binary32 rounding.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    seen: list[tuple[bool, bool]] = []

    def on_step(done: int) -> None:
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))

    try:
        task = workspace.task
        session = workspace.backend.start(task, task.initial_state())
        session.run(task.batches(0, 3), on_step)
        assert seen == [(False, False)] * 3
        # The process's own settings come back afterwards.
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True
