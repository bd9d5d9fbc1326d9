"""Executing op records: the output of a record from its attributes and input tensors.

A trace records what ran (op code, attributes, input roots) but not the tensors in between.
``execute`` recomputes one record's output with the exact kernels' CPU path from its input
tensors; ``segment_tensors`` replays every record of a segment from its source tensors (the
state it starts from, the dataset, the step's index tensors), checking each output against
the root its record names. That gives a dispute agent every tensor a one step reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from agents.commitment import merkle_root, tensor_root
from agents.exact.cpu import CpuKernels
from agents.exact.errors import ExactError
from agents.exact.optable import spec_of
from agents.exact.trace import Op, OpRecord

_CPU = CpuKernels(threads=1)


def operands_of(record: OpRecord, inputs: Sequence[np.ndarray]) -> list[np.ndarray | np.float32]:
    """The operands of an elementwise record in slot order: immediates from its
    ``(slot, value)`` attribute pairs, tensors from ``inputs`` in the other slots."""
    spec = spec_of(record.op)
    immediates = {
        int(record.attributes[i]): np.float32(record.attributes[i + 1])
        for i in range(0, len(record.attributes), 2)
    }
    tensors = iter(inputs)
    operands: list[np.ndarray | np.float32] = []
    for slot in range(spec.arity or 0):
        if slot in immediates:
            operands.append(immediates[slot])
        else:
            operands.append(next(tensors))
    return operands


def _ints(values: Iterable[int | np.float32]) -> list[int]:
    return [int(v) for v in values]


def execute(record: OpRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """The output tensor of ``record`` on ``inputs`` (in record order), by the CPU path.

    ``STATE`` has no tensor output (its output is the Merkle root of its input roots);
    ``ExactError`` for it and for records whose attributes do not fit the op.
    """
    op = record.op
    spec = spec_of(op)
    attrs = record.attributes
    x = inputs[0] if inputs else np.zeros(0, np.float32)
    if spec.kind == "elementwise":
        method = getattr(_CPU, spec.name)
        return np.asarray(method(*operands_of(record, inputs)), dtype=np.float32)
    if op is Op.SUM:
        return _CPU.sum(x, int(attrs[0]))
    if op is Op.AMAX:
        return _CPU.amax(x, int(attrs[0]))
    if op is Op.MATMUL_NT:
        return _CPU.matmul_nt(inputs[0], inputs[1])
    if op is Op.TRANSPOSE:
        return _CPU.transpose(x, _ints(attrs))
    if op is Op.RESHAPE:
        return _CPU.reshape(x, _ints(attrs))
    if op is Op.INDEX_SELECT:
        return _CPU.index_select(inputs[0], inputs[1], int(attrs[0]))
    if op is Op.TAKE_ALONG:
        return _CPU.take_along(inputs[0], inputs[1])
    if op is Op.ONE_HOT:
        return _CPU.one_hot(inputs[0], int(attrs[0]))
    if op is Op.CAUSAL_FILL:
        return _CPU.causal_fill(x, np.float32(attrs[0]))
    if op is Op.IM2COL:
        kernel, stride, padding = _ints(attrs)
        return _CPU.im2col(x, kernel, stride, padding)
    if op is Op.COL2IM:
        kernel, stride, padding, *shape = _ints(attrs)
        return _CPU.col2im(x, shape, kernel, stride, padding)
    if op is Op.SCATTER_ADD:
        return _CPU.scatter_add(inputs[0], inputs[1], int(attrs[0]))
    if op is Op.FULL:
        return _CPU.full(_ints(attrs[1:]), np.float32(attrs[0]))
    raise ExactError(f"{spec.name} records have no tensor output to execute")


def state_root_of(tensor_roots: Sequence[bytes]) -> bytes:
    """The output of a ``STATE`` record: the Merkle root over the state's tensor roots in
    name order (what ``IOneStep.adjudicateState`` computes on chain)."""
    return merkle_root(list(tensor_roots))


def segment_tensors(
    records: Iterable[OpRecord], sources: Mapping[bytes, np.ndarray]
) -> dict[bytes, np.ndarray]:
    """Every tensor of a trace by root: ``sources`` (tensors no record outputs) and the output
    of each record, executed in order. Raises ``ExactError`` naming the first record whose
    input is unknown or whose recomputed output does not have the root it records.
    (``STATE`` records list no inputs: their output, a state root, is checked by
    ``state_root_of`` against the state's tensors.)"""
    tensors = dict(sources)
    for number, record in enumerate(records):
        missing = [root.hex()[:16] for root in record.inputs if root not in tensors]
        if missing:
            raise ExactError(f"record {number} ({record.op.name}) reads unknown tensors {missing}")
        if record.op is Op.STATE:
            continue
        if record.output in tensors:
            continue
        output = execute(record, [tensors[root] for root in record.inputs])
        if tensor_root(output) != record.output:
            raise ExactError(
                f"record {number} ({record.op.name}) recomputes to another root than it records"
            )
        tensors[record.output] = output
    return tensors
