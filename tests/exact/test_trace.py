"""Op records and traces: the byte encoding (with the worked example of docs/exact.md),
round trips, malformed input, and what ExactOps records and refuses."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from agents.commitment import merkle_root, tensor_root
from agents.exact.cpu import CpuKernels
from agents.exact.errors import ExactError
from agents.exact.ops import ExactOps, Tracer
from agents.exact.trace import Op, OpRecord, SegmentTrace, StepTrace

F32 = np.float32


def test_worked_op_record() -> None:
    x = np.array([1.0, 2.0, 3.0], dtype=F32)
    tracer = Tracer(CpuKernels())
    E = ExactOps(CpuKernels(), tracer)
    y = E.add(x, 1.0)
    tracer.end_step()
    record = tracer.segment.steps[0].records[0]  # the step's only record
    want = (
        bytes.fromhex("0001")  # ADD
        + bytes([2])  # two attributes: operand slot 1 is the immediate 1.0
        + b"i" + (1).to_bytes(8, "big")
        + b"f" + bytes.fromhex("3f800000")
        + (1).to_bytes(2, "big") + tensor_root(x)  # one tensor input
        + tensor_root(np.array([2.0, 3.0, 4.0], dtype=F32))  # the output
    )  # fmt: skip
    assert (y == [2, 3, 4]).all()
    assert record.encode() == want
    assert record.digest() == hashlib.sha256(want).digest()
    assert record.digest().hex() == WORKED_RECORD_DIGEST


# Written in docs/exact.md.
WORKED_RECORD_DIGEST = "e5278ebb9ecd7d2a3c11b68947ab1527f4e57cb61312a1b016dbc95d94ad664c"


def test_records_and_traces_round_trip() -> None:
    rng = np.random.default_rng(1)
    roots = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)) for _ in range(6)]
    records = [
        OpRecord(Op.MATMUL_NT, (), (roots[0], roots[1]), roots[2]),
        OpRecord(Op.SUM, (-1,), (roots[2],), roots[3]),
        OpRecord(Op.SELECT, (2, F32("-inf")), (roots[3], roots[4]), roots[5]),
        OpRecord(Op.STATE, (), (), roots[0]),
    ]
    for record in records:
        assert OpRecord.decode(record.encode()) == record
    segment = SegmentTrace([StepTrace(records[:2]), StepTrace(records[2:])], StepTrace(records))
    again = SegmentTrace.decode(segment.encode())
    assert again.root() == segment.root()
    assert segment.root() == merkle_root(
        [StepTrace(records[:2]).root(), StepTrace(records[2:]).root(), StepTrace(records).root()]
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01",
        b"\xff\xff\x00\x00\x00",
        b"\x00\x01\x01z" + bytes(40),
        b"\x00\x01\x00\x00\x00",
    ],
)
def test_malformed_records_are_refused(data: bytes) -> None:
    with pytest.raises(ExactError):
        OpRecord.decode(data)


def test_bad_attribute_is_refused() -> None:
    with pytest.raises(ExactError, match=r"int or numpy\.float32"):
        OpRecord(Op.ADD, (1.5,), (), bytes(32)).encode()  # type: ignore[arg-type]


def test_immediates_are_rounded_to_float32_and_recorded_by_bits() -> None:
    tracer = Tracer(CpuKernels())
    E = ExactOps(CpuKernels(), tracer)
    E.mul(np.ones(2, F32), 0.1)
    tracer.end_step()
    slot, value = tracer.segment.steps[0].records[0].attributes
    assert slot == 1 and isinstance(value, np.floating) and value.dtype == F32
    assert value == F32(0.1)


def test_records_name_arrays_by_their_roots_and_steps_close() -> None:
    tracer = Tracer(CpuKernels())
    E = ExactOps(CpuKernels(), tracer)
    x = E.array(np.arange(4, dtype=F32))
    y = E.mul(x, x)
    z = E.add(y, x)
    assert E.commit_state({"b": z, "a": y}) is None  # the root is the STATE record's output
    w = E.mul(z, 2.0)  # the next step starts from the kept state
    E.commit_state({"a": y, "b": w})
    first, second = tracer.segment.steps
    assert first.records[0].inputs == (tensor_root(x), tensor_root(x))
    assert first.records[0].output == first.records[1].inputs[0] == tensor_root(y)
    assert first.records[1].inputs[1] == tensor_root(x)
    state = first.records[-1]
    assert state.op is Op.STATE and state.inputs == () and state.attributes == ()
    assert state.output == merkle_root([tensor_root(y), tensor_root(z)])
    # A STATE record is the op code, no attributes, no inputs and the state root: 37 bytes.
    assert state.encode() == bytes.fromhex("0040000000") + state.output
    assert second.records[0].inputs == (tensor_root(z),)
    assert second.records[-1].output == merkle_root([tensor_root(y), tensor_root(w)])


def _traced_steps(tracer: Tracer, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` steps of a small two-layer update, each closed by its state; the last state."""
    E = ExactOps(tracer.kernels, tracer)
    rng = np.random.default_rng(8)
    data = E.array(rng.standard_normal((40, 300)).astype(F32))
    tracer.pin(data)
    w = E.array(rng.standard_normal((20, 300)).astype(F32))
    b = E.array(np.zeros(20, F32))
    for step in range(steps):
        h = E.matmul_nt(E.index_select(data, E.array(np.arange(8, dtype=F32) + step), 0), w)
        g = E.sum(E.maximum(E.add(h, b), 0.0), 0)
        b = E.sub(b, E.mul(E.reshape(g, [20]), 0.01))
        w = E.sub(w, E.mul(w, 0.001))
        E.commit_state({"param/b": b, "param/w": w})
    return b, w


def test_batched_hashing_matches_hashlib_roots() -> None:
    # The hashing thread (engine trees) and hashlib give the same records, over more
    # steps than the tracer keeps outstanding.
    threaded, plain = Tracer(CpuKernels()), Tracer(CpuKernels())
    plain._engine = None
    b, w = _traced_steps(threaded, 9)
    _traced_steps(plain, 9)
    assert len(threaded.segment.steps) == 9
    for got, want in zip(threaded.segment.steps, plain.segment.steps, strict=True):
        assert got.records == want.records
    assert threaded.segment.root() == plain.segment.root()
    state = threaded.segment.steps[-1].records[-1]
    assert state.output == merkle_root([tensor_root(b), tensor_root(w)])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda E: E.add(np.ones((2, 3), F32), np.ones((4,), F32)), "do not broadcast"),
        (lambda E: E.add(1.0, 2.0), "must be an array"),
        (lambda E: E.matmul_nt(np.ones((2, 3), F32), np.ones((2, 4), F32)), "matmul_nt"),
        (lambda E: E.sum(np.ones((2, 3), F32), 2), "axis 2 out of range"),
        (lambda E: E.transpose(np.ones((2, 3), F32), [0, 0]), "not a permutation"),
        (lambda E: E.reshape(np.ones((2, 3), F32), [4]), "cannot view"),
        (lambda E: E.index_select(np.ones((3, 2), F32), np.array([3.0], F32), 0), "indices"),
        (lambda E: E.index_select(np.ones((3, 2), F32), np.array([0.5], F32), 0), "indices"),
        (lambda E: E.take_along(np.ones((3, 2), F32), np.zeros((3,), F32)), "take_along"),
        (lambda E: E.one_hot(np.array([-1.0], F32), 3), "indices"),
        (lambda E: E.im2col(np.ones((1, 1, 2, 2), F32), 5, 1, 0), "larger than"),
        (lambda E: E.col2im(np.ones((3, 3), F32), [1, 1, 3, 3], 3, 1, 1), "columns of shape"),
        (lambda E: E.scatter_add(np.ones((2, 2), F32), np.array([0.0], F32), 3), "scatter_add"),
        (lambda E: E.array(np.ones(2)), "float32"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(call: object, message: str) -> None:
    E = ExactOps(CpuKernels())
    with pytest.raises(ExactError, match=message):
        call(E)  # type: ignore[operator]
