"""``ExactOps``: the exact operations as layers call them, checked and optionally traced.

Every method is one trace operation (``agents.exact.trace.Op``): it checks its
inputs (shapes, axes, indices) and raises ``ExactError`` naming what is wrong,
turns Python numbers into float32 immediates (rounded to nearest-even, then
recorded by their bits), runs the path's kernel, and, when a ``Tracer`` is
attached, appends the op record with the tensor roots of inputs and output.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import operator
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from agents.commitment import (
    FAST_MIN_HASHES,
    engine,
    leaf_hashes,
    merkle_root,
    merkle_roots,
    root_from_merkle,
    shape_header,
    state_root,
    tensor_root,
)
from agents.exact.errors import ExactError
from agents.exact.float32 import INTEGER_LIMIT
from agents.exact.kernels import Array, Kernels, broadcast_shape
from agents.exact.trace import (
    Attribute,
    Op,
    OpRecord,
    SegmentTrace,
    StepTrace,
    encode_attributes,
)

if TYPE_CHECKING:  # the threads need numba, which the eager path does without
    from agents.commitment.threads import HashingThreads, Job

Scalar = float | int | np.floating


class StepScalar(float):
    """An immediate that the task's schedule gives each step its own value of (the learning
    rate, Adam's step size and bias correction): number ``index`` of the step's scalars.

    It is recorded as any immediate is (its binary32 value in the op record); a tracer is
    also told which attribute holds it, so that the task's program (``agents.dispute``) can
    say "scalar ``index`` of the step" where a record has the value.
    """

    index: int

    def __new__(cls, value: Scalar, index: int) -> StepScalar:
        scalar = super().__new__(cls, float(np.float32(value)))
        scalar.index = index
        return scalar


_SCALARS = (float, int, np.floating, np.integer)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, _SCALARS) and not isinstance(value, bool)


def _check_immediates(imms: np.ndarray) -> None:
    """A chain's immediates are one axis of binary32 values: the kernels read them as they
    are, so another dtype would compute in another precision."""
    if not isinstance(imms, np.ndarray) or imms.dtype != _F32 or imms.ndim != 1:
        kind = getattr(imms, "dtype", type(imms).__name__)
        raise ExactError(f"chain: immediates must be one axis of float32, not {kind}")


def _shape(value: Any) -> tuple[int, ...]:
    # numpy shapes are tuples of ints and torch.Size is a tuple subclass of ints.
    return tuple(value.shape)


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# Tensor roots are computed on these threads, one per core but the computing thread's (one on a
# single core), while the next steps run: native threads of ``agents.commitment.threads``, which
# never take the GIL (a Python thread hashing with the same kernels took it to wake, to start each
# kernel and to return, and each time the computing thread waited for it: traced over untraced,
# in-process, interleaved against such a thread, three runs a model, the digits MLP 1.85, 1.86, 1.98
# -> 1.77, 1.80, 1.99, the small CNN 1.46, 1.55, 1.57 -> 1.40, 1.51, 1.51, the tiny transformer,
# bound by one thread's hashing, 1.76, 1.75, 1.80 -> 1.81, 1.81, 1.76). A model whose steps write
# more bytes than one core hashes in a step's time keeps several steps hashing at once, the
# computing thread keeps a core of its own, and tracers replaying side by side share the threads.
# Closed steps are handed over in groups of at least _GROUP_BYTES of new tensors (a small model's
# steps go several at a time), as a table of addresses and sizes made on the computing thread; a
# group is split into parts of at least _PART_BYTES, one per thread, and a larger one into parts of
# about _CUT_BYTES. A thread that waits for groups' roots hashes the parts no hashing thread has
# started, from the newest group's last back (the threads take them from the first), and the last
# group of a segment, which the trace root waits for, has one part more, left to the waiting thread:
# the tail is hashed on every core. (A transformer step hands over 32 MB at once: as one part, the
# root of a 5-step segment waited 11 ms for it on one thread. Traced over untraced, in-process,
# interleaved: 5-step segments 2.17 -> 1.92, 16 steps 1.74 -> 1.75, within the noise; a CNN group of
# 5 MB is one part, 2 MB parts gained nothing there, and 1 MB parts cost more in hand-overs than
# they saved.) A tracer waits for its older groups once one is outstanding besides the newest
# (_OUTSTANDING), and a part's arrays are let go once the part is hashed (at the next step's end,
# not when its roots are collected), so that the next steps' tensors go to memory freed moments
# before. Measured against 4 outstanding groups whose arrays were held until collected (traced step
# over untraced, in-process, interleaved, at several times of day): the round's long MLP 1.65-1.70
# -> 1.50-1.54 over whole 169-step segments, the tiny transformer 1.97-2.00 -> 1.71-1.92, the CNN
# 1.64-1.89 -> 1.57-1.81, the digits MLP unchanged; once arrays are let go, 1, 2 or 4 outstanding
# groups differ by less than the noise.
_HASHING_THREADS = max(1, _cores() - 1)
_OUTSTANDING = 1
_GROUP_BYTES = 4 << 20
_PART_BYTES = 1 << 20
_CUT_BYTES = 4 << 20
# Batches smaller than a group (a trace read mid-way hands its steps over) are collected
# many at once, their roots in one call, once more than this many wait.
_SMALL_BATCHES = 64

_F32 = np.dtype(np.float32)
_RESHAPE = Op.RESHAPE
_STATE = Op.STATE
_STATE_PREFIX = bytes([0, int(Op.STATE), 0, 0, 0])

# The ops a ``ChainPlan`` step may be (elementwise; one, two or three operands).
CHAIN_OPS = frozenset(
    {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAXIMUM, Op.MINIMUM, Op.LT, Op.LE, Op.EQ, Op.SELECT}
    | {Op.LDEXP, Op.NEG, Op.ABS, Op.SQRT, Op.EXP, Op.LOG}
)


class Imm(int):
    """An immediate operand of a chain step: the float32 ``imms[i]`` of the run."""


_KINDS = {"F": 0, "R": 1, "C": 2}  # full, one value per row, one per column
_FULL, _ROW, _COLUMN = 0, 1, 2
_REDUCTIONS = frozenset({Op.SUM, Op.AMAX})


class ChainPlan:
    """Ops over ``inputs`` arrays that ``ExactOps.run_chain`` runs as one kernel, each step's
    output kept, and records in one tracer call. Written as calls (``plan(op, *operands)``
    returns the register of the step's output): an operand is a register (an int: the
    inputs, then the outputs of the steps before) or an ``Imm``. A step is an elementwise
    op (``CHAIN_OPS``) or ``SUM``/``AMAX`` of a full register along its last axis.

    Registers are of one of three kinds (``kinds``, a letter per input; every input full
    when empty): ``F`` the full shape ``S``, ``R`` one value per row (``S[:-1] + (1,)``),
    ``C`` one per column (``(S[-1],)``); an elementwise step's output has the kind of its
    operands' broadcast, a reduction's is ``R``. A step's record is the op's one by one:
    an immediate in operand slot ``s`` gives the attributes ``s`` and its value; the array
    operands, in order, are its inputs; a reduction's attribute is its axis."""

    def __init__(self, inputs: int, kinds: str = "") -> None:
        self.inputs = inputs
        self.kinds = [_KINDS[k] for k in kinds or "F" * inputs]
        if len(self.kinds) != inputs:
            raise ExactError(f"chain: {len(kinds)} kinds for {inputs} inputs")
        self.full = not kinds or set(kinds) == {"F"}  # every register full, no reduction
        self.imms = 0
        self.ops: list[Op] = []
        self.operands: list[tuple[int, ...]] = []  # as written: registers and ``Imm`` s
        self._slots: list[tuple[tuple[int, int], ...]] = []  # (slot, immediate) per step
        self.refs: list[int] = []  # every record's registers, inputs then output
        self.pick: Any = None
        self.counts: list[int] = []
        self.code = np.zeros((0, 4), dtype=np.int64)
        self.kind_codes = np.asarray(self.kinds, dtype=np.int64)
        # Prefixes and attributes by the immediates' bits (a schedule changes some per step)
        # and the rank of the full shape (a reduction's axis).
        self._records: dict[tuple[bytes, int], tuple[list[bytes], list[tuple[Attribute, ...]]]]
        self._records = {}
        # The last ones built (rank, float32 immediates, prefixes, attributes): with other
        # immediates, only the steps that read one whose bits changed are built again.
        self._last: tuple[int, list[int], list[bytes], list[tuple[Attribute, ...]]] | None
        self._last = None
        self._readers: dict[int, list[int]] = {}  # per immediate: the steps that read it
        # Per step: its record prefix's layout with its immediates (``encode_attributes``).
        self._packers: list[struct.Struct] = []

    def __call__(self, op: Op, *operands: int) -> int:
        step = len(self.ops)
        reduction = op in _REDUCTIONS
        if not (op in CHAIN_OPS and 0 < len(operands) <= 3) and not (
            reduction and len(operands) == 1
        ):
            raise ExactError(f"chain: {op.name.lower()} with {len(operands)} operands")
        code = [int(op), 0, 0, 0]
        refs: list[int] = []
        slots: list[tuple[int, int]] = []
        for slot, operand in enumerate(operands):
            if type(operand) is Imm and not reduction:
                self.imms = max(self.imms, operand + 1)
                slots.append((slot, int(operand)))
                self._readers.setdefault(int(operand), []).append(step)
                code[1 + slot] = -1 - operand
            elif type(operand) is int and 0 <= operand < self.inputs + step:
                refs.append(operand)
                code[1 + slot] = operand
            else:
                raise ExactError(f"chain: step {step} has operand {operand!r}")
        if not refs:
            raise ExactError(f"chain: step {step} has no array operand")
        kinds = {self.kinds[r] for r in refs}
        if reduction:
            if kinds != {_FULL}:
                raise ExactError(f"chain: step {step} reduces a register that is not full")
            self.full = False
            kind = _ROW
        else:
            kind = _FULL if _FULL in kinds or kinds == {_ROW, _COLUMN} else kinds.pop()
        self.kinds.append(kind)
        self.kind_codes = np.asarray(self.kinds, dtype=np.int64)
        self.ops.append(op)
        self.operands.append(operands)
        self._slots.append(tuple(slots))
        self._packers.append(struct.Struct(">HB" + "cqcI" * len(slots) + "H"))
        self.refs += [*refs, self.inputs + step]
        self.pick = operator.itemgetter(*self.refs)  # every record's registers of a list
        self.counts.append(len(refs) + 1)
        self.code = np.concatenate([self.code, np.array([code], dtype=np.int64)])
        return self.inputs + step

    def records(
        self, imms: np.ndarray, rank: int = 1
    ) -> tuple[list[bytes], list[tuple[Attribute, ...]]]:
        """Every step's record prefix and attributes with the immediates ``imms``, the full
        shape having ``rank`` axes."""
        key = (imms.tobytes(), rank)
        found = self._records.get(key)
        if found is None:
            steps: Sequence[int] = range(len(self.ops))
            last = self._last
            float32 = imms.dtype == _F32 and imms.ndim == 1
            pattern = imms.view(np.uint32).tolist() if float32 else None
            if (
                pattern is not None
                and last is not None
                and last[0] == rank
                and len(last[1]) == len(imms)
                and len(last[2]) == len(self.ops)
            ):
                prefixes, attributes = list(last[2]), list(last[3])
                readers = self._readers
                steps = sorted(
                    {
                        k
                        for i, (a, b) in enumerate(zip(last[1], pattern, strict=True))
                        if a != b
                        for k in readers.get(i, ())
                    }
                )
            else:
                prefixes, attributes = [b""] * len(self.ops), [()] * len(self.ops)
            for k in steps:
                op = self.ops[k]
                if op in _REDUCTIONS:
                    values: tuple[Attribute, ...] = (rank - 1,)
                    prefixes[k] = _prefix(op, values, self.counts[k] - 1)
                else:
                    slots = self._slots[k]
                    values = tuple(v for slot, i in slots for v in (slot, imms[i]))
                    if pattern is None:
                        prefixes[k] = _prefix(op, values, self.counts[k] - 1)
                    else:  # encode_attributes' bytes, packed at once
                        fields = [f for slot, i in slots for f in (b"i", slot, b"f", pattern[i])]
                        prefixes[k] = self._packers[k].pack(
                            int(op), len(values), *fields, self.counts[k] - 1
                        )
                attributes[k] = values
            if pattern is not None:
                self._last = (rank, pattern, prefixes, attributes)
            if len(self._records) >= 64:  # a schedule's per-step immediates: start over
                self._records.clear()
            found = self._records[key] = (prefixes, attributes)
        return found


class OpSequence:
    """Ops that a caller runs itself, kernel by kernel, and records in one tracer call
    (``Tracer.record_sequence``): step ``k`` is ``ops[k]`` with its attributes over
    registers (the ``inputs`` arrays, then the outputs of the steps before); its record is
    the op's one by one. Made once per site and shape."""

    def __init__(
        self, inputs: int, steps: Sequence[tuple[Op, tuple[Attribute, ...], tuple[int, ...]]]
    ) -> None:
        self.inputs = inputs
        self.ops = [op for op, _, _ in steps]
        self.counts = [len(operands) + 1 for _, _, operands in steps]
        self.refs: list[int] = []
        for k, (_, _, operands) in enumerate(steps):
            if not all(0 <= r < inputs + k for r in operands):
                raise ExactError(f"op sequence: step {k} has operands {operands}")
            self.refs += [*operands, inputs + k]
        self.pick = operator.itemgetter(*self.refs)
        # A reshape's output may lie over its input's memory (``Tracer.record``).
        self.sources = [operands[0] if op is _RESHAPE else -1 for op, _, operands in steps]
        self._attributes = [attributes for _, attributes, _ in steps]
        self._prefixes = [
            _prefix(op, attributes, len(operands)) for op, attributes, operands in steps
        ]

    def records(self) -> tuple[list[bytes], list[tuple[Attribute, ...]]]:
        """Every step's record prefix and attributes."""
        return self._prefixes, self._attributes


#: The layer sequences' plans kept per process (keyed by shapes: a verifier that replays many
#: tasks meets new ones; each plan is a few kilobytes).
SEQUENCE_PLANS = 1024


@functools.lru_cache(maxsize=SEQUENCE_PLANS)
def _linear_backward_plan(bias: int | None, input_grad: bool) -> OpSequence:
    """``linear_backward``'s records over ``dy, x, weight`` (``bias``: the bias's width, or
    ``None`` for none)."""
    dy, x, weight = 0, 1, 2
    steps: list[tuple[Op, tuple[Attribute, ...], tuple[int, ...]]] = [
        (Op.TRANSPOSE, (1, 0), (dy,)),
        (Op.TRANSPOSE, (1, 0), (x,)),
        (Op.MATMUL_NT, (), (3, 4)),
    ]
    if bias is not None:
        steps += [(Op.SUM, (0,), (dy,)), (Op.RESHAPE, (bias,), (6,))]
    if input_grad:
        transposed = 3 + len(steps)
        steps += [(Op.TRANSPOSE, (1, 0), (weight,)), (Op.MATMUL_NT, (), (dy, transposed))]
    return OpSequence(3, steps)


@functools.lru_cache(maxsize=SEQUENCE_PLANS)
def _conv2d_plan(
    geometry: tuple[int, int, int, int, int, int, int], out_channels: int
) -> OpSequence:
    """``conv2d_forward``'s records over ``x, weight, bias`` (``geometry`` as below)."""
    batch, channels, height, width, kernel, stride, padding = geometry
    oh = (height + 2 * padding - kernel) // stride + 1
    ow = (width + 2 * padding - kernel) // stride + 1
    return OpSequence(
        3,
        [
            (Op.IM2COL, (kernel, stride, padding), (0,)),  # 3: cols
            (Op.RESHAPE, (out_channels, channels * kernel * kernel), (1,)),  # 4: flat weight
            (Op.MATMUL_NT, (), (3, 4)),  # 5
            (Op.ADD, (), (5, 2)),  # 6
            (Op.RESHAPE, (batch, oh, ow, out_channels), (6,)),  # 7
            (Op.TRANSPOSE, (0, 3, 1, 2), (7,)),  # 8: y
        ],
    )


@functools.lru_cache(maxsize=SEQUENCE_PLANS)
def _conv2d_backward_plan(
    geometry: tuple[int, int, int, int, int, int, int], out_channels: int, input_grad: bool
) -> OpSequence:
    """``conv2d_backward``'s records over ``dy, cols, flat_weight`` (``geometry``: the image's
    batch, channels, height, width, then kernel, stride, padding)."""
    batch, channels, height, width, kernel, stride, padding = geometry
    oh = (height + 2 * padding - kernel) // stride + 1
    ow = (width + 2 * padding - kernel) // stride + 1
    steps: list[tuple[Op, tuple[Attribute, ...], tuple[int, ...]]] = [
        (Op.TRANSPOSE, (0, 2, 3, 1), (0,)),  # 3
        (Op.RESHAPE, (batch * oh * ow, out_channels), (3,)),  # 4: g
        (Op.SUM, (0,), (4,)),  # 5
        (Op.RESHAPE, (out_channels,), (5,)),  # 6: db
        (Op.TRANSPOSE, (1, 0), (4,)),  # 7
        (Op.TRANSPOSE, (1, 0), (1,)),  # 8
        (Op.MATMUL_NT, (), (7, 8)),  # 9
        (Op.RESHAPE, (out_channels, channels, kernel, kernel), (9,)),  # 10: dW
    ]
    if input_grad:
        steps += [
            (Op.TRANSPOSE, (1, 0), (2,)),  # 11
            (Op.MATMUL_NT, (), (4, 11)),  # 12
            (Op.COL2IM, (kernel, stride, padding, batch, channels, height, width), (12,)),
        ]
    return OpSequence(3, steps)


# Record prefixes by site: a model's steps repeat the same few hundred (op, attributes)
# pairs, so each is encoded once. Float immediates are keyed by their bits (+0 and -0, or
# two NaN payloads, are equal as numbers but distinct immediates) and other attributes with
# their type (an attribute that is not an int fails in ``encode_attributes``, never here).
_PREFIXES: dict[tuple[Any, ...], bytes] = {}
_PREFIX_LIMIT = 1 << 16
# Shape headers of tensor roots, by shape.
_HEADERS: dict[tuple[int, ...], bytes] = {}


def _header(shape: tuple[int, ...]) -> bytes:
    header = _HEADERS.get(shape)
    if header is None:
        if len(_HEADERS) >= _PREFIX_LIMIT:
            _HEADERS.clear()
        header = _HEADERS[shape] = shape_header(shape)
    return header


class _Padded(dict[bytes, bytes]):
    """Record prefixes and shape headers, each preceded by the zero bytes that make its
    length a multiple of 32 (``_layout`` copies them as 32-byte rows)."""

    def __missing__(self, prefix: bytes) -> bytes:
        if len(self) >= 2 * _PREFIX_LIMIT:
            self.clear()
        padded = self[prefix] = bytes(-len(prefix) % 32) + prefix
        return padded


_PADDED = _Padded()
# Shape headers of up to six axes (60 bytes), each preceded by the zero bytes that make
# it 64 bytes long: a tensor root's message then fits three 32-byte rows.
_HEADER_ROOM = 64
_ROOT = np.dtype("V32")  # a 32-byte root (or row of a message) as one value


def _prefix(op: Op, attributes: tuple[Attribute, ...], inputs: int) -> bytes:
    # An Op hashes by its name, in Python; its members are singletons: keyed by identity.
    if not attributes:
        key: tuple[Any, ...] = (id(op), inputs)
    elif len(attributes) == 2 and type(attributes[0]) is int and type(attributes[1]) is np.float32:
        # An elementwise op's immediate: its slot, then its bits. Only this key has a bare
        # int after the input count (the general one wraps each int with its type).
        key = (id(op), inputs, attributes[0], attributes[1].tobytes())
    else:
        key = (
            id(op),
            inputs,
            *[a.tobytes() if type(a) is np.float32 else (type(a), a) for a in attributes],
        )
    prefix = _PREFIXES.get(key)
    if prefix is None:
        prefix = struct.pack(">H", int(op)) + encode_attributes(attributes)
        prefix += struct.pack(">H", inputs)
        if len(_PREFIXES) >= _PREFIX_LIMIT:  # a schedule's per-step immediates: start over
            _PREFIXES.clear()
        _PREFIXES[key] = prefix
    return prefix


# ``linear_forward``'s records over ``x, weight`` (no bias) and ``x, weight, bias``.
_LINEAR = (
    OpSequence(2, [(Op.MATMUL_NT, (), (0, 1))]),
    OpSequence(3, [(Op.MATMUL_NT, (), (0, 1)), (Op.ADD, (), (3, 2))]),
)


# A group's Merkle roots: computed, or consecutive parts of them being hashed.
_Merkles = list["Job"] | np.ndarray


def _starts(lengths: np.ndarray) -> np.ndarray:
    """Where each of consecutive pieces of ``lengths`` starts (int64, from 0)."""
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _layout(
    prefixes: list[bytes], counts: np.ndarray, rows: np.ndarray, table: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Messages laid out in one buffer: message ``i`` is ``prefixes[i]``, then the
    ``counts[i]`` rows of ``table`` named next in ``rows`` (32 bytes each). Each message
    starts where its rows begin on a multiple of 32 bytes, so that they are copied as rows;
    the bytes between messages are never hashed. Returns the buffer and every message's
    offset and length in it."""
    prefix_lengths = np.fromiter(map(len, prefixes), dtype=np.int64, count=len(prefixes))
    blob = np.frombuffer(b"".join(map(_PADDED.__getitem__, prefixes)), dtype=_ROOT)
    prefix_rows = -(-prefix_lengths // 32)
    room = prefix_rows + counts  # rows per message
    first = _starts(room)
    buffer = np.empty(int(room.sum()), dtype=_ROOT)
    buffer[np.repeat(first - _starts(prefix_rows), prefix_rows) + np.arange(blob.size)] = blob
    places = np.repeat(first + prefix_rows - _starts(counts), counts) + np.arange(rows.size)
    buffer[places] = table.view(_ROOT).reshape(-1)[rows]
    offsets = 32 * (first + prefix_rows) - prefix_lengths
    return buffer.view(np.uint8), offsets, prefix_lengths + 32 * counts


class _HeaderRows:
    """Shape headers of up to ``_HEADER_ROOM`` bytes, each given a code the first time it is
    met and kept as a row of ``_HEADER_ROOM`` bytes (zero bytes, then the header), with its
    length: a tensor root's message is then laid out by array indexing (one tracer's own)."""

    def __init__(self) -> None:
        self.codes: dict[bytes, int] = {}
        self.rows = np.zeros((16, _HEADER_ROOM), dtype=np.uint8)
        self.lengths = np.zeros(16, dtype=np.int64)

    def code(self, header: bytes) -> int:
        """The code of ``header``; -1 for one longer than ``_HEADER_ROOM`` bytes."""
        if len(header) > _HEADER_ROOM:
            return -1
        code = self.codes.get(header)
        if code is None:
            code = len(self.codes)
            if code == len(self.lengths):
                self.rows = np.concatenate([self.rows, np.zeros_like(self.rows)])
                self.lengths = np.concatenate([self.lengths, np.zeros_like(self.lengths)])
            self.rows[code, _HEADER_ROOM - len(header) :] = np.frombuffer(header, np.uint8)
            self.lengths[code] = len(header)
            self.codes[header] = code
        return code

    def root_messages(
        self, headers: list[bytes], numbers: np.ndarray, merkles: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The messages of tensor roots (``headers[i]``, then the Merkle root of the array
        numbered ``numbers[i]``) laid out in one buffer, as ``_layout`` gives them: each in a
        slot of 96 bytes, its header right-aligned in the first 64."""
        count = len(headers)
        found = map(self.codes.get, headers, itertools.repeat(-1, count))
        codes = np.fromiter(found, dtype=np.int64, count=count)
        missing = np.flatnonzero(codes < 0)
        if missing.size:
            codes[missing] = [self.code(headers[i]) for i in missing.tolist()]
            if (codes < 0).any():  # a header of more than six axes
                return _layout(headers, np.ones(count, dtype=np.int64), numbers, merkles)
        lengths = self.lengths[codes]
        buffer = np.empty((count, _HEADER_ROOM + 32), dtype=np.uint8)
        buffer[:, :_HEADER_ROOM] = self.rows[codes]
        buffer[:, _HEADER_ROOM:] = merkles[numbers]
        offsets = (_HEADER_ROOM + 32) * np.arange(count, dtype=np.int64) + _HEADER_ROOM
        return buffer.reshape(-1), offsets - lengths, lengths + 32


@dataclass
class _Batch:
    """Where the Merkle roots of arrays first seen in closed steps go once hashed (the
    arrays themselves are held by the ``Job`` s that hash them until hashed, not here).

    ``merkles`` holds (or its parts give, in order) the Merkle root of the array numbered
    ``numbers[i]`` at ``i``; ``shared[i]``
    numbers a ``reshape`` output over its input's memory, whose Merkle root is that of the
    array numbered ``sources[i]``.
    """

    numbers: list[int]
    shared: list[int]
    sources: list[int]
    merkles: _Merkles
    nbytes: int = 0  # hashed


@dataclass
class _Step:
    """A closed step's records: record ``i`` is ``ops[i]`` with ``attributes[i]``, encoded up
    to its first root as ``prefixes[i]``; the ``counts[i]`` roots that follow its prefix are
    those of the arrays numbered next in ``slots`` (its inputs, then its output). A STATE
    record has one slot, the number its state root is kept under: ``states`` pairs each
    STATE record's position with the numbers of its arrays, whose roots' Merkle root it is."""

    is_distance: bool
    ops: list[Op]
    attributes: list[tuple[Attribute, ...]]
    prefixes: list[bytes]
    counts: np.ndarray
    slots: np.ndarray
    states: list[tuple[int, np.ndarray]]


def _getter(positions: Sequence[int]) -> Callable[[Sequence[Any]], list[Any]]:
    """A function giving the items of a sequence at ``positions``, as a list."""
    if not positions:
        return lambda values: []
    if len(positions) == 1:
        (position,) = positions
        return lambda values: [values[position]]
    get = operator.itemgetter(*positions)
    return lambda values: list(get(values))


def template_program(
    classes: Sequence[int],
    firsts: Sequence[int],
    offsets: Sequence[int],
    hashed: int,
    arrays: int,
    checked: Sequence[int],
    dims: Sequence[int],
) -> np.ndarray:
    """A step template's checks packed as one int64 array for ``Kernels.template_numbers``:
    ``[size, distinct, hashed, arrays, count, at(classes), at(firsts), at(offsets),
    at(checked), at(dims), len(dims)]``, then ``classes`` (per position: its class),
    ``firsts`` (per class: its first position), ``offsets`` (per class: its new number's
    offset from the step's first, -1 for a class known before the step), ``checked`` (the
    positions of the arrays to hash, then of the views, then of the views' inputs: ``count``
    of them, ``hashed`` and ``arrays`` marking where the first two end) and ``dims`` (the
    checked arrays' shapes, per array its axis count, then its axes)."""
    head = 11
    parts = [classes, firsts, offsets, checked, dims]
    starts = np.cumsum([head, *map(len, parts)])[:-1].tolist()
    header = [len(classes), len(firsts), hashed, arrays, len(checked), *starts, len(dims)]
    return np.asarray([*header, *[v for part in parts for v in part]], dtype=np.int64)


@dataclass
class _Template:
    """How the arrays of a step that makes a given sequence of tracer calls are numbered,
    learnt from a step numbered call by call, so that a later step making the same calls
    over arrays of the same shapes and the same aliasing is numbered in one pass
    (``Tracer._apply``). Positions are those of the step's registers, every call's arrays
    in call order; the positions holding one array form a class (classes in the order of
    their first positions); new numbers are counted from the step's first (``offset``)."""

    size: int  # positions
    program: np.ndarray  # the checks, for ``Kernels.template_numbers`` (``template_program``)
    headers: list[bytes]  # the shape headers of the new numbers (a state root's: empty)
    checked: Callable[[Sequence[Any]], list[Any]]  # the arrays to hash, views, their inputs
    hashed: int  # how many of those are arrays to hash, in number order
    arrays: int  # and arrays to hash or views (reshapes over their input's bytes)
    fresh_offsets: np.ndarray
    fresh_sizes: list[int]  # the bytes of each array to hash
    fresh_bytes: int
    view_offsets: np.ndarray
    view_sources: np.ndarray  # the position of each view's input
    slot_positions: np.ndarray  # per slot: the position whose number it is (0 for a state)
    state_slots: np.ndarray  # the slots of STATE records, and their numbers' offsets
    state_offsets: np.ndarray
    states: list[tuple[int, np.ndarray]]  # per STATE record: its index, its arrays' positions


# What a tracer call of a step is, for ``_Template``: a ``ChainPlan`` or ``OpSequence`` for
# their records; for one record, its input count, -1 for a reshape of one input (its output
# may lie over the input); for a STATE record, -2 - the count of its arrays.
_Call = int | ChainPlan | OpSequence
# The methods whose numbering ``_Template`` reproduces: a tracer that overrides any of them
# numbers every call as it comes.
_NUMBERING = (
    "record",
    "record_chain",
    "record_chains",
    "record_sequence",
    "record_state",
    "end_step",
    "pin",
    "_number",
    "_view_number",
    "_over",
    "_values",
)
# Templates kept, shared by the tracers of a process (they name positions, not arrays): per
# sequence of calls, the latest two learnt.
_TEMPLATES = 64
_TEMPLATES_BY_CALLS: dict[tuple[_Call, ...], list[_Template]] = {}


class Tracer:
    """Collects op records into a ``SegmentTrace``; tensor roots are computed in batches.

    Every distinct array an op reads or writes gets a number the first time the tracer
    sees it in a step (arrays are remembered by identity, and held until hashed or the
    step closes, so an identity cannot be reused meanwhile; the state kept for the next
    step keeps its numbers); a record is kept as its prefix (op code, attributes, input
    count: encoded once per distinct site) and the numbers of its arrays, appended to the
    step's flat list of them. Closed steps' new arrays are hashed in groups: on a hashing
    thread with the engine's compiled trees (the next steps compute meanwhile), or with
    hashlib where there is no engine. A ``reshape`` whose output lies over its input's
    memory has its input's bytes, so it takes its input's Merkle root (only the shape
    header of its root differs) and is not hashed again. ``trace_root`` waits for the
    hashing, lays every record's message out in one buffer with array operations and
    hashes them in one call, without building record objects; ``segment`` builds the
    ``OpRecord`` objects for whoever reads the records. The roots are the ones
    ``agents.commitment.tensor_root`` and ``agents.exact.trace`` define. ``pin`` keeps the
    root of a long-lived array (a dataset) for the tracer's lifetime. ``hashed_bytes``
    counts the bytes of the tensors handed over to hashing so far.
    """

    def __init__(self, kernels: Kernels) -> None:
        self.kernels = kernels
        self._segment = SegmentTrace()
        self._headers: list[bytes] = []  # per array number: its shape header
        self._header_rows = _HeaderRows()
        # Per array number: its root, its Merkle root (``_merkle_table``), both as 32-byte
        # rows, and whether its root is known yet.
        self._table = np.zeros((0, 32), dtype=np.uint8)
        self._merkle_table = np.zeros((0, 32), dtype=np.uint8)
        self._known_roots = np.zeros(0, dtype=bool)
        self._known: dict[int, int] = {}  # identity -> number
        self._pinned: dict[int, int] = {}
        self._pinned_arrays: list[Array] = []  # held, as the kept state is
        self._kept: list[Array] = []
        # The open step, as a ``_Step`` holds it; arrays first seen in it are held by the
        # next group to hash, or by ``_held`` once handed over before the step closes.
        self._ops: list[Op] = []
        self._attributes: list[tuple[Attribute, ...]] = []
        self._prefixes: list[bytes] = []
        self._counts: list[int] = []
        self._slots: list[int] = []
        self._states: list[tuple[int, np.ndarray]] = []
        self._held: list[Array] = []
        self._fresh_numbers: list[int] = []
        self._fresh: list[np.ndarray] = []
        self._fresh_addresses: list[int] = []  # where each of ``_fresh`` starts in memory
        self._fresh_sizes: list[int] = []  # and its bytes
        self._fresh_bytes = 0
        # Bytes of the tensors handed over to hashing so far: what the trace costs to commit
        # (a reshape over its input's memory and pinned arrays are not hashed here).
        self.hashed_bytes = 0
        self._address = kernels.address
        self._shared: list[int] = []
        self._shared_arrays: list[np.ndarray] = []
        self._sources: list[int] = []
        self._closed: list[_Step] = []
        self._built = 0  # closed steps in ``_segment``
        self._rooted = 0  # closed steps in ``_step_roots`` / ``_distance_root``
        self._step_roots: list[bytes] = []
        self._distance_root: bytes | None = None
        self._batches: list[_Batch] = []
        self._outstanding_bytes = 0  # of the batches not collected
        self._in_distance = False
        self._engine = engine()
        self._threads: HashingThreads | None = None
        self._pending = False  # jobs submitted to the hashing threads, not seen hashed
        # The open step's tracer calls and their arrays, numbered when it closes: in one pass
        # where a step made the same calls before (``_Template``), else call by call, as
        # they came. A tracer that overrides how calls are numbered numbers each at once.
        self._templated = all(getattr(type(self), n) is getattr(Tracer, n) for n in _NUMBERING)
        self._defer = self._templated
        self._calls: list[_Call] = []
        self._extras: list[Any] = []  # per call: a chain's output block, a STATE record's index
        self._registers: list[Array] = []
        self._unlearnt: set[tuple[_Call, ...]] = set()  # calls no template was learnt from

    def _values(self, array: Array) -> np.ndarray:
        # The CPU path's arrays are contiguous float32 numpy arrays already.
        if type(array) is np.ndarray and array.dtype is _F32 and array.flags.c_contiguous:
            return array
        values = self.kernels.to_numpy(array)
        return values if values.flags.c_contiguous else values.copy(order="C")

    def root(self, array: Array) -> bytes:
        """The tensor root of ``array``, computed now."""
        return tensor_root(self.kernels.to_numpy(array))

    def pin(self, array: Array) -> bytes:
        """Remember ``array``'s root for the tracer's lifetime and return it."""
        self._flush()
        values = self.kernels.to_numpy(array)
        number = len(self._headers)
        self._headers.append(_header(values.shape))
        self._grow()
        merkle = self._merkle(values)
        self._merkle_table[number] = np.frombuffer(merkle, dtype=np.uint8)
        root = root_from_merkle(values.shape, merkle)
        self._table[number] = np.frombuffer(root, dtype=np.uint8)
        self._known_roots[number] = True
        self._pinned[id(array)] = self._known[id(array)] = number
        self._pinned_arrays.append(array)
        return root

    def _merkle(self, values: np.ndarray) -> bytes:
        flat = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
        if self._engine is None:
            return merkle_root(leaf_hashes(values, fast=False), fast=False)
        return self._engine.leaves_root(flat)

    def _number(self, array: Array) -> int:
        """The number of ``array``: the one it has if known, else the next one (its values
        wait in the next group to hash)."""
        number = self._known.get(id(array))
        if number is not None:
            return number
        values = array
        if not (type(values) is np.ndarray and values.dtype is _F32 and values.flags.c_contiguous):
            values = self._values(array)
            self._held.append(array)  # its identity stays taken while the step is open
        number = len(self._headers)
        self._headers.append(_header(values.shape))
        self._known[id(array)] = number
        self._fresh_numbers.append(number)
        self._fresh.append(values)
        self._fresh_addresses.append(self._address(values))
        self._fresh_sizes.append(values.nbytes)
        self._fresh_bytes += values.nbytes
        return number

    def _view_number(self, output: Array, source: Array, source_number: int) -> int:
        """The number of ``output`` (not known), which holds ``source``'s values in another
        shape: it shares ``source``'s Merkle root when it lies over the same bytes."""
        values = self._values(output)
        if not self._over(values, source):
            return self._number(output)
        if values is not output:
            self._held.append(output)
        number = len(self._headers)
        self._headers.append(_header(values.shape))
        self._known[id(output)] = number
        self._shared.append(number)
        self._shared_arrays.append(values)
        self._sources.append(source_number)
        return number

    def record(
        self,
        op: Op,
        attributes: Sequence[Attribute],
        inputs: Sequence[Array],
        output: Array,
        scalars: Mapping[int, int] | None = None,
    ) -> None:
        """Append the record of one executed operation. ``scalars`` maps the position of an
        attribute that is a ``StepScalar`` to its index (a plain tracer needs none of it)."""
        if self._defer:
            self._calls.append(-1 if op is _RESHAPE and len(inputs) == 1 else len(inputs))
            self._extras.append(None)
            self._registers += inputs
            self._registers.append(output)
        else:
            self._number_record(op is _RESHAPE and len(inputs) == 1, inputs, output)
        attributes = tuple(attributes)
        self._prefixes.append(_prefix(op, attributes, len(inputs)))
        self._ops.append(op)
        self._attributes.append(attributes)
        self._counts.append(len(inputs) + 1)

    def _number_record(self, view: bool, inputs: Sequence[Array], output: Array) -> None:
        """The slots of one record (``view``: a reshape of one input)."""
        known = self._known
        slots = self._slots
        for value in inputs:
            number = known.get(id(value))
            slots.append(number if number is not None else self._number(value))
        number = known.get(id(output))
        if number is None:
            if view:
                number = self._view_number(output, inputs[0], slots[-1])
            else:
                number = self._number(output)
        slots.append(number)

    def record_chain(
        self,
        plan: ChainPlan,
        imms: np.ndarray,
        registers: list[Array],
        rank: int = 1,
        block: np.ndarray | None = None,
    ) -> None:
        """Append the records of ``plan`` run with ``imms`` (its full shape of ``rank`` axes):
        ``registers`` are its inputs, then its steps' outputs (new C-contiguous float32 numpy
        arrays; with ``block``, lying one after another in that array's memory, from its
        start). The records ``record`` gives one by one (only the tracer's own numbering of
        arrays may differ)."""
        prefixes, attributes = plan.records(imms, rank)
        if self._defer:
            self._calls.append(plan)
            self._extras.append(block)
            self._registers += registers
        else:
            self._number_chain(plan, registers, block)
        self._prefixes += prefixes
        self._ops += plan.ops
        self._attributes += attributes
        self._counts += plan.counts

    def record_chains(
        self, plan: ChainPlan, imms: np.ndarray, groups: Sequence[list[Array]]
    ) -> None:
        """``record_chain`` of a plan whose registers are all full, with ``imms``, over each
        of ``groups`` (its registers, each step's output a new C-contiguous float32 numpy
        array) in turn, in one call."""
        prefixes, attributes = plan.records(imms)
        count = len(groups)
        if self._defer:
            self._calls += [plan] * count
            self._extras += [None] * count
            for registers in groups:
                self._registers += registers
        else:
            for registers in groups:
                self._number_chain(plan, registers, None)
        self._prefixes += prefixes * count
        self._ops += plan.ops * count
        self._attributes += attributes * count
        self._counts += plan.counts * count

    def _number_chain(
        self, plan: ChainPlan, registers: Sequence[Array], block: np.ndarray | None
    ) -> None:
        """The slots of ``record_chain``'s records."""
        known = self._known
        inputs = plan.inputs
        numbers = []
        for value in registers[:inputs]:
            number = known.get(id(value))
            numbers.append(number if number is not None else self._number(value))
        outputs = registers[inputs:]
        first = len(self._headers)
        fresh = range(first, first + len(outputs))
        if plan.full:
            self._headers += [_header(outputs[0].shape)] * len(outputs)
            size = outputs[0].nbytes
            self._fresh_bytes += size * len(outputs)
            self._fresh_sizes += [size] * len(outputs)
            if block is not None:
                start = self._address(block)
                self._fresh_addresses += [start + size * i for i in range(len(outputs))]
        else:
            self._headers += [_header(value.shape) for value in outputs]
            sizes = [value.nbytes for value in outputs]
            self._fresh_bytes += sum(sizes)
            self._fresh_sizes += sizes
            if block is not None:
                start = self._address(block)
                self._fresh_addresses += itertools.accumulate(sizes[:-1], initial=start)
        if block is None:
            self._fresh_addresses += map(self._address, outputs)
        known.update(zip(map(id, outputs), fresh, strict=True))
        self._fresh_numbers += fresh
        self._fresh += outputs
        numbers += fresh
        self._slots += plan.pick(numbers)

    def record_sequence(self, plan: OpSequence, registers: Sequence[Array]) -> None:
        """Append the records of ``plan``: ``registers`` are its inputs, then its steps'
        outputs. The records ``record`` gives one by one (views included)."""
        if self._defer:
            self._calls.append(plan)
            self._extras.append(None)
            self._registers += registers
        else:
            self._number_sequence(plan, registers)
        prefixes, attributes = plan.records()
        self._prefixes += prefixes
        self._ops += plan.ops
        self._attributes += attributes
        self._counts += plan.counts

    def _number_sequence(self, plan: OpSequence, registers: Sequence[Array]) -> None:
        """The slots of ``record_sequence``'s records."""
        known = self._known
        numbers = []
        for value in registers[: plan.inputs]:
            number = known.get(id(value))
            numbers.append(number if number is not None else self._number(value))
        for value, source in zip(registers[plan.inputs :], plan.sources, strict=True):
            number = known.get(id(value))
            if number is None:
                if source >= 0:
                    number = self._view_number(value, registers[source], numbers[source])
                else:
                    number = self._number(value)
            numbers.append(number)
        self._slots += plan.pick(numbers)

    def record_state(self, arrays: Sequence[Array]) -> None:
        """Append the ``STATE`` record closing a step: its output is the state root over the
        state's tensors in name order; the record lists no inputs (docs/exact.md, "Traces")."""
        if self._defer:
            self._calls.append(-2 - len(arrays))
            self._extras.append(len(self._ops))
            self._registers += arrays
        else:
            self._number_state(len(self._ops), arrays)
        self._prefixes.append(_STATE_PREFIX)
        self._ops.append(_STATE)
        self._attributes.append(())
        self._counts.append(1)

    def _number_state(self, index: int, arrays: Sequence[Array]) -> None:
        """The slot of the STATE record ``index`` of the step, over ``arrays``."""
        numbers = np.asarray([self._number(value) for value in arrays], dtype=np.int64)
        state = len(self._headers)
        self._headers.append(b"")  # a number for the state root; nothing to hash
        self._states.append((index, numbers))
        self._slots.append(state)

    def _replay(self) -> None:
        """Number the open step's calls so far one by one, as each would have been as it
        came; the rest of the step is numbered as it comes."""
        registers = self._registers
        at = 0
        for call, extra in zip(self._calls, self._extras, strict=True):
            if type(call) is int:
                if call >= -1:  # one record (-1: a reshape of one input)
                    count = 1 if call == -1 else call  # a reshape has one input
                    self._number_record(
                        call == -1, registers[at : at + count], registers[at + count]
                    )
                    at += count + 1
                else:
                    count = -2 - call
                    self._number_state(extra, registers[at : at + count])
                    at += count
                continue
            plan = cast("ChainPlan | OpSequence", call)
            count = plan.inputs + len(plan.ops)
            if type(plan) is ChainPlan:
                self._number_chain(plan, registers[at : at + count], extra)
            else:
                self._number_sequence(cast("OpSequence", plan), registers[at : at + count])
            at += count
        self._defer = False

    def _flush(self) -> None:
        """Number the open step's calls so far, now (something reads the numbering)."""
        if self._defer and self._calls:
            self._replay()
            self._calls, self._extras, self._registers = [], [], []

    def _number_step(self, keep: Sequence[Array]) -> list[int] | None:
        """Number the closing step's calls: in one pass with the template of a step that made
        the same calls, where it applies (returning the numbers of ``keep``, as ``_apply``);
        else one by one, learning a template from them (``None``: ``_known`` holds them)."""
        calls = tuple(self._calls)
        templates = _TEMPLATES_BY_CALLS.get(calls, [])
        for template in templates:
            kept = self._apply(template, keep)
            if kept is not None:
                return kept
        first, fresh, shared = len(self._headers), len(self._fresh), len(self._shared)
        self._replay()
        if calls in self._unlearnt:
            return None
        learnt = self._learn(first, fresh, shared)
        if learnt is None:  # numbered one by one from now on, by this tracer
            if len(self._unlearnt) >= _TEMPLATES:
                self._unlearnt.clear()
            self._unlearnt.add(calls)
            return None
        if calls not in _TEMPLATES_BY_CALLS and len(_TEMPLATES_BY_CALLS) >= _TEMPLATES:
            _TEMPLATES_BY_CALLS.clear()
        # The latest first, and the one before it (a first step, whose state was not known
        # yet, makes the same calls as the steps after it, numbered differently).
        _TEMPLATES_BY_CALLS[calls] = [learnt, *templates[:1]]
        return None

    def _learn(self, first: int, fresh: int, shared: int) -> _Template | None:
        """The template of the step just numbered one by one (its first new number
        ``first``; its arrays to hash from ``_fresh[fresh]``, its views from
        ``_shared[shared]``), or ``None`` where one would not give the same numbers."""
        if self._held:
            return None  # arrays that were not C-contiguous float32: numbered one by one
        registers = self._registers
        ids = list(map(id, registers))
        size = len(ids)
        numbers = np.fromiter(map(self._known.__getitem__, ids), dtype=np.int64, count=size)
        if len(set(ids)) != len(set(numbers.tolist())):
            return None
        firsts = dict(zip(reversed(ids), range(size - 1, -1, -1), strict=True))
        pattern = list(map(firsts.__getitem__, ids))
        new = numbers >= first
        offset = np.where(new, numbers - first, 0)
        position: dict[int, int] = {}
        for p, number in enumerate(numbers.tolist()):
            position.setdefault(number, p)
        fresh_numbers = self._fresh_numbers[fresh:]
        view_numbers = self._shared[shared:]
        fresh_positions = [position.get(n, -1) for n in fresh_numbers]
        view_positions = [position.get(n, -1) for n in view_numbers]
        view_sources = [position.get(n, -1) for n in self._sources[shared:]]
        if min([*fresh_positions, *view_positions, *view_sources, 0]) < 0:
            return None
        arrays = [*self._fresh[fresh:], *self._shared_arrays[shared:]]
        if any(
            a is not registers[p]
            for a, p in zip(arrays, fresh_positions + view_positions, strict=True)
        ):
            return None
        slots = np.asarray(self._slots, dtype=np.int64)
        slot_positions = np.array([position.get(n, -1) for n in slots.tolist()], dtype=np.int64)
        state_slots = np.flatnonzero(slot_positions < 0)
        state_offsets = slots[state_slots] - first
        count = len(self._headers) - first
        offsets = [n - first for n in fresh_numbers + view_numbers] + state_offsets.tolist()
        if sorted(offsets) != list(range(count)):
            return None  # a new number that is neither an array to hash, a view nor a state
        if not set(offset[new].tolist()) <= {n - first for n in fresh_numbers + view_numbers}:
            return None
        states = []
        for index, state in self._states:
            where = [position.get(n, -1) for n in state.tolist()]
            if min([*where, 0]) < 0:
                return None
            states.append((index, np.asarray(where, dtype=np.int64)))
        others = slot_positions >= 0
        if not (slots[others] == numbers[slot_positions[others]]).all():
            return None
        slot_positions[state_slots] = 0
        leaders = sorted(set(pattern))  # each class's first position, in order
        class_of = dict(zip(leaders, range(len(leaders)), strict=True))
        checked = fresh_positions + view_positions + view_sources
        shapes = [registers[p].shape for p in checked]
        program = template_program(
            [class_of[p] for p in pattern],
            leaders,
            [int(offset[p]) if new[p] else -1 for p in leaders],
            len(fresh_positions),
            len(fresh_positions) + len(view_positions),
            checked,
            [d for shape in shapes for d in (len(shape), *shape)],
        )
        return _Template(
            size,
            program,
            self._headers[first:],
            _getter(checked),
            len(fresh_positions),
            len(fresh_positions) + len(view_positions),
            np.asarray(fresh_numbers, dtype=np.int64) - first,
            self._fresh_sizes[fresh:],
            sum(self._fresh_sizes[fresh:]),
            np.asarray(view_numbers, dtype=np.int64) - first,
            np.asarray(view_sources, dtype=np.int64),
            slot_positions,
            state_slots,
            state_offsets,
            states,
        )

    def _apply(self, template: _Template, keep: Sequence[Array] = ()) -> list[int] | None:
        """Number the closing step's calls with ``template`` where it gives the numbers
        they would get one by one (``Kernels.template_numbers``: the same arrays at the same
        positions, those known before the step known, the new ones C-contiguous float32
        numpy arrays of the same shapes, the views still over their inputs' bytes), and
        return the numbers of ``keep`` (-1: neither among the step's arrays nor known).
        ``None``, numbering nothing, where not. The step's arrays are not remembered in
        ``_known`` (the step closes: only ``keep`` is asked for)."""
        registers = self._registers
        size = template.size
        if len(registers) != size:
            return None
        known = self._known
        table = np.empty((2, len(known)), dtype=np.int64)
        table[0] = np.fromiter(known, dtype=np.int64, count=len(known))
        table[1] = np.fromiter(known.values(), dtype=np.int64, count=len(known))
        first = len(self._headers)
        out = self.kernels.template_numbers(
            template.program,
            registers,
            np.fromiter(map(id, registers), dtype=np.int64, count=size),
            table,
            np.fromiter(map(id, keep), dtype=np.int64, count=len(keep)),
            first,
        )
        if out is None:
            return None
        hashed, arrays = template.hashed, template.arrays
        checked = template.checked(registers)
        count = len(checked)
        numbers = out[:size]
        self._headers += template.headers
        self._fresh_numbers += (template.fresh_offsets + first).tolist()
        self._fresh += checked[:hashed]
        self._fresh_addresses += out[size : size + hashed].tolist()
        self._fresh_sizes += template.fresh_sizes
        self._fresh_bytes += template.fresh_bytes
        self._shared += (template.view_offsets + first).tolist()
        self._shared_arrays += checked[hashed:arrays]
        self._sources += numbers[template.view_sources].tolist()
        slots = numbers[template.slot_positions]
        slots[template.state_slots] = template.state_offsets + first
        self._slots = cast("list[int]", slots)  # end_step takes it as an array
        self._states = [(index, numbers[where]) for index, where in template.states]
        self._defer = False
        kept: list[int] = out[size + count :].tolist()
        return kept

    def end_step(self, keep: Sequence[Array] = ()) -> None:
        """Close the current step (or the distance computation) and start hashing it once
        enough new bytes are waiting.

        Arrays in ``keep`` (the state the next step starts from) stay known.
        """
        kept_numbers = self._number_step(keep) if self._defer else None
        self._calls, self._extras, self._registers = [], [], []
        self._defer = self._templated
        self._closed.append(
            _Step(
                self._in_distance,
                self._ops,
                self._attributes,
                self._prefixes,
                np.asarray(self._counts, dtype=np.int64),
                np.asarray(self._slots, dtype=np.int64),
                self._states,
            )
        )
        self._ops, self._attributes, self._prefixes = [], [], []
        self._counts, self._slots, self._states = [], [], []
        self._held = []
        self._in_distance = False
        old = self._known
        known = dict(self._pinned)
        kept = []
        if kept_numbers is None:
            kept_numbers = [old.get(id(array), -1) for array in keep]
        for array, number in zip(keep, kept_numbers, strict=True):
            if number >= 0:
                known[id(array)] = number
                kept.append(array)
        self._known, self._kept = known, kept
        if self._pending:  # the arrays of parts hashed since let go
            assert self._threads is not None
            self._pending = self._threads.reap()
        if self._fresh_bytes >= _GROUP_BYTES:
            self._hand_over()

    def _over(self, values: np.ndarray, source: Array) -> bool:
        """Whether ``values`` lies over ``source``'s bytes (the same bytes, the same place)."""
        origin = self._values(source)
        return (
            values.nbytes == origin.nbytes
            and values.flags.c_contiguous
            and origin.flags.c_contiguous
            and self._address(values) == self._address(origin)
        )

    def _hand_over(self, waiting: bool = False) -> None:
        """Start hashing the arrays first seen since the last hand-over (``waiting``: the
        caller waits for them, and hashes a part itself)."""
        if not self._fresh and not self._shared:
            return
        merkles = self._hash(self._fresh, self._fresh_addresses, self._fresh_sizes, waiting)
        batch = _Batch(self._fresh_numbers, self._shared, self._sources, merkles, self._fresh_bytes)
        self._batches.append(batch)
        self._outstanding_bytes += self._fresh_bytes
        self.hashed_bytes += self._fresh_bytes
        self._fresh_numbers, self._fresh, self._fresh_bytes = [], [], 0
        self._fresh_addresses, self._fresh_sizes = [], []
        self._shared, self._shared_arrays, self._sources = [], [], []
        # Groups of _GROUP_BYTES: one collected once _OUTSTANDING wait; smaller batches many
        # at once (their roots in one call).
        if len(self._batches) > _OUTSTANDING and (
            self._outstanding_bytes > _OUTSTANDING * _GROUP_BYTES
            or len(self._batches) > _SMALL_BATCHES
        ):
            self._collect(len(self._batches) - _OUTSTANDING)

    def begin_distance(self) -> None:
        """Records from here until ``end_step`` form the distance computation."""
        if self._ops:
            raise ExactError("begin_distance called in the middle of a step")
        self._in_distance = True

    def _settle(self) -> None:
        """Every closed step's arrays hashed and their roots known."""
        self._flush()
        if self._ops:  # the open step still names its arrays by identity
            self._held += [*self._fresh, *self._shared_arrays]
        self._hand_over(waiting=True)
        self._collect(len(self._batches))

    @property
    def segment(self) -> SegmentTrace:
        """The trace of every closed step, once all their roots are in."""
        self.step_roots()  # every root, state roots included
        for step in self._closed[self._built :]:
            built = StepTrace(self._materialize(step))
            if step.is_distance:
                self._segment.distance = built
            else:
                self._segment.steps.append(built)
        self._built = len(self._closed)
        return self._segment

    def step_roots(self) -> list[bytes]:
        """The root of every closed step (the distance computation's excluded)."""
        self._settle()
        todo = self._closed[self._rooted :]
        for step, root in zip(todo, self._steps_roots(todo), strict=True):
            if step.is_distance:
                self._distance_root = root
            else:
                self._step_roots.append(root)
        self._rooted = len(self._closed)
        return list(self._step_roots)

    def trace_root(self) -> bytes:
        """The segment trace root of every closed step: ``segment.root()``, computed
        without building the records."""
        leaves = self.step_roots()
        if self._distance_root is not None:
            leaves.append(self._distance_root)
        return merkle_root(leaves)

    def _steps_roots(self, steps: list[_Step]) -> list[bytes]:
        """The root of each of ``steps`` (their arrays' roots known): the state roots of their
        STATE records in one call; then every record's message (its prefix, then the roots
        of its slots) laid out in one buffer, hashed in one call; then the steps' Merkle
        trees in one call."""
        self._grow()
        table = self._table
        states = [(step, record, arrays) for step in steps for record, arrays in step.states]
        if states:
            numbers = [arrays for _, _, arrays in states]
            roots = merkle_roots(table[np.concatenate(numbers)], list(map(len, numbers)))
            for (step, record, _), root in zip(states, roots, strict=True):
                # A STATE record's one slot comes after the slots of the records before it.
                number = int(step.slots[int(step.counts[:record].sum())])
                table[number] = root
                self._known_roots[number] = True
        records = [len(step.ops) for step in steps]
        if not sum(records):
            return [merkle_root([]) for _ in steps]
        prefixes = list(itertools.chain.from_iterable(step.prefixes for step in steps))
        counts = np.concatenate([step.counts for step in steps])
        slots = np.concatenate([step.slots for step in steps])
        digests = self._digests(*_layout(prefixes, counts, slots, table))
        return [root.tobytes() for root in merkle_roots(digests, records)]

    def _hash(
        self, arrays: list[np.ndarray], starts: list[int], sizes: list[int], waiting: bool = False
    ) -> _Merkles:
        """The Merkle roots of ``arrays`` (an ``(n, 32)`` array), or consecutive ``Job`` s
        of them submitted to the hashing threads (one per thread, and parts of about
        _CUT_BYTES where there are more bytes); ``starts`` their addresses, ``sizes`` their
        bytes. With ``waiting`` (the caller waits for the roots), one part more, left to the
        caller (its ``Job.roots`` hashes it)."""
        if not arrays:
            return np.empty((0, 32), dtype=np.uint8)
        if self._engine is None:
            return np.array(
                [np.frombuffer(merkle_root(leaf_hashes(v), fast=False), np.uint8) for v in arrays]
            )
        count = len(arrays)
        addresses = np.asarray(starts, dtype=np.int64)
        lengths = np.asarray(sizes, dtype=np.int64)
        ends = np.cumsum(lengths)
        total = int(ends[-1])
        threads = _HASHING_THREADS + (1 if waiting else 0)
        spread = min(threads, total // _PART_BYTES)
        parts = max(1, min(max(spread, total // _CUT_BYTES), count))
        # Part k ends after the first array at which k + 1 parts' share of the bytes is in.
        cuts = np.searchsorted(ends, total * np.arange(1, parts) // parts, side="left") + 1
        bounds = [0, *sorted({int(c) for c in cuts if 0 < c < count}), count]
        pool = self._threads
        if pool is None:  # (an engine means numba is here)
            from agents.commitment import threads as native

            pool = self._threads = native.hashing_threads(self._engine, _HASHING_THREADS)
        pieces = [
            pool.job(addresses[a:b], lengths[a:b], arrays[a:b])
            for a, b in itertools.pairwise(bounds)
        ]
        for part in pieces[:-1] if waiting and len(pieces) > 1 else pieces:
            pool.submit(part)
        self._pending = True
        return pieces

    def _grow(self) -> None:
        """Room for the Merkle root and root of every array numbered so far."""
        have = len(self._table)
        if have < len(self._headers):
            size = max(len(self._headers), 2 * have)
            table = np.zeros((size, 32), dtype=np.uint8)
            table[:have] = self._table
            merkles = np.zeros((size, 32), dtype=np.uint8)
            merkles[:have] = self._merkle_table
            known = np.zeros(size, dtype=bool)
            known[:have] = self._known_roots
            self._table, self._merkle_table, self._known_roots = table, merkles, known

    def _collect(self, count: int) -> None:
        """The roots of the first ``count`` batches' arrays, once hashed: each its shape
        header and Merkle root, all hashed in one call."""
        self._grow()
        headers, merkles = self._headers, self._merkle_table
        batches = self._batches[:count]
        # From the last part of the last batch back: the parts no hashing thread has started
        # on yet (and the one left to this thread) are hashed here, while the threads go on
        # from the first.
        parts = [p for b in batches if isinstance(b.merkles, list) for p in b.merkles]
        roots = {part: part.roots() for part in reversed(parts)}
        collected = []
        for batch in batches:
            hashed = batch.merkles
            if isinstance(hashed, list):
                hashed = np.concatenate([roots[part] for part in hashed])
            fresh = np.asarray(batch.numbers, dtype=np.int64)
            merkles[fresh] = hashed
            shared = np.asarray(batch.shared, dtype=np.int64)
            sources = np.asarray(batch.sources, dtype=np.int64)
            # A view's input may be a view of this batch (numbered before it): those views
            # take their inputs' Merkle roots one by one, in order, after the others.
            chained = np.isin(sources, shared)
            merkles[shared[~chained]] = merkles[sources[~chained]]
            pairs = zip(shared[chained].tolist(), sources[chained].tolist(), strict=True)
            for number, source in pairs:
                merkles[number] = merkles[source]
            collected += [fresh, shared]
            self._outstanding_bytes -= batch.nbytes
        del self._batches[:count]
        numbers = np.concatenate(collected) if collected else np.zeros(0, dtype=np.int64)
        if numbers.size:
            prefixes = list(map(headers.__getitem__, numbers.tolist()))
            messages = self._header_rows.root_messages(prefixes, numbers, merkles)
            self._table[numbers] = self._digests(*messages)
            self._known_roots[numbers] = True

    def _digests(self, buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The ``(n, 32)`` sha256 digests of the messages ``buffer[offsets[i]:][:lengths[i]]``."""
        if self._engine is not None and offsets.size >= FAST_MIN_HASHES:
            return self._engine.hash_messages(buffer, offsets, lengths)
        data = buffer.tobytes()
        digests = [
            hashlib.sha256(data[start : start + length]).digest()
            for start, length in zip(offsets.tolist(), lengths.tolist(), strict=True)
        ]
        return np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, 32)

    def root_of(self, number: int) -> bytes:
        """The root of the array numbered ``number``, once known (a subclass that keeps
        tensors by root reads them here after ``_collect``)."""
        assert self._known_roots[number], "the array's root is not known yet"
        return bytes(self._table[number])

    def _materialize(self, step: _Step) -> list[OpRecord]:
        assert self._known_roots[step.slots].all(), "a record refers to an array not hashed"
        table = self._table
        records = []
        first = 0
        for op, attributes, count in zip(
            step.ops, step.attributes, step.counts.tolist(), strict=True
        ):
            numbers = step.slots[first : first + count]
            first += count
            own = [row.tobytes() for row in table[numbers]]
            if op is _STATE:
                records.append(OpRecord(op, attributes, (), own[0]))
            else:
                records.append(OpRecord(op, attributes, tuple(own[:-1]), own[-1]))
        return records


class ExactOps:
    """The exact operations on one path, with input checks and optional tracing."""

    def __init__(self, kernels: Kernels, tracer: Tracer | None = None) -> None:
        self.kernels = kernels
        self.tracer = tracer

    @property
    def untraced(self) -> bool:
        """Whether nothing records op by op (fused kernels may then run whole sequences)."""
        return self.tracer is None

    # --- arrays --------------------------------------------------------------------
    def array(self, values: np.ndarray | Sequence[float]) -> Array:
        """A path array from float32 values (no trace record: an input, not a result)."""
        array = np.asarray(values)
        if array.dtype != np.float32:
            raise ExactError(f"exact arrays are float32, got {array.dtype}")
        return self.kernels.from_numpy(array)

    def to_numpy(self, values: Array) -> np.ndarray:
        """The values as a float32 numpy array."""
        return self.kernels.to_numpy(values)

    def full(self, shape: Sequence[int], value: Scalar) -> Array:
        """A new array filled with ``value`` (op ``FULL``: attributes value, then the shape)."""
        dims = [int(d) for d in shape]
        if any(d < 0 for d in dims):
            raise ExactError(f"full: negative dimension in {dims}")
        imm = np.float32(value)
        out = self.kernels.full(dims, imm)
        self._record(Op.FULL, [imm, *dims], [], out)
        return out

    # --- tracing -------------------------------------------------------------------
    def _record(
        self, op: Op, attributes: Sequence[Attribute], inputs: Sequence[Array], output: Array
    ) -> None:
        if self.tracer is not None:
            self.tracer.record(op, attributes, inputs, output)

    def run_chain(
        self, plan: ChainPlan, inputs: Sequence[Array], imms: np.ndarray
    ) -> list[Array] | None:
        """The registers of ``plan`` (``inputs``, then every step's output) run with the
        float32 immediates ``imms``: one kernel computes every step, one tracer call records
        them, as the ops one by one would. ``None`` where nothing records, or the tracer
        takes records one by one only (a subclass that overrides ``record``), or the inputs'
        shapes are not those of the plan's kinds, or the path has no such kernel: the caller
        then runs the ops one by one."""
        tracer = self.tracer
        if tracer is None or type(tracer).record is not Tracer.record:
            return None
        _check_immediates(imms)
        if len(inputs) != plan.inputs or len(imms) < plan.imms:
            raise ExactError(f"chain: {len(inputs)} inputs and {len(imms)} immediates given")
        if not plan.ops:
            return list(inputs)  # nothing to run or record
        if plan.full:
            shape = _shape(inputs[0])
            for other in inputs[1:]:
                if _shape(other) != shape:
                    return None
            out = self.kernels.elementwise_chain(plan.code, imms, inputs)
            if out is None:
                return None
            # Rows of ``out`` in the inputs' shape (iterating gives views; 0-d ones: scalars).
            steps = out.reshape((len(out), *shape)) if shape else [r.reshape(()) for r in out]
            registers = [*inputs, *steps]
            tracer.record_chain(plan, imms, registers, block=out)
            return registers
        full = next((_shape(v) for v, k in zip(inputs, plan.kinds, strict=False) if k == 0), ())
        if not full:
            return None  # no full input, or a 0-d one
        cols = full[-1]
        rows = math.prod(full[:-1])
        shapes = (full, (*full[:-1], 1), (cols,))
        for value, kind in zip(inputs, plan.kinds, strict=False):
            if _shape(value) != shapes[kind]:
                return None
        if cols == 0 and Op.AMAX in plan.ops:
            return None  # the op one by one refuses it
        sizes = (rows * cols, rows, cols)
        kinds = plan.kinds[plan.inputs :]
        flat = self.kernels.elementwise_chain(
            plan.code, imms, inputs, plan.kind_codes, [sizes[k] for k in kinds], rows, cols
        )
        if flat is None:
            return None
        outputs = []
        start = 0
        for kind in kinds:
            outputs.append(flat[start : start + sizes[kind]].reshape(shapes[kind]))
            start += sizes[kind]
        registers = [*inputs, *outputs]
        tracer.record_chain(plan, imms, registers, len(full), flat)
        return registers

    def run_chains(
        self, plan: ChainPlan, groups: Sequence[Sequence[Array]], imms: np.ndarray
    ) -> list[list[Array]] | None:
        """``run_chain`` of a plan whose registers are all full over each of ``groups`` (its
        inputs) with the same immediates, in one kernel call where the path has one: each
        group's registers, its records made one group after another, as ``run_chain`` one
        group after another makes them. ``None`` where ``run_chain`` would be, or the plan
        has other kinds of registers or no step, or no groups are given."""
        tracer = self.tracer
        if tracer is None or type(tracer).record is not Tracer.record:
            return None
        if not plan.full or not plan.ops or not groups:
            return None
        _check_immediates(imms)
        if len(imms) < plan.imms or any(len(inputs) != plan.inputs for inputs in groups):
            raise ExactError(f"chain: {plan.inputs} inputs per group and {len(imms)} immediates")
        shapes = []
        for inputs in groups:
            shape = _shape(inputs[0])
            for other in inputs[1:]:
                if _shape(other) != shape:
                    return None
            shapes.append(shape)
        block = self.kernels.elementwise_chains(plan.code, imms, groups)
        if block is None:
            return None
        out = []
        start = 0
        for inputs, shape in zip(groups, shapes, strict=True):
            size = math.prod(shape)
            # Each step's values of the group: a C-contiguous piece of its row of the block
            # (iterating the steps' axis gives views; 0-d ones from 1-D rows, not scalars).
            steps = block[:, start : start + size]
            if shape:
                out.append([*inputs, *steps.reshape(len(block), *shape)])
            else:
                out.append([*inputs, *(row.reshape(()) for row in steps)])
            start += size
        if type(tracer).record_chain is Tracer.record_chain:
            tracer.record_chains(plan, imms, out)
        else:
            for registers in out:
                tracer.record_chain(plan, imms, registers)
        return out

    def linear_backward(
        self, dy: Array, x: Array, weight: Array, bias: bool, input_grad: bool
    ) -> tuple[Array, Array | None, Array | None] | None:
        """A linear layer's gradients for ``dy [N, out]``, ``x [N, in]``, ``weight [out, in]``:
        ``dW = matmul_nt(dyᵀ, xᵀ)``, with ``bias`` ``db = reshape(sum(dy, 0), [out])``, with
        ``input_grad`` ``dx = matmul_nt(dy, weightᵀ)``; ``(dW, db, dx)``, the ones not asked
        for ``None``. Recorded in one tracer call, the records those ops give one by one, in
        that order; ``None`` where ``run_chain`` would be, or the shapes are not those: the
        caller then runs the ops one by one."""
        tracer = self._sequences()
        if tracer is None:
            return None
        sd, sx, sw = _shape(dy), _shape(x), _shape(weight)
        if len(sd) != 2 or len(sx) != 2 or sw != (sd[1], sx[1]) or sx[0] != sd[0]:
            return None
        kernels = self.kernels
        dyt = kernels.transpose(dy, [1, 0])
        xt = kernels.transpose(x, [1, 0])
        dw = kernels.matmul_nt(dyt, xt)
        registers = [dy, x, weight, dyt, xt, dw]
        db = dx = None
        if bias:
            total = kernels.sum(dy, 0)
            db = kernels.reshape(total, [sd[1]])
            registers += [total, db]
        if input_grad:
            wt = kernels.transpose(weight, [1, 0])
            dx = kernels.matmul_nt(dy, wt)
            registers += [wt, dx]
        plan = _linear_backward_plan(sd[1] if bias else None, input_grad)
        tracer.record_sequence(plan, registers)
        return dw, db, dx

    def _sequences(self) -> Tracer | None:
        """The tracer, where it takes ``OpSequence`` s (as ``run_chain``'s chains)."""
        tracer = self.tracer
        if tracer is None or type(tracer).record is not Tracer.record:
            return None
        return tracer

    def linear_forward(self, x: Array, weight: Array, bias: Array | None) -> Array | None:
        """``add(matmul_nt(x, weight), bias)`` (the bias when given) for ``x [N, in]``,
        ``weight [out, in]``, ``bias [out]``, recorded in one tracer call; ``None`` as for
        ``linear_backward``."""
        tracer = self._sequences()
        if tracer is None:
            return None
        sx, sw = _shape(x), _shape(weight)
        if len(sx) != 2 or len(sw) != 2 or sx[1] != sw[1]:
            return None
        if bias is not None and _shape(bias) != sw[:1]:
            return None
        y = self.kernels.matmul_nt(x, weight)
        if bias is None:
            tracer.record_sequence(_LINEAR[0], [x, weight, y])
            return y
        out = self.kernels.add(y, bias)
        tracer.record_sequence(_LINEAR[1], [x, weight, bias, y, out])
        return out

    def conv2d_forward(
        self, x: Array, weight: Array, bias: Array, stride: int, padding: int
    ) -> tuple[Array, Array, Array] | None:
        """A convolution of ``x [B, C, H, W]`` with ``weight [O, C, k, k]`` and ``bias [O]``
        (``agents.exact.layers.conv2d_forward``): ``im2col``, the weight flattened to ``[O,
        C·k·k]``, their ``matmul_nt`` plus the bias, back to ``[B, O, OH, OW]``; ``(cols,
        flat weight, y)``, recorded in one tracer call, the records of the ops one by one;
        ``None`` as for ``linear_backward``."""
        tracer = self._sequences()
        if tracer is None or type(stride) is not int or type(padding) is not int:
            return None  # other attributes: refused op by op
        sx, sw = _shape(x), _shape(weight)
        if len(sx) != 4 or len(sw) != 4 or sw[1] != sx[1] or sw[2] != sw[3]:
            return None
        batch, channels, height, width = sx
        out_channels, kernel = sw[0], sw[2]
        if _shape(bias) != (out_channels,) or kernel < 1 or stride < 1 or padding < 0:
            return None
        if height + 2 * padding < kernel or width + 2 * padding < kernel:
            return None
        oh = (height + 2 * padding - kernel) // stride + 1
        ow = (width + 2 * padding - kernel) // stride + 1
        k = self.kernels
        cols = k.im2col(x, kernel, stride, padding)
        flat_weight = k.reshape(weight, [out_channels, channels * kernel * kernel])
        product = k.matmul_nt(cols, flat_weight)
        biased = k.add(product, bias)
        rows = k.reshape(biased, [batch, oh, ow, out_channels])
        y = k.transpose(rows, [0, 3, 1, 2])
        registers = [x, weight, bias, cols, flat_weight, product, biased, rows, y]
        geometry = (batch, channels, height, width, kernel, stride, padding)
        tracer.record_sequence(_conv2d_plan(geometry, out_channels), registers)
        return cols, flat_weight, y

    def conv2d_backward(
        self,
        dy: Array,
        cols: Array,
        flat_weight: Array,
        image: Sequence[int],
        kernel: int,
        stride: int,
        padding: int,
        input_grad: bool,
    ) -> tuple[Array, Array, Array | None] | None:
        """A convolution's gradients (``agents.exact.layers.conv2d_forward``) for ``dy [B, O,
        OH, OW]``, its ``im2col`` columns and its weight flattened to ``[O, C·k·k]``:
        ``(db, dW, dx)`` (``dx`` with ``input_grad``, the image's ``[B, C, H, W]`` gradient),
        recorded in one tracer call, the records of the ops one by one; ``None`` as for
        ``linear_backward``."""
        tracer = self._sequences()
        if tracer is None or not all(type(v) is int for v in (kernel, stride, padding)):
            return None  # other attributes: refused op by op
        sd, sc, sw = _shape(dy), _shape(cols), _shape(flat_weight)
        batch, channels, height, width = (int(d) for d in image)
        if len(sd) != 4 or len(sw) != 2 or sd[:2] != (batch, sw[0]):
            return None
        if sc != (batch * sd[2] * sd[3], sw[1]) or sw[1] != channels * kernel * kernel:
            return None
        out_channels, rows = sw[0], sc[0]
        k = self.kernels
        moved = k.transpose(dy, [0, 2, 3, 1])
        g = k.reshape(moved, [rows, out_channels])
        total = k.sum(g, 0)
        db = k.reshape(total, [out_channels])
        gt = k.transpose(g, [1, 0])
        ct = k.transpose(cols, [1, 0])
        product = k.matmul_nt(gt, ct)
        dw = k.reshape(product, [out_channels, channels, kernel, kernel])
        registers = [dy, cols, flat_weight, moved, g, total, db, gt, ct, product, dw]
        dx = None
        if input_grad:
            wt = k.transpose(flat_weight, [1, 0])
            dcols = k.matmul_nt(g, wt)
            dx = k.col2im(dcols, [batch, channels, height, width], kernel, stride, padding)
            registers += [wt, dcols, dx]
        geometry = (batch, channels, height, width, kernel, stride, padding)
        tracer.record_sequence(_conv2d_backward_plan(geometry, out_channels, input_grad), registers)
        return db, dw, dx

    def commit_state(self, named: Mapping[str, Array]) -> bytes | None:
        """The state root of ``named``; with a tracer, instead, the ``STATE`` record that
        ends a step (the root is its output, in ``tracer.segment`` once hashed)."""
        if self.tracer is None:
            return state_root({name: self.kernels.to_numpy(v) for name, v in named.items()})
        arrays = [named[n] for n in sorted(named, key=lambda n: n.encode())]
        self.tracer.record_state(arrays)
        self.tracer.end_step(keep=arrays)
        return None

    # --- elementwise ---------------------------------------------------------------
    def _elementwise(self, op: Op, fn: Any, *operands: Any) -> Array:
        attributes: list[Attribute] = []
        inputs: list[Array] = []
        values: list[Any] = []
        scalars: dict[int, int] = {}
        for slot, operand in enumerate(operands):
            if _is_scalar(operand):
                imm = np.float32(operand)
                attributes += [slot, imm]
                values.append(imm)
                if isinstance(operand, StepScalar):
                    scalars[len(attributes) - 1] = operand.index
            else:
                inputs.append(operand)
                values.append(operand)
        if not inputs:
            raise ExactError(f"{op.name.lower()}: at least one operand must be an array")
        shape = _shape(inputs[0])
        if len(inputs) > 1:
            try:
                for other in inputs[1:]:
                    shape = broadcast_shape(shape, _shape(other))
            except ValueError as exc:
                shapes = ", ".join(str(_shape(v)) for v in inputs)
                raise ExactError(f"{op.name.lower()}: shapes {shapes} do not broadcast") from exc
        out = fn(*values)
        if self.tracer is not None:
            self.tracer.record(op, attributes, inputs, out, scalars or None)
        return out

    def add(self, a: Any, b: Any) -> Array:
        """``a + b``."""
        return self._elementwise(Op.ADD, self.kernels.add, a, b)

    def sub(self, a: Any, b: Any) -> Array:
        """``a - b``."""
        return self._elementwise(Op.SUB, self.kernels.sub, a, b)

    def mul(self, a: Any, b: Any) -> Array:
        """``a * b``."""
        return self._elementwise(Op.MUL, self.kernels.mul, a, b)

    def div(self, a: Any, b: Any) -> Array:
        """``a / b``."""
        return self._elementwise(Op.DIV, self.kernels.div, a, b)

    def maximum(self, a: Any, b: Any) -> Array:
        """IEEE 754-2019 ``maximum``: NaN-propagating, ``+0 > -0``."""
        return self._elementwise(Op.MAXIMUM, self.kernels.maximum, a, b)

    def minimum(self, a: Any, b: Any) -> Array:
        """IEEE 754-2019 ``minimum``: NaN-propagating, ``-0 < +0``."""
        return self._elementwise(Op.MINIMUM, self.kernels.minimum, a, b)

    def lt(self, a: Any, b: Any) -> Array:
        """``1.0`` where ``a < b``, else ``0.0``."""
        return self._elementwise(Op.LT, self.kernels.lt, a, b)

    def le(self, a: Any, b: Any) -> Array:
        """``1.0`` where ``a <= b``, else ``0.0``."""
        return self._elementwise(Op.LE, self.kernels.le, a, b)

    def eq(self, a: Any, b: Any) -> Array:
        """``1.0`` where ``a == b``, else ``0.0``."""
        return self._elementwise(Op.EQ, self.kernels.eq, a, b)

    def select(self, cond: Any, a: Any, b: Any) -> Array:
        """``a`` where ``cond`` is non-zero (NaN included), else ``b``."""
        return self._elementwise(Op.SELECT, self.kernels.select, cond, a, b)

    def ldexp(self, x: Any, n: Any) -> Array:
        """``x * 2**n`` rounded once (``n`` integral)."""
        return self._elementwise(Op.LDEXP, self.kernels.ldexp, x, n)

    def neg(self, x: Array) -> Array:
        """``-x``."""
        return self._elementwise(Op.NEG, self.kernels.neg, x)

    def abs(self, x: Array) -> Array:
        """``|x|``."""
        return self._elementwise(Op.ABS, self.kernels.abs, x)

    def sqrt(self, x: Array) -> Array:
        """Correctly rounded square root."""
        return self._elementwise(Op.SQRT, self.kernels.sqrt, x)

    def exp(self, x: Array) -> Array:
        """The exp composite (docs/exact.md)."""
        return self._elementwise(Op.EXP, self.kernels.exp, x)

    def log(self, x: Array) -> Array:
        """The log composite (docs/exact.md)."""
        return self._elementwise(Op.LOG, self.kernels.log, x)

    # --- reductions and products ---------------------------------------------------
    def _axis(self, name: str, x: Array, axis: int) -> int:
        ndim = len(_shape(x))
        if not -ndim <= axis < ndim:
            raise ExactError(f"{name}: axis {axis} out of range for shape {_shape(x)}")
        return axis % ndim

    def sum(self, x: Array, axis: int) -> Array:
        """Sequential sum along ``axis`` from ``+0.0``, axis kept with size 1 (attribute: axis)."""
        axis = self._axis("sum", x, axis)
        out = self.kernels.sum(x, axis)
        self._record(Op.SUM, [axis], [x], out)
        return out

    def amax(self, x: Array, axis: int) -> Array:
        """Sequential ``maximum`` along ``axis``, axis kept with size 1 (attribute: axis)."""
        axis = self._axis("amax", x, axis)
        if _shape(x)[axis] == 0:
            raise ExactError(f"amax: axis {axis} of shape {_shape(x)} is empty")
        out = self.kernels.amax(x, axis)
        self._record(Op.AMAX, [axis], [x], out)
        return out

    def matmul_nt(self, a: Array, b: Array) -> Array:
        """``[..., M, K] x [..., N, K] -> [..., M, N]``, sequential dot products."""
        sa, sb = _shape(a), _shape(b)
        if len(sa) < 2 or len(sa) != len(sb) or sa[:-2] != sb[:-2] or sa[-1] != sb[-1]:
            raise ExactError(f"matmul_nt: shapes {sa} and {sb} are not [..., M, K] and [..., N, K]")
        out = self.kernels.matmul_nt(a, b)
        self._record(Op.MATMUL_NT, [], [a, b], out)
        return out

    # --- data movement -------------------------------------------------------------
    def transpose(self, x: Array, perm: Sequence[int]) -> Array:
        """Axes permuted by ``perm`` (attributes: the permutation)."""
        order = [int(p) for p in perm]
        if sorted(order) != list(range(len(_shape(x)))):
            raise ExactError(f"transpose: {order} is not a permutation of the axes of {_shape(x)}")
        out = self.kernels.transpose(x, order)
        self._record(Op.TRANSPOSE, order, [x], out)
        return out

    def swap_last(self, x: Array) -> Array:
        """``transpose`` of the last two axes."""
        order = list(range(len(_shape(x))))
        order[-2], order[-1] = order[-1], order[-2]
        return self.transpose(x, order)

    def reshape(self, x: Array, shape: Sequence[int]) -> Array:
        """Same values in row-major order with another shape (attributes: the shape)."""
        dims = [int(d) for d in shape]
        if math.prod(dims) != math.prod(_shape(x)):
            raise ExactError(f"reshape: cannot view shape {_shape(x)} as {tuple(dims)}")
        out = self.kernels.reshape(x, dims)
        self._record(Op.RESHAPE, dims, [x], out)
        return out

    def _check_index(self, name: str, index: Array, bound: int) -> None:
        values = self.kernels.to_numpy(index)
        if values.size == 0:
            return
        whole = np.isfinite(values).all() and bool((values == np.floor(values)).all())
        if not whole or values.min() < 0 or values.max() >= bound or bound > INTEGER_LIMIT:
            raise ExactError(f"{name}: indices must be integers in [0, {bound})")

    def index_select(self, x: Array, index: Array, axis: int) -> Array:
        """``x`` at positions ``index`` (1-D, float32 integers) along ``axis`` (attribute)."""
        axis = self._axis("index_select", x, axis)
        if len(_shape(index)) != 1:
            raise ExactError(f"index_select: index must be 1-D, got shape {_shape(index)}")
        self._check_index("index_select", index, _shape(x)[axis])
        out = self.kernels.index_select(x, index, axis)
        self._record(Op.INDEX_SELECT, [axis], [x, index], out)
        return out

    def take_along(self, x: Array, index: Array) -> Array:
        """``out[..., 0] = x[..., index[..., 0]]`` along the last axis."""
        sx, si = _shape(x), _shape(index)
        if len(si) != len(sx) or si[:-1] != sx[:-1] or si[-1] != 1:
            raise ExactError(f"take_along: index shape {si} does not fit {sx} (last dim 1)")
        self._check_index("take_along", index, sx[-1])
        out = self.kernels.take_along(x, index)
        self._record(Op.TAKE_ALONG, [], [x, index], out)
        return out

    def one_hot(self, index: Array, classes: int) -> Array:
        """``1.0`` at ``index`` along a new last axis of size ``classes`` (attribute)."""
        self._check_index("one_hot", index, classes)
        out = self.kernels.one_hot(index, classes)
        self._record(Op.ONE_HOT, [classes], [index], out)
        return out

    def causal_fill(self, x: Array, value: Scalar) -> Array:
        """``value`` above the diagonal of the last two axes (attribute: value)."""
        if len(_shape(x)) < 2:
            raise ExactError(f"causal_fill: needs at least 2 axes, got {_shape(x)}")
        imm = np.float32(value)
        out = self.kernels.causal_fill(x, imm)
        self._record(Op.CAUSAL_FILL, [imm], [x], out)
        return out

    def _conv_geometry(
        self, name: str, shape: Sequence[int], kernel: int, stride: int, padding: int
    ) -> None:
        if len(shape) != 4:
            raise ExactError(f"{name}: expected [B, C, H, W], got {tuple(shape)}")
        if kernel < 1 or stride < 1 or padding < 0:
            raise ExactError(f"{name}: kernel {kernel}, stride {stride}, padding {padding} invalid")
        if shape[2] + 2 * padding < kernel or shape[3] + 2 * padding < kernel:
            raise ExactError(f"{name}: kernel {kernel} larger than padded image {tuple(shape)}")

    def im2col(self, x: Array, kernel: int, stride: int, padding: int) -> Array:
        """Patches of a ``[B, C, H, W]`` image as rows (attributes: kernel, stride, padding)."""
        self._conv_geometry("im2col", _shape(x), kernel, stride, padding)
        out = self.kernels.im2col(x, kernel, stride, padding)
        self._record(Op.IM2COL, [kernel, stride, padding], [x], out)
        return out

    def col2im(
        self, cols: Array, shape: Sequence[int], kernel: int, stride: int, padding: int
    ) -> Array:
        """The adjoint of ``im2col`` (attributes: kernel, stride, padding, then the image shape)."""
        dims = [int(d) for d in shape]
        self._conv_geometry("col2im", dims, kernel, stride, padding)
        batch, channels, height, width = dims
        oh = (height + 2 * padding - kernel) // stride + 1
        ow = (width + 2 * padding - kernel) // stride + 1
        expected = (batch * oh * ow, channels * kernel * kernel)
        if _shape(cols) != expected:
            raise ExactError(f"col2im: columns of shape {_shape(cols)}, expected {expected}")
        out = self.kernels.col2im(cols, dims, kernel, stride, padding)
        self._record(Op.COL2IM, [kernel, stride, padding, *dims], [cols], out)
        return out

    def scatter_add(self, src: Array, index: Array, rows: int) -> Array:
        """Rows of ``src`` summed into ``rows`` rows at ``index`` (attribute: rows)."""
        ss, si = _shape(src), _shape(index)
        if len(ss) != 2 or si != (ss[0],):
            raise ExactError(f"scatter_add: src {ss} must be 2-D with index of shape ({ss[:1]})")
        self._check_index("scatter_add", index, rows)
        out = self.kernels.scatter_add(src, index, rows)
        self._record(Op.SCATTER_ADD, [rows], [src, index], out)
        return out
