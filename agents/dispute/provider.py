"""Trace providers: one party's trace of one segment, and the proofs the game asks of it.

A provider answers what a player needs at each level of the game (docs/dispute.md):
the step roots of the segment, the op records of a step, the output tensor of a record
(its leaves and their tree), the partial results of a reduction, the tensor roots of
the state after a step, and the Merkle proofs that tie any of them to the party's trace
root or to the task's program. Subclasses say where records and tensors come from
(``ReplayProvider`` replays from a checkpoint; tests build others); everything derived
(trees, proofs) is computed here once and kept.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from agents.arbiter.elements import REDUCTIONS
from agents.arbiter.witness import one_step
from agents.commitment import leaf_hashes, shape_header, tensor_leaf
from agents.dispute.errors import TraceError
from agents.dispute.program import Program, ProgramEntry, SourceKind, StepConstants
from agents.dispute.reductions import partial_results
from agents.dispute.tree import MerkleLevels
from agents.exact.errors import ExactError
from agents.exact.trace import Op, OpRecord

# (header, Merkle root, [(leaf index, leaf bytes, path)]): the one step's TensorProof.
TensorProofArgs = tuple[bytes, bytes, list[tuple[int, bytes, list[bytes]]]]


@dataclass(frozen=True)
class OpTensors:
    """The values one record read and wrote (float32 numpy arrays, in record order)."""

    inputs: tuple[np.ndarray, ...]
    output: np.ndarray


def record_prefix(record: OpRecord) -> bytes:
    """The bytes of a record before its input roots (op code, attributes, input count)."""
    encoded = record.encode()
    return encoded[: len(encoded) - 32 * (len(record.inputs) + 1)]


class TraceProvider(ABC):
    """One party's trace of segment ``segment`` of a task with program ``program``."""

    def __init__(self, program: Program, segment: int) -> None:
        self.program = program
        self.segment = segment
        self.first_step, self.step_count = program.segment_steps(segment)
        self._step_trees: dict[int, MerkleLevels] = {}
        self._output_trees: dict[tuple[int, int], MerkleLevels] = {}
        self._state_trees: dict[int, MerkleLevels] = {}

    # --- what a subclass provides -----------------------------------------------------------

    @abstractmethod
    def records(self, step: int) -> list[OpRecord]:
        """The records of local step ``step`` (``step_count``: the distance computation)."""

    @abstractmethod
    def tensors(self, step: int, op: int) -> OpTensors:
        """The values record ``op`` of step ``step`` read and wrote (not for STATE records)."""

    @abstractmethod
    def state_roots(self, step: int) -> list[bytes]:
        """Tensor roots (name order) of the state after local step ``step``; ``-1``: the start."""

    @abstractmethod
    def claimed_roots(self) -> list[bytes]:
        """Tensor roots (name order) of the claimed end state (the distance computation's input)."""

    # --- the trace --------------------------------------------------------------------------

    @cached_property
    def trace_tree(self) -> MerkleLevels:
        """The tree over the step roots, then the distance computation's root."""
        return MerkleLevels([self.step_tree(t).root for t in range(self.step_count + 1)])

    @property
    def trace_root(self) -> bytes:
        return self.trace_tree.root

    def step_tree(self, step: int) -> MerkleLevels:
        """The tree over the record hashes of step ``step``."""
        if step not in self._step_trees:
            if not 0 <= step <= self.step_count:
                raise TraceError(f"segment {self.segment} has no step {step}")
            self._step_trees[step] = MerkleLevels([r.digest() for r in self.records(step)])
        return self._step_trees[step]

    def record(self, step: int, op: int) -> OpRecord:
        records = self.records(step)
        if not 0 <= op < len(records):
            raise TraceError(f"step {step} has no op {op}")
        return records[op]

    # --- a record's output ------------------------------------------------------------------

    def output_tree(self, step: int, op: int) -> MerkleLevels:
        """The tree of the output of record ``op``: its leaves, or a STATE record's tensor roots."""
        key = (step, op)
        if key not in self._output_trees:
            if self.record(step, op).op == Op.STATE:
                self._output_trees[key] = self.state_tree(step)
            else:
                self._output_trees[key] = MerkleLevels(leaf_hashes(self.tensors(step, op).output))
        return self._output_trees[key]

    def output_header(self, step: int, op: int) -> bytes:
        """The output's shape header (empty for a STATE record)."""
        if self.record(step, op).op == Op.STATE:
            return b""
        return shape_header(self.tensors(step, op).output.shape)

    def output_merkle(self, step: int, op: int) -> bytes:
        return self.output_tree(step, op).root

    def leaf(self, step: int, op: int, index: int) -> bytes:
        """The 1024 bytes of leaf ``index`` of the output (zero bytes for a padding leaf)."""
        output = self.tensors(step, op).output
        if index >= max(1, -(-output.size // 256)):
            return bytes(1024)
        return tensor_leaf(output, index)

    def value(self, step: int, op: int, element: int) -> int:
        """The bit pattern of output element ``element``."""
        flat = np.ascontiguousarray(self.tensors(step, op).output, dtype=np.float32).reshape(-1)
        return int(flat[element : element + 1].view(np.uint32)[0])

    def partials(self, step: int, op: int, element: int) -> np.ndarray:
        """``P(0) … P(K)`` of output element ``element`` of a reducing record."""
        record = self.record(step, op)
        if record.op not in REDUCTIONS:
            raise TraceError(f"op {op} of step {step} ({record.op.name}) reduces nothing")
        t = self.tensors(step, op)
        return partial_results(record.op, record.attributes, t.inputs, t.output.shape, element)

    def witness(
        self, step: int, op: int, element: int, lo: int, hi: int, acc_lo: int
    ) -> list[TensorProofArgs]:
        """One ``TensorProof`` per input of the record (header, Merkle root, the leaves the one
        step reads for terms ``(lo, hi]`` of ``element``, with their paths), as the one step's
        ABI takes them. ``acc_lo`` is the game's agreed partial result, which the one step
        takes from the game, not from the witness."""
        del acc_lo
        record = self.record(step, op)
        if record.op == Op.STATE:
            raise TraceError(f"op {op} of step {step} is a STATE record: it has no elements")
        t = self.tensors(step, op)
        tensors = dict(zip(record.inputs, t.inputs, strict=True))
        tensors[record.output] = t.output
        reduces = record.op in REDUCTIONS
        try:
            call = one_step(
                record,
                tensors,
                element,
                term_from=lo if reduces else 0,
                term_to=hi if reduces else None,
            )
        except ExactError as e:
            raise TraceError(f"no one step of op {op} of step {step}: {e}") from e
        return [w.abi() for w in call.inputs]

    # --- states -----------------------------------------------------------------------------

    def state_tree(self, step: int) -> MerkleLevels:
        """The tree over the tensor roots of the state after step ``step`` (root: state root)."""
        if step not in self._state_trees:
            self._state_trees[step] = MerkleLevels(self.state_roots(step))
        return self._state_trees[step]

    @cached_property
    def claimed_tree(self) -> MerkleLevels:
        return MerkleLevels(self.claimed_roots())

    # --- the program ------------------------------------------------------------------------

    def entry(self, step: int, op: int) -> ProgramEntry:
        return self.program.template(step == self.step_count)[op]

    def constants(self, step: int) -> StepConstants:
        """The constants of local training step ``step``."""
        return self.program.constants[self.first_step + step]

    def expected_prefix(self, step: int, op: int) -> bytes:
        """The record prefix the program prescribes for op ``op`` of step ``step``."""
        scalars = self.constants(step).scalars if step < self.step_count else ()
        return self.entry(step, op).record_prefix(scalars)

    def source_root(self, step: int, op: int, slot: int) -> bytes:
        """The root the program says input ``slot`` (STATE: tensor ``slot``) of op ``op`` has."""
        source = self.entry(step, op).sources[slot]
        kind, index = source.kind, source.index
        if kind == SourceKind.OP:
            return self.record(step, index).output
        if kind == SourceKind.STATE:
            return self.state_roots(step - 1)[index]
        if kind == SourceKind.DATASET:
            return self.program.datasets[index]
        if kind == SourceKind.BATCH:
            return self.constants(step).batches[index]
        if kind == SourceKind.START:
            return self.state_roots(-1)[index]
        return self.claimed_roots()[index]


def header_numel(header: bytes) -> int:
    """The element count a shape header states."""
    return int(struct.unpack_from(">Q", header, 0)[0])
