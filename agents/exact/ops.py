"""``ExactOps``: the exact operations as layers call them, checked and optionally traced.

Every method is one trace operation (``agents.exact.trace.Op``): it checks its
inputs (shapes, axes, indices) and raises ``ExactError`` naming what is wrong,
turns Python numbers into float32 immediates (rounded to nearest-even, then
recorded by their bits), runs the path's kernel, and, when a ``Tracer`` is
attached, appends the op record with the tensor roots of inputs and output.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import math
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from agents.commitment import (
    FAST_MIN_HASHES,
    engine,
    leaf_hashes,
    merkle_root,
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


def _shape(value: Any) -> tuple[int, ...]:
    # numpy shapes are tuples of ints and torch.Size is a tuple subclass of ints.
    return tuple(value.shape)


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# Tensor roots are computed on these threads, one per core, while the next steps run (the
# engine's tree kernel does not hold the GIL): a model whose steps write more bytes than one
# core hashes in a step's time keeps several steps hashing at once, and tracers replaying
# side by side share the threads. Closed steps are handed over in groups of at least
# _GROUP_BYTES of new tensors (a small model's steps go several at a time: each hand-off
# makes the computing thread and a hashing thread trade the GIL), as a table of addresses
# and sizes made on the computing thread, so that a hashing thread runs no Python per
# tensor; a group is split into parts of at least _PART_BYTES, one per thread (the last
# group of a segment, which the trace root waits for, is hashed on every core). A tracer
# waits once _OUTSTANDING of its groups are outstanding, which bounds the arrays it keeps
# alive.
_HASHING_THREADS = _cores()
_HASHER = concurrent.futures.ThreadPoolExecutor(
    max_workers=_HASHING_THREADS, thread_name_prefix="trace-hash"
)
_OUTSTANDING = 4
_GROUP_BYTES = 4 << 20
_PART_BYTES = 1 << 20

# A record before its roots are known: its bytes up to the first input root (op code,
# attributes, input count), op, attributes, numbers of the input arrays and of the output
# array (-1 for a STATE record, whose output is the Merkle root over the roots of the
# arrays numbered as its inputs, and which lists no inputs of its own).
_Pending = tuple[bytes, Op, tuple[Attribute, ...], tuple[int, ...], int]

_F32 = np.dtype(np.float32)
_RESHAPE = Op.RESHAPE
# A group's Merkle roots: computed, or futures of consecutive parts of them.
_Merkles = list[concurrent.futures.Future[np.ndarray]] | np.ndarray
_STATE_PREFIX = bytes([0, int(Op.STATE), 0, 0, 0])

# Record prefixes by site: a model's steps repeat the same few hundred (op, attributes)
# pairs, so each is encoded once. Float immediates are keyed by their bits (+0 and -0, or
# two NaN payloads, are equal as numbers but distinct immediates) and other attributes with
# their type (an attribute that is not an int fails in ``encode_attributes``, never here).
_PREFIXES: dict[tuple[Any, ...], bytes] = {}
_PREFIX_LIMIT = 1 << 16
# Shape headers of tensor roots, by shape.
_HEADERS: dict[tuple[int, ...], bytes] = {}


def _prefix(op: Op, attributes: tuple[Attribute, ...], inputs: int) -> bytes:
    if attributes:
        key: tuple[Any, ...] = (
            id(op),  # an Op hashes by its name, in Python; its members are singletons
            inputs,
            *[a.tobytes() if type(a) is np.float32 else (type(a), a) for a in attributes],
        )
    else:
        key = (id(op), inputs)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        prefix = struct.pack(">H", int(op)) + encode_attributes(attributes)
        prefix += struct.pack(">H", inputs)
        if len(_PREFIXES) >= _PREFIX_LIMIT:  # a schedule's per-step immediates: start over
            _PREFIXES.clear()
        _PREFIXES[key] = prefix
    return prefix


def _address(values: np.ndarray) -> int:
    return int(values.__array_interface__["data"][0])


@dataclass
class _Batch:
    """The arrays first seen in closed steps, and where their Merkle roots go once hashed.

    ``numbers[i]`` is ``arrays[i]``, hashed; ``shared[i]`` is ``shared_arrays[i]`` (a
    ``reshape`` output over its input's memory), whose Merkle root is that of the array
    numbered ``sources[i]``.
    """

    numbers: list[int]
    arrays: list[np.ndarray]
    shared: list[int]
    shared_arrays: list[np.ndarray]
    sources: list[int]
    merkles: _Merkles


class Tracer:
    """Collects op records into a ``SegmentTrace``; tensor roots are computed in batches.

    Every distinct array an op reads or writes gets a number the first time the tracer
    sees it in a step (arrays are remembered by identity, and held until hashed, so an
    identity cannot be reused meanwhile); a record is kept as its prefix (op code,
    attributes, input count: encoded once per distinct site) and numbers. Closed steps'
    new arrays are hashed in groups: on a hashing thread with the engine's compiled trees
    (the next steps compute meanwhile), or with hashlib where there is no engine. A
    ``reshape`` whose output lies over its input's memory has its input's bytes, so it
    takes its input's Merkle root (only the shape header of its root differs) and is not
    hashed again. ``trace_root`` waits for the hashing and hashes each step's records in
    one batch, without building record objects; ``segment`` builds the ``OpRecord``
    objects for whoever reads the records. The roots are the ones
    ``agents.commitment.tensor_root`` and ``agents.exact.trace`` define. ``pin`` keeps the
    root of a long-lived array (a dataset) for the tracer's lifetime.
    """

    def __init__(self, kernels: Kernels) -> None:
        self.kernels = kernels
        self._segment = SegmentTrace()
        self._shapes: list[tuple[int, ...]] = []
        self._merkles: list[bytes | None] = []
        self._roots: list[bytes | None] = []
        self._known: dict[int, tuple[Array, int]] = {}
        self._pinned: dict[int, tuple[Array, int]] = {}
        self._open: list[_Pending] = []
        self._fresh_numbers: list[int] = []
        self._fresh: list[np.ndarray] = []
        self._fresh_bytes = 0
        self._shared: list[int] = []
        self._shared_arrays: list[np.ndarray] = []
        self._sources: list[int] = []
        self._closed: list[tuple[bool, list[_Pending]]] = []  # (is the distance, records)
        self._built = 0  # closed steps in ``_segment``
        self._rooted = 0  # closed steps in ``_step_roots`` / ``_distance_root``
        self._step_roots: list[bytes] = []
        self._distance_root: bytes | None = None
        self._batches: list[_Batch] = []
        self._in_distance = False
        self._engine = engine()

    def _values(self, array: Array) -> np.ndarray:
        # The CPU path's arrays are contiguous float32 numpy arrays already.
        if type(array) is np.ndarray and array.dtype is _F32 and array.flags.c_contiguous:
            return array
        values = self.kernels.to_numpy(array)
        return values if values.flags.c_contiguous else values.copy(order="C")

    def _number(self, array: Array) -> int:
        key = id(array)
        known = self._known.get(key)
        if known is not None:
            return known[1]
        values = self._values(array)
        number = len(self._shapes)
        self._shapes.append(values.shape)
        self._known[key] = (array, number)
        self._fresh_numbers.append(number)
        self._fresh.append(values)
        self._fresh_bytes += values.nbytes
        return number

    def _view_number(self, output: Array, source: Array, source_number: int) -> int:
        """The number of ``output``, which holds ``source``'s values in another shape: it
        shares ``source``'s Merkle root when it lies over the same bytes."""
        key = id(output)
        if key in self._known:
            return self._number(output)
        values = self._values(output)
        origin = self._values(source)
        if (
            values.nbytes != origin.nbytes
            or not values.flags.c_contiguous
            or not origin.flags.c_contiguous
            or _address(values) != _address(origin)
        ):
            return self._number(output)
        number = len(self._shapes)
        self._shapes.append(values.shape)
        self._known[key] = (output, number)
        self._shared.append(number)
        self._shared_arrays.append(values)
        self._sources.append(source_number)
        return number

    def root(self, array: Array) -> bytes:
        """The tensor root of ``array``, computed now."""
        return tensor_root(self.kernels.to_numpy(array))

    def pin(self, array: Array) -> bytes:
        """Remember ``array``'s root for the tracer's lifetime and return it."""
        values = self.kernels.to_numpy(array)
        number = len(self._shapes)
        self._shapes.append(values.shape)
        self._grow()
        merkle = self._merkle(values)
        self._merkles[number] = merkle
        root = root_from_merkle(values.shape, merkle)
        self._roots[number] = root
        self._pinned[id(array)] = self._known[id(array)] = (array, number)
        return root

    def _merkle(self, values: np.ndarray) -> bytes:
        flat = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
        if self._engine is None:
            return merkle_root(leaf_hashes(values, fast=False), fast=False)
        return self._engine.leaves_root(flat)

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
        known = self._known
        numbers = tuple(
            [
                entry[1] if (entry := known.get(id(value))) is not None else self._number(value)
                for value in inputs
            ]
        )
        if op is _RESHAPE and len(numbers) == 1:
            number = self._view_number(output, inputs[0], numbers[0])
        else:
            number = self._number(output)
        attributes = tuple(attributes)
        self._open.append((_prefix(op, attributes, len(numbers)), op, attributes, numbers, number))

    def record_state(self, arrays: Sequence[Array]) -> None:
        """Append the ``STATE`` record closing a step: its output is the state root over the
        state's tensors in name order; the record lists no inputs (docs/exact.md, "Traces")."""
        numbers = tuple([self._number(value) for value in arrays])
        self._open.append((_STATE_PREFIX, Op.STATE, (), numbers, -1))

    def end_step(self, keep: Sequence[Array] = ()) -> None:
        """Close the current step (or the distance computation) and start hashing it once
        enough new bytes are waiting.

        Arrays in ``keep`` (the state the next step starts from) stay known.
        """
        self._closed.append((self._in_distance, self._open))
        self._open = []
        self._in_distance = False
        known = self._known
        self._known = dict(self._pinned)
        self._known.update({id(a): known[id(a)] for a in keep if id(a) in known})
        if self._fresh_bytes >= _GROUP_BYTES:
            self._hand_over()

    def _hand_over(self) -> None:
        """Start hashing the arrays first seen since the last hand-over."""
        if not self._fresh and not self._shared:
            return
        arrays = self._fresh
        merkles = self._hash(arrays)
        batch = _Batch(
            self._fresh_numbers, arrays, self._shared, self._shared_arrays, self._sources, merkles
        )
        self._batches.append(batch)
        self._fresh_numbers, self._fresh, self._fresh_bytes = [], [], 0
        self._shared, self._shared_arrays, self._sources = [], [], []
        if len(self._batches) > _OUTSTANDING:
            self._collect(len(self._batches) - _OUTSTANDING)

    def begin_distance(self) -> None:
        """Records from here until ``end_step`` form the distance computation."""
        if self._open:
            raise ExactError("begin_distance called in the middle of a step")
        self._in_distance = True

    def _settle(self) -> None:
        """Every closed step's arrays hashed and their roots known."""
        self._hand_over()
        self._collect(len(self._batches))

    @property
    def segment(self) -> SegmentTrace:
        """The trace of every closed step, once all their roots are in."""
        self._settle()
        for is_distance, pending in self._closed[self._built :]:
            step = StepTrace([self._materialize(record) for record in pending])
            if is_distance:
                self._segment.distance = step
            else:
                self._segment.steps.append(step)
        self._built = len(self._closed)
        return self._segment

    def step_roots(self) -> list[bytes]:
        """The root of every closed step (the distance computation's excluded)."""
        self._settle()
        for is_distance, pending in self._closed[self._rooted :]:
            root = self._step_root(pending)
            if is_distance:
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

    def _step_root(self, pending: list[_Pending]) -> bytes:
        roots = cast("list[bytes]", self._roots)  # every one known once settled
        messages: list[bytes] = []
        for prefix, _op, _attributes, inputs, output in pending:
            if output < 0:
                messages.append(prefix + merkle_root([roots[n] for n in inputs]))
            else:
                messages.append(b"".join([prefix, *[roots[n] for n in inputs], roots[output]]))
        digests = self._digests(messages)
        return merkle_root(np.frombuffer(digests, dtype=np.uint8).reshape(-1, 32))

    def _hash(self, arrays: list[np.ndarray]) -> _Merkles:
        """The Merkle roots of ``arrays`` (an ``(n, 32)`` array), or futures of consecutive
        parts of them (the batch keeps the arrays alive until they are collected)."""
        if not arrays:
            return np.empty((0, 32), dtype=np.uint8)
        if self._engine is None:
            return np.array(
                [np.frombuffer(merkle_root(leaf_hashes(v), fast=False), np.uint8) for v in arrays]
            )
        count = len(arrays)
        addresses = np.fromiter(map(_address, arrays), dtype=np.int64, count=count)
        sizes = np.fromiter([values.nbytes for values in arrays], dtype=np.int64, count=count)
        ends = np.cumsum(sizes)
        total = int(ends[-1])
        parts = max(1, min(_HASHING_THREADS, total // _PART_BYTES, count))
        # Part k ends after the first array at which k + 1 parts' share of the bytes is in.
        cuts = np.searchsorted(ends, total * np.arange(1, parts) // parts, side="left") + 1
        bounds = [0, *sorted({int(c) for c in cuts if 0 < c < count}), count]
        hash_at = self._engine.leaves_roots_at
        return [
            _HASHER.submit(hash_at, addresses[a:b], sizes[a:b])
            for a, b in itertools.pairwise(bounds)
        ]

    def _grow(self) -> None:
        """Room for the Merkle root and root of every array numbered so far."""
        missing = len(self._shapes) - len(self._roots)
        self._merkles += [None] * missing
        self._roots += [None] * missing

    def _collect(self, count: int) -> None:
        self._grow()
        shapes, merkles, roots = self._shapes, self._merkles, self._roots
        for batch in self._batches[:count]:
            hashed = batch.merkles
            if isinstance(hashed, list):
                flat = b"".join([part.result().tobytes() for part in hashed])
            else:
                flat = hashed.tobytes()
            for i, number in enumerate(batch.numbers):
                merkles[number] = flat[32 * i : 32 * i + 32]
            for number, source in zip(batch.shared, batch.sources, strict=True):
                merkles[number] = merkles[source]
            numbers = [*batch.numbers, *batch.shared]
            headers = _HEADERS
            messages = []
            for number in numbers:
                shape = shapes[number]
                header = headers.get(shape)
                if header is None:
                    if len(headers) >= _PREFIX_LIMIT:
                        headers.clear()
                    header = headers[shape] = shape_header(shape)
                messages.append(header + merkles[number])  # type: ignore[operator]
            digests = self._digests(messages)
            for i, number in enumerate(numbers):
                roots[number] = digests[32 * i : 32 * i + 32]
        del self._batches[:count]

    def _digests(self, messages: list[bytes]) -> bytes:
        """The sha256 digests of ``messages``, concatenated."""
        if self._engine is None or len(messages) < FAST_MIN_HASHES:
            return b"".join([hashlib.sha256(m).digest() for m in messages])
        lengths = np.fromiter(map(len, messages), dtype=np.int64, count=len(messages))
        offsets = np.zeros(len(messages), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        buffer = np.frombuffer(b"".join(messages), dtype=np.uint8)
        return self._engine.hash_messages(buffer, offsets, lengths).tobytes()

    def _materialize(self, pending: _Pending) -> OpRecord:
        _prefix, op, attributes, inputs, output = pending
        roots = tuple([self._root_of(number) for number in inputs])
        if output < 0:
            return OpRecord(op, attributes, (), merkle_root(roots))
        return OpRecord(op, attributes, roots, self._root_of(output))

    def _root_of(self, number: int) -> bytes:
        root = self._roots[number]
        assert root is not None, "a record refers to an array of a step not yet hashed"
        return root


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
