"""Traces: the committed record of every exact operation a replay executes (PROTOCOL.md §4).

An **op record** is the byte string::

    u16be(op code)
    u8(attribute count)  then each attribute as
        b"i" || i64be(value)           an integer (axis, size, slot, ...)
        b"f" || u32be(float32 bits)    a float32 constant
    u16be(input count)  then each input's 32-byte tensor root
    the output's 32-byte tensor root

Its hash is ``sha256(record)``. A **step root** is ``merkle_root`` over the
record hashes of one training step in execution order (the step's last record
is a ``STATE`` record: no attributes, no inputs listed, and the state root after
the step as its output); a
**segment trace root** is ``merkle_root`` over the step roots of the segment
followed by the root of the distance computation (PROTOCOL.md §3). Tensors
that hold integers (indices, labels) are committed as float32 tensors of those
integers. docs/exact.md lists the op codes and their attributes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from agents.commitment import merkle_root
from agents.exact.errors import ExactError


class Op(IntEnum):
    """Op codes of the trace; the numbers are part of the protocol."""

    ADD = 0x01
    SUB = 0x02
    MUL = 0x03
    DIV = 0x04
    MAXIMUM = 0x05
    MINIMUM = 0x06
    LT = 0x07
    LE = 0x08
    EQ = 0x09
    SELECT = 0x0A
    LDEXP = 0x0B
    NEG = 0x10
    ABS = 0x11
    SQRT = 0x12
    EXP = 0x13
    LOG = 0x14
    SUM = 0x20
    AMAX = 0x21
    MATMUL_NT = 0x22
    TRANSPOSE = 0x30
    RESHAPE = 0x31
    INDEX_SELECT = 0x32
    TAKE_ALONG = 0x33
    ONE_HOT = 0x34
    CAUSAL_FILL = 0x35
    IM2COL = 0x36
    COL2IM = 0x37
    SCATTER_ADD = 0x38
    FULL = 0x39
    STATE = 0x40


Attribute = int | np.float32


def encode_attribute(value: Attribute) -> bytes:
    """One tagged attribute: ``b"f"`` and its float32 bits, or ``b"i"`` and an int64."""
    if isinstance(value, np.float32):
        return b"f" + struct.pack(">I", int(value.view(np.uint32)))
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return b"i" + struct.pack(">q", int(value))
    raise ExactError(f"op attribute must be an int or numpy.float32, got {value!r}")


def decode_attribute(data: bytes, pos: int) -> tuple[Attribute, int]:
    """The tagged attribute at ``pos`` and the position after it; raises ``ExactError`` on
    another tag and ``struct.error`` on bytes that end too early."""
    tag = data[pos : pos + 1]
    if tag == b"i":
        return int(struct.unpack_from(">q", data, pos + 1)[0]), pos + 9
    if tag == b"f":
        pattern = np.uint32(struct.unpack_from(">I", data, pos + 1)[0])
        return pattern.view(np.float32), pos + 5
    raise ExactError(f"unknown attribute tag {tag!r}")


def encode_attributes(attributes: Sequence[Attribute]) -> bytes:
    """The attribute bytes of an op record (count, then tagged values)."""
    if len(attributes) > 255:
        raise ExactError(f"an op record holds at most 255 attributes, got {len(attributes)}")
    return bytes([len(attributes)]) + b"".join(encode_attribute(v) for v in attributes)


@dataclass(frozen=True)
class OpRecord:
    """One executed operation: what ran, on which committed inputs, producing which output."""

    op: Op
    attributes: tuple[Attribute, ...]
    inputs: tuple[bytes, ...]
    output: bytes

    def encode(self) -> bytes:
        """The record's canonical bytes (module docstring)."""
        if len(self.inputs) > 0xFFFF:
            raise ExactError(f"an op record holds at most 65535 inputs, got {len(self.inputs)}")
        for root in (*self.inputs, self.output):
            if len(root) != 32:
                raise ExactError("tensor roots in an op record are 32 bytes")
        return (
            struct.pack(">H", int(self.op))
            + encode_attributes(self.attributes)
            + struct.pack(">H", len(self.inputs))
            + b"".join(self.inputs)
            + self.output
        )

    def digest(self) -> bytes:
        """``sha256`` of the encoded record: the leaf of its step's Merkle tree."""
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> OpRecord:
        """Parse an encoded record; raises ``ExactError`` on malformed bytes."""
        try:
            op = Op(struct.unpack_from(">H", data, 0)[0])
            pos = 2
            count = data[pos]
            pos += 1
            attributes: list[Attribute] = []
            for _ in range(count):
                value, pos = decode_attribute(data, pos)
                attributes.append(value)
            (n_inputs,) = struct.unpack_from(">H", data, pos)
            pos += 2
            inputs = tuple(data[pos + 32 * i : pos + 32 * (i + 1)] for i in range(n_inputs))
            pos += 32 * n_inputs
            output = data[pos : pos + 32]
            if len(output) != 32 or pos + 32 != len(data):
                raise ExactError("op record has the wrong length")
        except (IndexError, struct.error, ValueError) as exc:
            raise ExactError(f"malformed op record: {exc}") from exc
        return cls(op, tuple(attributes), inputs, output)


@dataclass
class StepTrace:
    """The records of one step, in execution order."""

    records: list[OpRecord] = field(default_factory=list)

    def root(self) -> bytes:
        """The step root: Merkle root over the record hashes."""
        return merkle_root([record.digest() for record in self.records])


@dataclass
class SegmentTrace:
    """The trace of a replayed segment: its steps, then the distance computation."""

    steps: list[StepTrace] = field(default_factory=list)
    distance: StepTrace | None = None

    def step_roots(self) -> list[bytes]:
        """Root of every step, in order."""
        return [step.root() for step in self.steps]

    def root(self) -> bytes:
        """The segment trace root: Merkle root over step roots, then the distance root."""
        leaves = self.step_roots()
        if self.distance is not None:
            leaves.append(self.distance.root())
        return merkle_root(leaves)

    def records(self) -> Iterable[OpRecord]:
        """Every record in execution order."""
        for step in self.steps:
            yield from step.records
        if self.distance is not None:
            yield from self.distance.records

    def encode(self) -> bytes:
        """The trace as an artifact: ``u32be(step count)``, ``u8(has distance)``, then per
        step ``u32be(record count)`` and each record as ``u32be(length) || record``."""
        parts = [struct.pack(">IB", len(self.steps), self.distance is not None)]
        groups = [*self.steps, *([self.distance] if self.distance is not None else [])]
        for step in groups:
            parts.append(struct.pack(">I", len(step.records)))
            for record in step.records:
                encoded = record.encode()
                parts.append(struct.pack(">I", len(encoded)) + encoded)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> SegmentTrace:
        """Parse ``encode``'s bytes; raises ``ExactError`` on malformed input."""
        try:
            n_steps, has_distance = struct.unpack_from(">IB", data, 0)
            pos = 5
            groups: list[StepTrace] = []
            for _ in range(n_steps + (1 if has_distance else 0)):
                (count,) = struct.unpack_from(">I", data, pos)
                pos += 4
                step = StepTrace()
                for _ in range(count):
                    (length,) = struct.unpack_from(">I", data, pos)
                    pos += 4
                    step.records.append(OpRecord.decode(data[pos : pos + length]))
                    pos += length
                groups.append(step)
        except struct.error as exc:
            raise ExactError(f"malformed trace: {exc}") from exc
        if pos != len(data):
            raise ExactError("malformed trace: trailing bytes")
        if has_distance:
            return cls(groups[:-1], groups[-1])
        return cls(groups, None)
