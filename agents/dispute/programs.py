"""A task's program, derived from its spec alone (docs/dispute.md, "Program").

``program_of(task)`` traces three training steps and the distance computation of the
task with the exact backend, following every array an op reads to where it came from:

- the output of an earlier op of the same step (``Op``);
- a tensor of the state the step starts from (``State``: the arrays the previous step's
  ``STATE`` record closed with, in name order; for the distance computation, the replayed
  end state);
- a dataset tensor (``Dataset``: the arrays the session pins, in pin order);
- an index tensor of the step's batch (``Batch``: arrays that are none of the above, in the
  order the step first reads them, checked against ``step_batch_tensors``);
- for the distance computation, a tensor of the segment's start or claimed end state
  (``Start``, ``Claimed``: told apart by their roots, the claimed state being made
  different from every other for the purpose).

The entries of the third step make the step template (the second's must be the same: the
op sequence of a step does not depend on the step). Immediates the tracer is told are
``StepScalar`` s become scalar references; each step's scalars and batch index tensors come
from ``step_scalars`` and ``step_batch_tensors``, the functions the backend itself uses.
Nothing here depends on a solver, a checkpoint or a chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.commitment import row_roots, state_root, tensor_root
from agents.dispute.errors import ProgramError
from agents.dispute.program import (
    EntryAttribute,
    Program,
    ProgramEntry,
    Source,
    SourceKind,
    StepConstants,
    StepScalar,
)
from agents.dispute.reductions import term_count
from agents.exact.kernels import Array, Kernels
from agents.exact.ops import Tracer
from agents.exact.trace import Attribute, Op
from agents.learning.backends.exact import ExactBackend, step_batch_tensors, step_scalars
from agents.learning.layout import State, ordered
from agents.learning.schedule import LearningRate
from agents.learning.task import Task

DERIVE_STEPS = 3
# Steps whose data order and batch tensors ``step_constants`` holds at once.
CONSTANTS_CHUNK = 1024


class ProgramTracer(Tracer):
    """A tracer that also records, per op, where each input array came from."""

    def __init__(self, kernels: Kernels) -> None:
        super().__init__(kernels)
        self.datasets: list[Array] = []
        self.steps: list[list[ProgramEntry]] = []
        self.batches: list[list[bytes]] = []
        self._program_entries: list[ProgramEntry] = []
        self._program_produced: dict[int, int] = {}
        self._program_state: dict[int, int] = {}
        self._program_batches: list[bytes] = []
        self._program_alive: dict[int, Array] = {}
        self.start_roots: list[bytes] = []
        self.claimed_roots: list[bytes] = []

    def pin(self, array: Array) -> bytes:
        self.datasets.append(array)
        self._program_alive[id(array)] = array
        return super().pin(array)

    def _source(self, array: Array) -> Source:
        key = id(array)
        if key in self._program_produced:
            return Source(SourceKind.OP, self._program_produced[key])
        if key in self._program_state:
            return Source(SourceKind.STATE, self._program_state[key])
        for d, data in enumerate(self.datasets):
            if data is array:
                return Source(SourceKind.DATASET, d)
        root = tensor_root(self.kernels.to_numpy(array))
        if self.start_roots or self.claimed_roots:  # the distance computation
            if root in self.claimed_roots:
                return Source(SourceKind.CLAIMED, self.claimed_roots.index(root))
            if root in self.start_roots:
                return Source(SourceKind.START, self.start_roots.index(root))
            raise ProgramError("the distance computation read a tensor of no known state")
        if root not in self._program_batches:
            self._program_batches.append(root)
        return Source(SourceKind.BATCH, self._program_batches.index(root))

    def record(
        self,
        op: Op,
        attributes: Sequence[Attribute],
        inputs: Sequence[Array],
        output: Array,
        scalars: Mapping[int, int] | None = None,
    ) -> None:
        super().record(op, attributes, inputs, output, scalars)
        sources = tuple(self._source(x) for x in inputs)
        entry_attributes: list[EntryAttribute] = list(attributes)
        for position, index in (scalars or {}).items():
            entry_attributes[position] = StepScalar(index)
        shapes = [tuple(int(d) for d in x.shape) for x in inputs]
        shape = tuple(int(d) for d in output.shape)
        terms = term_count(op, attributes, shapes)
        self._program_produced[id(output)] = len(self._program_entries)
        self._program_alive[id(output)] = output  # keep it alive: identities must not be reused
        self._program_entries.append(
            ProgramEntry(op, tuple(entry_attributes), sources, terms, shape)
        )

    def record_state(self, arrays: Sequence[Array]) -> None:
        super().record_state(arrays)
        sources = tuple(self._source(x) for x in arrays)
        self._program_entries.append(ProgramEntry(Op.STATE, (), sources, 0, None))
        self._close(next_state=arrays)

    def end_distance(self) -> None:
        """Close the distance computation (the session closes the tracer's step itself)."""
        self._close(next_state=())

    def _close(self, next_state: Sequence[Array]) -> None:
        self.steps.append(self._program_entries)
        self.batches.append(self._program_batches)
        self._program_entries, self._program_batches = [], []
        self._program_produced = {}
        self._program_state = {id(a): n for n, a in enumerate(next_state)}
        self._program_alive = {id(a): a for a in (*self.datasets, *next_state)}


def _marked_states(state: State) -> tuple[State, State]:
    """A start and a claimed state of ``state``'s layout whose every tensor has a root of its
    own (tensor ``k`` in name order is filled with ``2k + 1``, respectively ``2k + 2``): the
    distance computation reads them, and their roots tell which one it read."""
    names = sorted(state, key=lambda n: n.encode())
    start: State = {}
    claimed: State = {}
    for k, name in enumerate(names):
        shape = np.shape(state[name])
        start[name] = np.full(shape, 2 * k + 1, dtype=np.float32)
        claimed[name] = np.full(shape, 2 * k + 2, dtype=np.float32)
    return start, claimed


def _same_structure(a: list[ProgramEntry], b: list[ProgramEntry]) -> bool:
    return [e.encode() for e in a] == [e.encode() for e in b]


def program_of(task: Task, backend: ExactBackend | None = None) -> Program:
    """The program of ``task`` (see the module docstring)."""
    spec = task.spec
    backend = backend or ExactBackend()
    start = ordered(task.initial_state())
    if spec.steps < DERIVE_STEPS:
        raise ProgramError(f"a task needs at least {DERIVE_STEPS} steps to derive its program")
    tracer = ProgramTracer(backend.kernels)
    session = backend.start(task, start, tracer=tracer)
    session.run(task.batches(0, DERIVE_STEPS))
    marked_start, marked_claimed = _marked_states(start)
    names = sorted(start, key=lambda n: n.encode())
    tracer.start_roots = [tensor_root(marked_start[n]) for n in names]
    tracer.claimed_roots = [tensor_root(marked_claimed[n]) for n in names]
    if len(set(tracer.start_roots + tracer.claimed_roots)) != 2 * len(names):
        raise ProgramError("the state has an empty tensor: its roots cannot be told apart")
    verification = spec.verification
    session.traced_distances(
        marked_start, marked_claimed, verification.metric, verification.epsilon
    )
    tracer.end_distance()
    steps, distance = tracer.steps[:DERIVE_STEPS], tracer.steps[DERIVE_STEPS]
    if len(tracer.steps) != DERIVE_STEPS + 1 or not _same_structure(steps[1], steps[2]):
        raise ProgramError("the traced steps of the task do not follow one op sequence")
    rows = task.batches(DERIVE_STEPS - 1, 1)[0]
    expected = [tensor_root(t) for t in step_batch_tensors(task, rows)]
    if tracer.batches[DERIVE_STEPS - 1] != expected:
        raise ProgramError("the step read index tensors other than its batch tensors")
    return Program(
        steps=spec.steps,
        interval=spec.checkpoint_interval,
        segments=spec.segment_count,
        samples=spec.verification.segments,
        metric=spec.verification.metric,
        epsilon=np.float32(spec.verification.epsilon),
        state_tensors=len(start),
        initial_state=state_root(start),
        datasets=tuple(tensor_root(backend.kernels.to_numpy(d)) for d in tracer.datasets),
        step_template=steps[2],
        distance_template=distance,
        constants=step_constants(task),
    )


def step_constants(task: Task) -> list[StepConstants]:
    """Every step's scalars and batch index tensor roots, in step order, ``CONSTANTS_CHUNK``
    steps at a time: the chunk's data order and rates at once and, where a step's only index
    tensor is its rows (``batch_tensors`` of a classification task without microbatches), the
    roots of the chunk's rows in one call (the values and roots of step after step)."""
    spec = task.spec
    rate = LearningRate(spec)
    rows_only = task.targets is not None and spec.parallel is None
    constants: list[StepConstants] = []
    for first in range(0, spec.steps, CONSTANTS_CHUNK):
        count = min(CONSTANTS_CHUNK, spec.steps - first)
        rows = task.batches(first, count)
        rate.prepare(first, count)
        batches: list[tuple[bytes, ...]]
        if rows_only:
            batches = [(root,) for root in row_roots(rows.astype(np.float32))]
        else:
            batches = [tuple(tensor_root(t) for t in step_batch_tensors(task, r)) for r in rows]
        for g, roots in enumerate(batches, start=first):
            constants.append(StepConstants(tuple(step_scalars(spec, rate, g)), roots))
    return constants


def program_root_of(task: Task) -> bytes:
    """The program root the pool records for ``task`` at submit."""
    return program_of(task).root()


def describe(program: Program) -> dict[str, Any]:
    """A summary for people: counts, roots and the op mix of a step."""
    ops: dict[str, int] = {}
    for entry in program.step_template:
        ops[entry.op.name.lower()] = ops.get(entry.op.name.lower(), 0) + 1
    header = program.header()
    return {
        "root": program.root().hex(),
        "steps": program.steps,
        "interval": program.interval,
        "segments": program.segments,
        "state_tensors": program.state_tensors,
        "ops_per_step": len(program.step_template),
        "distance_ops": len(program.distance_template),
        "step_template": header.step_template.hex(),
        "distance_template": header.distance_template.hex(),
        "constants": header.constants.hex(),
        "initial_state": program.initial_state.hex(),
        "datasets": [d.hex() for d in program.datasets],
        "ops": dict(sorted(ops.items())),
    }
