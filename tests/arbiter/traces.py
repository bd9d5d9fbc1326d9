"""Real traces with their tensors: one step (and the distance) of each example model, and a
small trace with every op, recorded by a tracer that keeps every tensor it hashes."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

import agents.learning.backends.exact as exact_backend
from agents.commitment import tensor_root
from agents.exact.cpu import CpuKernels
from agents.exact.kernels import Array, Kernels
from agents.exact.ops import ExactOps, Tracer
from agents.exact.trace import OpRecord
from agents.learning.backends import get_backend
from tests.exact.tasks import example_task

F32 = np.float32


class RecordingTracer(Tracer):
    """A tracer that also keeps every tensor it hashes, by root."""

    def __init__(self, kernels: Kernels) -> None:
        super().__init__(kernels)
        self.tensors: dict[bytes, np.ndarray] = {}
        self._waiting: dict[int, np.ndarray] = {}  # by number, until its root is known

    def pin(self, array: Array) -> bytes:
        root = super().pin(array)
        self.tensors[root] = np.array(self.kernels.to_numpy(array), dtype=np.float32)
        return root

    def _hand_over(self, waiting: bool = False) -> None:
        # The hashing work items hold the arrays only until hashed: keep a copy of each.
        numbers = [*self._fresh_numbers, *self._shared]
        arrays = [*self._fresh, *self._shared_arrays]
        for number, values in zip(numbers, arrays, strict=True):
            self._waiting[number] = np.array(values, dtype=np.float32)
        super()._hand_over(waiting)

    def _collect(self, count: int) -> None:
        super()._collect(count)
        for number in [n for n in self._waiting if self._known_roots[n]]:
            self.tensors[self.root_of(number)] = self._waiting.pop(number)


@dataclass(frozen=True)
class Traced:
    name: str
    records: list[OpRecord]
    tensors: dict[bytes, np.ndarray]
    # The tensor roots, in name order, of the state the trace's STATE record commits to.
    state_roots: list[bytes]


@contextmanager
def _recording() -> Iterator[list[RecordingTracer]]:
    made: list[RecordingTracer] = []

    def make(kernels: Kernels) -> RecordingTracer:
        tracer = RecordingTracer(kernels)
        made.append(tracer)
        return tracer

    # The exact backend builds its tracer by this name; a test swaps it for one that records.
    original = exact_backend.Tracer  # type: ignore[attr-defined]
    exact_backend.Tracer = make  # type: ignore[attr-defined, assignment]
    try:
        yield made
    finally:
        exact_backend.Tracer = original  # type: ignore[attr-defined]


@functools.cache
def example_trace(name: str) -> Traced:
    """One training step of the example model ``name`` and the segment's distance."""
    task = example_task(name)
    start = task.initial_state()
    with _recording() as made:
        session = get_backend("exact").start(task, start, trace=True)
        session.run(task.batches(0, 1))
        state = session.state()
        session.traced_distances(start, state, "l2", 1e-8)
        tracer = made[0]
        records = list(tracer.segment.records())
    names = sorted(state, key=lambda n: n.encode())
    return Traced(name, records, tracer.tensors, [tensor_root(state[n]) for n in names])


@functools.cache
def every_op_trace() -> Traced:
    """Every op at least once on small tensors with edge values (immediates in every slot,
    ldexp, exp, log, broadcasting, movement ops), for ops the example steps do not record."""
    kernels = CpuKernels(threads=1)
    tracer = RecordingTracer(kernels)
    E = ExactOps(kernels, tracer)
    rng = np.random.default_rng(5)
    edges = np.array([0.0, -0.0, 1e-45, -3e-39, 1.0, -2.5, 3.4e38, np.inf, -np.inf, np.nan], F32)
    x = E.array(np.concatenate([rng.standard_normal(14).astype(F32), edges]).reshape(4, 6))
    y = E.array(np.concatenate([edges, rng.standard_normal(14).astype(F32)]).reshape(4, 6))
    row = E.array(rng.standard_normal(6).astype(F32))
    for method in ("add", "sub", "mul", "div", "maximum", "minimum", "lt", "le", "eq"):
        getattr(E, method)(x, y)
        getattr(E, method)(x, 0.5)
        getattr(E, method)(-2.0, row)
        getattr(E, method)(x, row)  # broadcast [4, 6] with [6]
    E.select(x, y, row)
    E.select(0.0, x, y)
    E.select(x, 1.0, -1.0)
    E.ldexp(x, E.array(rng.integers(-160, 160, (4, 6)).astype(F32)))
    E.ldexp(row, 3.0)
    for method in ("neg", "abs", "sqrt", "exp", "log"):
        getattr(E, method)(x)
        getattr(E, method)(y)
    E.sum(x, 0)
    E.sum(x, 1)
    E.amax(y, 0)
    long = E.array(rng.standard_normal((3, 40)).astype(F32))
    E.sum(long, 1)
    E.amax(long, 1)
    E.matmul_nt(long, E.array(rng.standard_normal((5, 40)).astype(F32)))
    E.matmul_nt(x, y)
    E.transpose(E.array(rng.standard_normal((2, 3, 4)).astype(F32)), [2, 0, 1])
    E.reshape(x, [3, 8])
    index = E.array(np.array([3, 0, 3, 1, 2], dtype=F32))
    E.index_select(x, index, 0)
    E.index_select(x, index, 1)
    E.take_along(x, E.array(np.array([[5], [0], [2], [1]], dtype=F32)))
    E.one_hot(index, 4)
    E.causal_fill(E.array(rng.standard_normal((2, 3, 3)).astype(F32)), float("-inf"))
    image = E.array(rng.standard_normal((2, 3, 5, 5)).astype(F32))
    cols = E.im2col(image, 3, 2, 1)
    E.col2im(cols, [2, 3, 5, 5], 3, 2, 1)
    E.col2im(E.im2col(image, 5, 1, 2), [2, 3, 5, 5], 5, 1, 2)  # 25 terms per pixel
    E.scatter_add(long, E.array(np.array([1, 0, 1], dtype=F32)), 3)
    many = E.array(rng.standard_normal((40, 2)).astype(F32))
    E.scatter_add(many, E.array((np.arange(40) % 3).astype(F32)), 3)
    E.full([2, 3], 1.5)
    E.commit_state({"a": x, "b": y, "c": row})
    records = list(tracer.segment.records())
    roots = [tensor_root(kernels.to_numpy(v)) for v in (x, y, row)]
    return Traced("every-op", records, tracer.tensors, roots)


def sources_of(traced: Traced) -> dict[bytes, np.ndarray]:
    """The tensors the trace reads before any of its records outputs them (state, data,
    index tensors): what a replay of the records starts from."""
    produced: set[bytes] = set()
    sources: dict[bytes, np.ndarray] = {}
    for record in traced.records:
        for root in record.inputs:
            if root not in produced and root in traced.tensors:
                sources[root] = traced.tensors[root]
        produced.add(record.output)
    return sources
