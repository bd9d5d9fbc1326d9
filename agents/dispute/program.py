"""The program of a task: what a replay must follow, op by op (docs/dispute.md, "Program").

A task's spec fixes every op a training step executes: the op code, its attributes, the
shape of its output, and where each input comes from (an earlier op of the step, a tensor
of the state the step starts from, a dataset tensor, one of the step's batch index
tensors). Only a few immediates vary from step to step (the learning rate, Adam's step
size and bias correction) and the batch index tensors. The **program** commits to all of
it; its root is derived from the spec alone, recorded on chain when a task is submitted,
and given to every dispute game of the task, which checks op records against it.

Byte formats (integers big-endian; the chain reads the same bytes,
``contracts/dispute/ProgramFormat.sol``):

**entry** (one per op of a step, in execution order)::

    u16 op code
    u8  attribute count, then each attribute as
        "i" || i64      an integer
        "f" || u32      a binary32 constant (its bits)
        "s" || u32      scalar number n of the step's constants (a record has "f" there)
    u16 source count, then each source as u8 kind || u32 index
    u64 terms           reduction length per output element (0: no reduction)
    the output's shape header (PROTOCOL.md §4; empty for STATE)

A STATE entry lists one source per state tensor (its record lists no inputs).

**constants** (one per training step of the task)::

    u8 scalar count, then u32 bits each
    u8 batch tensor count, then their 32-byte tensor roots

**header** (its sha256 is the program root)::

    "VTPROG01"                        8 bytes
    u32 steps, u32 checkpoint interval k, u32 segments S, u32 segments sampled s
    u8 metric (0 l2, 1 linf), u32 epsilon bits
    u32 state tensors, u32 ops per step, u32 ops of the distance computation
    step template root, distance template root, constants root, initial state root
    u8 dataset tensor count, then their tensor roots

The templates are Merkle trees (PROTOCOL.md §4) over the sha256 of each entry; the
constants root is the Merkle tree over the sha256 of every step's constants.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from agents.commitment import DIGEST_BYTES, engine
from agents.dispute.errors import ProgramError
from agents.dispute.tree import MerkleLevels
from agents.exact.errors import ExactError
from agents.exact.trace import (
    Attribute,
    Op,
    decode_attribute,
    encode_attribute,
    encode_attributes,
)

if TYPE_CHECKING:
    from agents.commitment.hashing import Sha256Engine

MAGIC = b"VTPROG01"
ARTIFACT_MAGIC = b"VTPROGRAM/1\n"
METRICS = ("l2", "linf")


class SourceKind(IntEnum):
    """Where an input comes from; the numbers are part of the format."""

    OP = 0
    STATE = 1
    DATASET = 2
    BATCH = 3
    START = 4
    CLAIMED = 5


@dataclass(frozen=True)
class Source:
    """Input source: ``kind`` and its index (op, tensor in name order, dataset or batch tensor)."""

    kind: SourceKind
    index: int


@dataclass(frozen=True)
class StepScalar:
    """An attribute that is scalar ``index`` of the step's constants."""

    index: int


EntryAttribute = int | np.float32 | StepScalar
# A program entry's attributes are a record's (``agents.exact.trace``) plus this tag,
# followed by a u32: scalar number ``index`` of the step's constants.
SCALAR_TAG = b"s"


def _shape_header(shape: Sequence[int]) -> bytes:
    numel = 1
    for dim in shape:
        numel *= int(dim)
    return struct.pack(">QI", numel, len(shape)) + b"".join(
        struct.pack(">Q", int(d)) for d in shape
    )


@dataclass(frozen=True)
class ProgramEntry:
    """What op number ``j`` of a step must be."""

    op: Op
    attributes: tuple[EntryAttribute, ...]
    sources: tuple[Source, ...]
    terms: int
    shape: tuple[int, ...] | None  # None for STATE, whose output is a state root

    def encode(self) -> bytes:
        out = bytearray(struct.pack(">HB", int(self.op), len(self.attributes)))
        for value in self.attributes:
            if isinstance(value, StepScalar):
                out += SCALAR_TAG + struct.pack(">I", value.index)
            else:
                out += encode_attribute(value)
        out += struct.pack(">H", len(self.sources))
        for source in self.sources:
            out += struct.pack(">BI", int(source.kind), source.index)
        out += struct.pack(">Q", self.terms)
        if self.shape is not None:
            out += _shape_header(self.shape)
        return bytes(out)

    def digest(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> ProgramEntry:
        try:
            op = Op(struct.unpack_from(">H", data, 0)[0])
            count = data[2]
            pos = 3
            attributes: list[EntryAttribute] = []
            for _ in range(count):
                if data[pos : pos + 1] == SCALAR_TAG:
                    attributes.append(StepScalar(struct.unpack_from(">I", data, pos + 1)[0]))
                    pos += 5
                else:
                    value, pos = decode_attribute(data, pos)
                    attributes.append(value)
            (n_sources,) = struct.unpack_from(">H", data, pos)
            pos += 2
            sources = []
            for _ in range(n_sources):
                kind, index = struct.unpack_from(">BI", data, pos)
                sources.append(Source(SourceKind(kind), index))
                pos += 5
            (terms,) = struct.unpack_from(">Q", data, pos)
            pos += 8
            shape: tuple[int, ...] | None = None
            if op != Op.STATE:
                _numel, ndim = struct.unpack_from(">QI", data, pos)
                shape = tuple(struct.unpack_from(f">{ndim}Q", data, pos + 12))
                pos += 12 + 8 * ndim
        except (IndexError, struct.error, ValueError, ExactError) as exc:
            raise ProgramError(f"malformed program entry: {exc}") from exc
        if pos != len(data):
            raise ProgramError("malformed program entry: trailing bytes")
        return cls(op, tuple(attributes), tuple(sources), terms, shape)

    def record_attributes(self, scalars: Sequence[np.float32]) -> tuple[Attribute, ...]:
        """The attributes a record of this op carries at a step with these scalars."""
        out: list[Attribute] = []
        for value in self.attributes:
            if isinstance(value, StepScalar):
                out.append(np.float32(scalars[value.index]))
            else:
                out.append(value)
        return tuple(out)

    def record_prefix(self, scalars: Sequence[np.float32]) -> bytes:
        """The bytes a record of this op has before its input roots."""
        inputs = 0 if self.op == Op.STATE else len(self.sources)
        return (
            struct.pack(">H", int(self.op))
            + encode_attributes(self.record_attributes(scalars))
            + struct.pack(">H", inputs)
        )

    @property
    def header(self) -> bytes:
        """The output's shape header (empty for STATE)."""
        return b"" if self.shape is None else _shape_header(self.shape)

    def uses_scalars(self) -> bool:
        return any(isinstance(a, StepScalar) for a in self.attributes)


@dataclass(frozen=True)
class StepConstants:
    """The per-step part of a program: scalar immediates and batch index tensor roots."""

    scalars: tuple[np.float32, ...]
    batches: tuple[bytes, ...]

    def encode(self) -> bytes:
        out = bytearray([len(self.scalars)])
        for value in self.scalars:
            out += struct.pack(">I", int(np.float32(value).view(np.uint32)))
        out.append(len(self.batches))
        for root in self.batches:
            out += root
        return bytes(out)

    def digest(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> StepConstants:
        try:
            count = data[0]
            scalars = tuple(
                np.uint32(v).view(np.float32) for v in struct.unpack_from(f">{count}I", data, 1)
            )
            pos = 1 + 4 * count
            batches_count = data[pos]
            pos += 1
            batches = tuple(data[pos + 32 * i : pos + 32 * (i + 1)] for i in range(batches_count))
            pos += 32 * batches_count
        except (IndexError, struct.error) as exc:
            raise ProgramError(f"malformed step constants: {exc}") from exc
        if pos != len(data) or any(len(b) != 32 for b in batches):
            raise ProgramError("malformed step constants: wrong length")
        return cls(scalars, batches)


@dataclass(frozen=True)
class ProgramHeader:
    """The fixed part of a program; its sha256 is the program root."""

    steps: int
    interval: int
    segments: int
    samples: int
    metric: str
    epsilon: np.float32
    state_tensors: int
    step_ops: int
    distance_ops: int
    step_template: bytes
    distance_template: bytes
    constants: bytes
    initial_state: bytes
    datasets: tuple[bytes, ...]

    def encode(self) -> bytes:
        if self.metric not in METRICS:
            raise ProgramError(f"unknown metric {self.metric!r}")
        return (
            MAGIC
            + struct.pack(">IIII", self.steps, self.interval, self.segments, self.samples)
            + struct.pack(
                ">BI", METRICS.index(self.metric), int(np.float32(self.epsilon).view(np.uint32))
            )
            + struct.pack(">III", self.state_tensors, self.step_ops, self.distance_ops)
            + self.step_template
            + self.distance_template
            + self.constants
            + self.initial_state
            + bytes([len(self.datasets)])
            + b"".join(self.datasets)
        )

    def root(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> ProgramHeader:
        if len(data) < 170 or data[:8] != MAGIC:
            raise ProgramError("not a program header")
        steps, interval, segments, samples = struct.unpack_from(">IIII", data, 8)
        metric, epsilon = struct.unpack_from(">BI", data, 24)
        state_tensors, step_ops, distance_ops = struct.unpack_from(">III", data, 29)
        count = data[169]
        if len(data) != 170 + 32 * count or metric >= len(METRICS):
            raise ProgramError("malformed program header")
        return cls(
            steps=steps,
            interval=interval,
            segments=segments,
            samples=samples,
            metric=METRICS[metric],
            epsilon=np.uint32(epsilon).view(np.float32),
            state_tensors=state_tensors,
            step_ops=step_ops,
            distance_ops=distance_ops,
            step_template=data[41:73],
            distance_template=data[73:105],
            constants=data[105:137],
            initial_state=data[137:169],
            datasets=tuple(data[170 + 32 * i : 202 + 32 * i] for i in range(count)),
        )


# From this many steps on, the constants' digests are hashed in calls of the compiled engine.
ENGINE_MIN_STEPS = 64


def constants_digests(constants: Sequence[StepConstants]) -> np.ndarray:
    """``StepConstants.digest`` of each of ``constants``, as ``(n, 32)`` uint8: the encodings
    of the steps with as many scalars and batch roots laid out in one array and hashed in one
    call of the compiled engine, where there is one (the digests of step after step)."""
    out = np.empty((len(constants), DIGEST_BYTES), dtype=np.uint8)
    compiled = engine() if len(constants) >= ENGINE_MIN_STEPS else None
    shapes: dict[tuple[int, int], list[int]] = {}
    for i, step in enumerate(constants):
        shapes.setdefault((len(step.scalars), len(step.batches)), []).append(i)
    for (scalars, batches), rows in shapes.items():
        every = [root for i in rows for root in constants[i].batches]
        regular = scalars < 256 and batches < 256 and all(len(root) == 32 for root in every)
        if compiled is None or not regular:
            for i in rows:
                out[i] = np.frombuffer(constants[i].digest(), np.uint8)
            continue
        size = 2 + 4 * scalars + 32 * batches  # StepConstants.encode's layout
        encoded = np.empty((len(rows), size), dtype=np.uint8)
        encoded[:, 0] = scalars
        values = np.array([constants[i].scalars for i in rows], dtype=np.float32)
        bits = values.reshape(len(rows), scalars).view(np.uint32).astype(">u4")
        encoded[:, 1 : 1 + 4 * scalars] = bits.view(np.uint8).reshape(len(rows), 4 * scalars)
        encoded[:, 1 + 4 * scalars] = batches
        roots = np.frombuffer(b"".join(every), np.uint8)
        encoded[:, 2 + 4 * scalars :] = roots.reshape(len(rows), -1)
        out[rows] = _hash_rows(compiled, encoded)
    return out


def _hash_rows(compiled: Sha256Engine, encoded: np.ndarray) -> np.ndarray:
    """sha256 of each row of ``encoded`` (uint8, rows of one length) by ``compiled``."""
    count, size = encoded.shape
    flat = np.ascontiguousarray(encoded).reshape(-1)
    offsets = np.arange(count, dtype=np.int64) * size
    return compiled.hash_messages(flat, offsets, np.full(count, size, dtype=np.int64))


@dataclass
class Program:
    """A whole program: the step and distance templates and every step's constants."""

    steps: int
    interval: int
    segments: int
    samples: int
    metric: str
    epsilon: np.float32
    state_tensors: int
    initial_state: bytes
    datasets: tuple[bytes, ...]
    step_template: list[ProgramEntry]
    distance_template: list[ProgramEntry]
    constants: list[StepConstants]
    _trees: dict[str, MerkleLevels] = field(default_factory=dict, repr=False, compare=False)

    def _tree(self, name: str) -> MerkleLevels:
        if name not in self._trees:
            leaves: list[bytes] | np.ndarray
            if name == "step":
                leaves = [e.digest() for e in self.step_template]
            elif name == "distance":
                leaves = [e.digest() for e in self.distance_template]
            else:
                leaves = constants_digests(self.constants)
            self._trees[name] = MerkleLevels(leaves)
        return self._trees[name]

    def header(self) -> ProgramHeader:
        return ProgramHeader(
            steps=self.steps,
            interval=self.interval,
            segments=self.segments,
            samples=self.samples,
            metric=self.metric,
            epsilon=self.epsilon,
            state_tensors=self.state_tensors,
            step_ops=len(self.step_template),
            distance_ops=len(self.distance_template),
            step_template=self._tree("step").root,
            distance_template=self._tree("distance").root,
            constants=self._tree("constants").root,
            initial_state=self.initial_state,
            datasets=self.datasets,
        )

    def root(self) -> bytes:
        """The program root (sha256 of the header)."""
        return self.header().root()

    def template(self, distance: bool) -> list[ProgramEntry]:
        return self.distance_template if distance else self.step_template

    def entry_proof(self, distance: bool, index: int) -> list[bytes]:
        """Merkle proof of entry ``index`` of the step (or distance) template."""
        return self._tree("distance" if distance else "step").proof(index)

    def constants_proof(self, step: int) -> list[bytes]:
        """Merkle proof of the constants of (global) training step ``step``."""
        return self._tree("constants").proof(step)

    def segment_steps(self, segment: int) -> tuple[int, int]:
        """The first step and the step count of segment ``segment``."""
        first = segment * self.interval
        if not 0 <= segment < self.segments or first >= self.steps:
            raise ProgramError(f"segment {segment} is not one of the program's {self.segments}")
        return first, min(self.interval, self.steps - first)

    # --- as an artifact ------------------------------------------------------------------

    def encode(self) -> bytes:
        """``ARTIFACT_MAGIC``, the header, then the entries and constants, each length-prefixed."""
        parts = [ARTIFACT_MAGIC, _chunk(self.header().encode())]
        for group in (self.step_template, self.distance_template, self.constants):
            parts.append(struct.pack(">I", len(group)))
            parts += [_chunk(item.encode()) for item in group]
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Program:
        if not data.startswith(ARTIFACT_MAGIC):
            raise ProgramError("not a program artifact")
        pos = len(ARTIFACT_MAGIC)
        try:
            header_bytes, pos = _unchunk(data, pos)
            header = ProgramHeader.decode(header_bytes)
            groups: list[list[bytes]] = []
            for _ in range(3):
                (count,) = struct.unpack_from(">I", data, pos)
                pos += 4
                items = []
                for _ in range(count):
                    item, pos = _unchunk(data, pos)
                    items.append(item)
                groups.append(items)
        except struct.error as exc:
            raise ProgramError(f"malformed program artifact: {exc}") from exc
        if pos != len(data):
            raise ProgramError("malformed program artifact: trailing bytes")
        program = cls(
            steps=header.steps,
            interval=header.interval,
            segments=header.segments,
            samples=header.samples,
            metric=header.metric,
            epsilon=header.epsilon,
            state_tensors=header.state_tensors,
            initial_state=header.initial_state,
            datasets=header.datasets,
            step_template=[ProgramEntry.decode(b) for b in groups[0]],
            distance_template=[ProgramEntry.decode(b) for b in groups[1]],
            constants=[StepConstants.decode(b) for b in groups[2]],
        )
        if program.header() != header:
            raise ProgramError("program artifact: the header does not match its contents")
        return program


def _chunk(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _unchunk(data: bytes, pos: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from(">I", data, pos)
    pos += 4
    if pos + length > len(data):
        raise struct.error("chunk past the end")
    return data[pos : pos + length], pos + length
