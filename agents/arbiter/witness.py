"""Witnesses of a one step: the calldata of ``IOneStep.adjudicate`` for element ``e`` of op ``j``.

From a recorded segment trace and its tensors (``agents.arbiter.execute.segment_tensors``
recomputes every tensor from the segment's sources), ``one_step`` builds:

- the record without its output root (both parties' records of op ``j`` share it);
- the query: the element and, for a reduction longer than ``MAX_TERMS``, the term range
  with the agreed partial result;
- one ``TensorProof`` per input of the record, carrying exactly the leaves the step reads
  (``agents.arbiter.elements.reads``), each with its Merkle path;
- the two claims: a party's output root, its value, and the leaf proving it (``claim_of``),
  or a value taken as stated (``stated_claim``: a partial result, or an element the game
  proved earlier).

``OneStepCall.arguments()`` gives them in the ABI shape of ``adjudicate`` (docs/arbiter.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.arbiter.elements import MAX_TERMS, REDUCTIONS, Element, partial, reads, terms
from agents.commitment import (
    LEAF_VALUES,
    ZERO_LEAF_HASH,
    leaf_hashes,
    shape_header,
    tensor_leaf,
)
from agents.exact.errors import ExactError
from agents.exact.trace import Op, OpRecord, SegmentTrace


@dataclass(frozen=True)
class LeafWitness:
    """One leaf (``LeafProof`` in Solidity): its number, its 1024 bytes, its Merkle path."""

    index: int
    values: bytes
    path: tuple[bytes, ...]


@dataclass(frozen=True)
class TensorWitness:
    """``TensorProof``: a tensor's header and Merkle root, and some of its leaves."""

    header: bytes
    merkle_root: bytes
    leaves: tuple[LeafWitness, ...] = ()

    @property
    def root(self) -> bytes:
        """The tensor root the witness opens."""
        return hashlib.sha256(self.header + self.merkle_root).digest()

    def abi(self) -> tuple[bytes, bytes, list[tuple[int, bytes, list[bytes]]]]:
        return (
            self.header,
            self.merkle_root,
            [(leaf.index, leaf.values, list(leaf.path)) for leaf in self.leaves],
        )


EMPTY_WITNESS = TensorWitness(b"", bytes(32))


class TensorTree:
    """A tensor's Merkle tree, built once, from which leaf witnesses are cut."""

    def __init__(self, tensor: np.ndarray) -> None:
        # np.ascontiguousarray makes a 0-d array 1-d: keep the shape (the step counter).
        self.tensor = np.ascontiguousarray(tensor, dtype=np.float32).reshape(np.shape(tensor))
        hashes = [bytes(h) for h in leaf_hashes(self.tensor)]
        width = 1
        while width < len(hashes):
            width *= 2
        level = hashes + [ZERO_LEAF_HASH] * (width - len(hashes))
        self.levels = [level]
        while len(level) > 1:
            level = [
                hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
            ]
            self.levels.append(level)
        self.header = shape_header(self.tensor.shape)

    @property
    def merkle_root(self) -> bytes:
        return self.levels[-1][0]

    def leaf(self, index: int) -> LeafWitness:
        path = []
        i = index
        for level in self.levels[:-1]:
            path.append(level[i ^ 1])
            i //= 2
        return LeafWitness(index, tensor_leaf(self.tensor, index), tuple(path))

    def witness(self, positions: Iterable[int]) -> TensorWitness:
        """The witness carrying the leaves that hold ``positions`` (flat element indices)."""
        leaves = sorted({int(p) // LEAF_VALUES for p in positions})
        return TensorWitness(self.header, self.merkle_root, tuple(self.leaf(i) for i in leaves))


@dataclass(frozen=True)
class ClaimWitness:
    """``Claim``: a party's output root and value, with the leaf proving it or none."""

    output: bytes
    value: int
    proof: TensorWitness = EMPTY_WITNESS

    def abi(self) -> tuple[bytes, int, Any]:
        return (self.output, self.value, self.proof.abi())


def claim_of(output: np.ndarray, element: int) -> ClaimWitness:
    """The claim of a party whose output tensor is ``output``: its element, proved."""
    tree = TensorTree(output)
    value = int(tree.tensor.reshape(-1)[element : element + 1].view(np.uint32)[0])
    proof = tree.witness([element])
    return ClaimWitness(proof.root, value, proof)


def stated_claim(output: bytes, value: int) -> ClaimWitness:
    """A claim taken as stated (a partial result, or an element proved earlier)."""
    return ClaimWitness(output, value)


@dataclass(frozen=True)
class OneStepCall:
    """Everything ``IOneStep.adjudicate`` takes for one element (or partial result)."""

    record: bytes
    element: int
    term_from: int
    term_to: int
    agreed: int
    inputs: tuple[TensorWitness, ...]
    claims: tuple[ClaimWitness, ClaimWitness]
    # What the chain must compute: the element (or partial result), from the CPU path.
    expected: int
    terms: int

    def query(self) -> tuple[int, int, int, int]:
        return (self.element, self.term_from, self.term_to, self.agreed)

    def arguments(self) -> list[Any]:
        """``adjudicate``'s arguments in ABI shape."""
        return [
            self.record,
            self.query(),
            [w.abi() for w in self.inputs],
            [c.abi() for c in self.claims],
        ]

    def compute_arguments(self) -> list[Any]:
        """``compute``'s arguments in ABI shape."""
        return [self.record, self.query(), [w.abi() for w in self.inputs]]


def record_prefix(record: OpRecord) -> bytes:
    """The record's bytes without its output root: what both parties' records share."""
    return record.encode()[:-32]


def record_at(trace: SegmentTrace, j: int) -> OpRecord:
    """Op ``j`` of the segment: records counted over the steps, then the distance."""
    for number, record in enumerate(trace.records()):
        if number == j:
            return record
    raise ExactError(f"the segment has no op {j}")


def _item(record: OpRecord, tensors: Mapping[bytes, np.ndarray], element: int) -> Element:
    inputs = [tensors[root] for root in record.inputs]
    output = tensors[record.output]
    if not 0 <= element < output.size:
        raise ExactError(f"element {element} out of range for {output.size} elements")
    return Element(record, tuple(tuple(x.shape) for x in inputs), tuple(output.shape), int(element))


def one_step(
    record: OpRecord,
    tensors: Mapping[bytes, np.ndarray],
    element: int,
    claims: Sequence[ClaimWitness] | None = None,
    *,
    term_from: int = 0,
    term_to: int | None = None,
) -> OneStepCall:
    """The one step of ``element`` of ``record`` (a non-``STATE`` record whose input and output
    tensors are in ``tensors``, by root). For a reduction, ``[term_from, term_to)`` picks the
    terms (default: all, which must then be at most ``MAX_TERMS``); the agreed partial result
    is computed here. ``claims`` default to the recorded output, proved, and a claim one ulp
    off it, stated (what a test of the chain's verdict needs)."""
    if record.op is Op.STATE:
        raise ExactError("a STATE record has no elements: its one step takes its roots only")
    item = _item(record, tensors, element)
    inputs = [tensors[root] for root in record.inputs]
    count = terms(item)
    last = count if term_to is None else term_to
    if not 0 <= term_from <= last <= count or last - term_from > MAX_TERMS:
        raise ExactError(
            f"terms [{term_from}, {last}) of {count}: at most {MAX_TERMS} at a time, in range"
        )
    wanted = reads(item, inputs, term_from, last)
    trees = {root: TensorTree(tensors[root]) for root in dict.fromkeys(record.inputs)}
    witnesses = tuple(
        trees[root].witness(positions)
        for root, positions in zip(record.inputs, _merge(record.inputs, wanted), strict=True)
    )
    is_reduction = record.op in REDUCTIONS
    agreed = partial(item, inputs, term_from) if is_reduction and term_from else 0
    output = tensors[record.output]
    if is_reduction and last != count:
        expected = partial(item, inputs, last)
    else:
        expected = int(
            np.ascontiguousarray(output).reshape(-1)[element : element + 1].view(np.uint32)[0]
        )
    if claims is None:
        honest = (
            claim_of(output, element) if last == count else stated_claim(record.output, expected)
        )
        claims = (honest, stated_claim(bytes(32), expected ^ 1))
    if len(claims) != 2:
        raise ExactError("a one step judges two claims")
    return OneStepCall(
        record=record_prefix(record),
        element=element,
        term_from=term_from,
        term_to=last,
        agreed=agreed,
        inputs=witnesses,
        claims=(claims[0], claims[1]),
        expected=expected,
        terms=count,
    )


def _merge(roots: Sequence[bytes], wanted: Sequence[set[int]]) -> list[set[int]]:
    """Positions per input; an input that appears twice (``mul(x, x)``) gets both sets."""
    merged: dict[bytes, set[int]] = {}
    for root, positions in zip(roots, wanted, strict=True):
        merged.setdefault(root, set()).update(positions)
    return [merged[root] for root in roots]


def state_step(
    record: OpRecord, tensor_roots: Sequence[bytes], outputs: Sequence[bytes]
) -> list[Any]:
    """``adjudicateState``'s arguments for a ``STATE`` record: the new state's tensor roots in
    name order (which the game establishes) and the two parties' output roots."""
    if record.op is not Op.STATE:
        raise ExactError(f"{record.op.name} is not a STATE record")
    if len(outputs) != 2:
        raise ExactError("a one step judges two claims")
    return [list(tensor_roots), list(outputs)]
