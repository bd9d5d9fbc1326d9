"""What varies from step to step in a traced training step, and nothing else: the per-step
scalars (``StepScalar``) a tracer is told about, and the batch index tensors, both from one
function each that a task's program is built with (docs/dispute.md, "Program")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from agents.commitment import tensor_root
from agents.exact.cpu import CpuKernels
from agents.exact.ops import ExactOps, StepScalar, Tracer
from agents.exact.trace import Attribute, Op
from agents.learning.backends import get_backend
from agents.learning.backends.exact import ExactBackend, step_batch_tensors, step_scalars
from agents.learning.schedule import LearningRate
from tests.exact.tasks import EXAMPLE_NAMES, example_task

F32 = np.float32


class ScalarTracer(Tracer):
    """A tracer that also keeps, per record of the open step, the step scalars it was told of."""

    def __init__(self, kernels: Any) -> None:
        super().__init__(kernels)
        self.marked: list[tuple[Op, tuple[Attribute, ...], dict[int, int]]] = []
        self.read: list[tuple[Op, list[bytes]]] = []

    def record(
        self,
        op: Op,
        attributes: Sequence[Attribute],
        inputs: Sequence[Any],
        output: Any,
        scalars: Mapping[int, int] | None = None,
    ) -> None:
        super().record(op, attributes, inputs, output, scalars)
        self.marked.append((op, tuple(attributes), dict(scalars or {})))
        self.read.append((op, [tensor_root(self.kernels.to_numpy(x)) for x in inputs]))


def test_a_step_scalar_is_an_immediate_with_its_index() -> None:
    tracer = ScalarTracer(CpuKernels())
    E = ExactOps(CpuKernels(), tracer)
    x = E.array(np.arange(3, dtype=F32))
    plain = E.mul(x, F32(0.1))
    marked = E.mul(x, StepScalar(F32(0.1), 4))
    tracer.end_step()
    assert (plain == marked).all()
    first, second = tracer.segment.steps[0].records
    assert first.encode() == second.encode()  # the same record bytes
    assert [m[2] for m in tracer.marked] == [{}, {1: 4}]  # attribute 1 (the value) is scalar 4
    assert StepScalar(0.1, 0) == float(F32(0.1))  # rounded to binary32 once


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
@pytest.mark.parametrize("step", [0, 7])
def test_the_scalars_and_batches_of_a_step_are_the_ones_traced(name: str, step: int) -> None:
    task = example_task(name)
    spec = task.spec
    state = task.initial_state()
    if step:
        session = get_backend("exact").start(task, state)
        session.run(task.batches(0, step))
        state = session.state()
    tracer = ScalarTracer(CpuKernels())
    backend = get_backend("exact")
    assert isinstance(backend, ExactBackend)
    session = backend.start(task, state, tracer=tracer)
    rows = task.batches(step, 1)[0]
    session.run(rows[None, :])
    scalars = step_scalars(spec, LearningRate(spec), step)
    used: set[int] = set()
    for _op, attributes, marked in tracer.marked:
        for position, index in marked.items():
            assert attributes[position] == scalars[index]
            used.add(index)
    assert used == set(range(len(scalars)))  # every scalar is used, and no other is marked
    # The tensors index_select reads that are not the dataset are the step's batch tensors.
    batches = [tensor_root(t) for t in step_batch_tensors(task, rows)]
    data = {tensor_root(np.ascontiguousarray(task.inputs, dtype=F32))}
    read = [roots[1] for op, roots in tracer.read if op == Op.INDEX_SELECT and roots[0] in data]
    assert read == batches
