"""A plain tracer for the differential tests, written from docs/exact.md ("Traces").

Every record is built the moment its op runs: the tensor roots of its inputs and output
with hashlib (``tensor_root(..., fast=False)``); a STATE record lists no inputs and has the
Merkle root over the state's tensor roots as its output. Nothing is batched, threaded or
numbered, so the roots it gives are the definition to hold ``agents.exact.ops.Tracer``
against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agents.commitment import merkle_root, tensor_root
from agents.exact.kernels import Array, Kernels
from agents.exact.trace import Attribute, Op, OpRecord, SegmentTrace, StepTrace


class PlainTracer:
    """The ``Tracer`` interface, one record at a time."""

    def __init__(self, kernels: Kernels) -> None:
        self.kernels = kernels
        self.steps: list[StepTrace] = []
        self.distance: StepTrace | None = None
        self._open: list[OpRecord] = []
        self._in_distance = False

    def root(self, array: Array) -> bytes:
        return tensor_root(self.kernels.to_numpy(array), fast=False)

    def pin(self, array: Array) -> bytes:
        return self.root(array)

    def record(
        self,
        op: Op,
        attributes: Sequence[Attribute],
        inputs: Sequence[Array],
        output: Array,
        scalars: Mapping[int, int] | None = None,
    ) -> None:
        roots = tuple(self.root(x) for x in inputs)
        self._open.append(OpRecord(op, tuple(attributes), roots, self.root(output)))

    def record_state(self, arrays: Sequence[Array]) -> None:
        roots = [self.root(x) for x in arrays]
        self._open.append(OpRecord(Op.STATE, (), (), merkle_root(roots, fast=False)))

    def end_step(self, keep: Sequence[Array] = ()) -> None:
        step = StepTrace(self._open)
        if self._in_distance:
            self.distance = step
        else:
            self.steps.append(step)
        self._open = []
        self._in_distance = False

    def begin_distance(self) -> None:
        self._in_distance = True

    @property
    def segment(self) -> SegmentTrace:
        return SegmentTrace(list(self.steps), self.distance)

    def trace_root(self) -> bytes:
        leaves = [merkle_root([r.digest() for r in s.records], fast=False) for s in self.steps]
        if self.distance is not None:
            leaves.append(merkle_root([r.digest() for r in self.distance.records], fast=False))
        return merkle_root(leaves, fast=False)
