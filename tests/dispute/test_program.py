"""Program entries: their bytes round-trip, and malformed bytes are a clear error; a task's step
constants computed in chunks are those of each step."""

from __future__ import annotations

import numpy as np
import pytest

from agents.commitment import tensor_root
from agents.dispute import programs
from agents.dispute.errors import ProgramError
from agents.dispute.program import ProgramEntry, Source, SourceKind, StepConstants, StepScalar
from agents.exact.trace import Op
from agents.learning.backends.exact import step_batch_tensors, step_scalars
from agents.learning.schedule import LearningRate
from tests.dispute.segments import small_task
from tests.dispute.toy import toy_program

ENTRIES = [
    ProgramEntry(
        Op.ADD, (1, np.float32(-0.0), StepScalar(3)), (Source(SourceKind.OP, 2),), 0, (4,)
    ),
    ProgramEntry(Op.SUM, (0,), (Source(SourceKind.STATE, 1),), 300, ()),
    ProgramEntry(Op.STATE, (), (Source(SourceKind.OP, 0), Source(SourceKind.OP, 5)), 0, None),
    ProgramEntry(Op.SELECT, (2, np.float32(np.inf)), (Source(SourceKind.BATCH, 0),), 0, (2, 3)),
]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.op.name for e in ENTRIES])
def test_an_entry_round_trips(entry: ProgramEntry) -> None:
    again = ProgramEntry.decode(entry.encode())
    assert again.encode() == entry.encode()
    assert [type(a) for a in again.attributes] == [type(a) for a in entry.attributes]


def test_the_toy_programs_entries_round_trip() -> None:
    program = toy_program()
    for entry in (*program.step_template, *program.distance_template):
        assert ProgramEntry.decode(entry.encode()).encode() == entry.encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01\x01x\x00\x00\x00\x00", "unknown attribute tag b'x'"),
        (b"\x00\x01\x01f\x00", "malformed program entry"),
        (b"\x00\x01", "malformed program entry"),
        (ENTRIES[0].encode() + b"\x00", "trailing bytes"),
    ],
)
def test_malformed_entries_are_program_errors(data: bytes, message: str) -> None:
    with pytest.raises(ProgramError, match=message):
        ProgramEntry.decode(data)


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_step_constants_are_step_by_step_ones(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The constants computed a chunk of steps at a time (data order, rates and row roots at
    once) are those of each step on its own, across chunk boundaries."""
    task = small_task(name)
    rate = LearningRate(task.spec)
    expected = [
        StepConstants(
            tuple(step_scalars(task.spec, rate, g)),
            tuple(tensor_root(t) for t in step_batch_tensors(task, task.batches(g, 1)[0])),
        ).encode()
        for g in range(task.spec.steps)
    ]
    for chunk in (1, 4, programs.CONSTANTS_CHUNK):
        monkeypatch.setattr(programs, "CONSTANTS_CHUNK", chunk)
        assert [c.encode() for c in programs.step_constants(task)] == expected


@pytest.mark.parametrize("compiled", [True, False])
def test_constants_digests_are_each_steps_digest(
    monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    """Steps of several shapes (the encodings of one shape hashed together, short ones in
    one block and longer ones), edge scalars, and shapes the encoding refuses or that do not
    lay out as one array: each digest is the step's own."""
    from agents.dispute import program

    if not compiled:
        monkeypatch.setattr(program, "engine", lambda: None)
    rng = np.random.default_rng(3)
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -3.4e38, 0.05]

    def root() -> bytes:
        return bytes(rng.integers(0, 256, 32, dtype=np.uint8))

    steps = []
    for i in range(300):
        shape = i % 4
        scalars = tuple(np.float32(edges[(i + k) % len(edges)]) for k in range(shape))
        batches = tuple(root() for _ in range(1 if shape < 2 else shape))
        steps.append(StepConstants(scalars, batches))
    steps += [StepConstants((), ()), StepConstants((np.float32(1),), (b"short",))]
    steps += [StepConstants((np.float32(2),), (root(),)) for _ in range(70)]
    # Roots of 31 and 33 bytes in steps of a shape of their own: their total is that of
    # 32-byte roots.
    steps += [StepConstants((np.float32(3), np.float32(4)), (root()[:31],)) for _ in range(35)]
    steps += [StepConstants((np.float32(3), np.float32(4)), (root() + b"x",)) for _ in range(35)]
    got = program.constants_digests(steps)
    assert got.shape == (len(steps), 32)
    assert [bytes(d) for d in got] == [s.digest() for s in steps]
    assert program.constants_digests([]).shape == (0, 32)
    many = [StepConstants(tuple(np.float32(k) for k in range(256)), ())] * 70
    with pytest.raises(ValueError):
        many[0].digest()
    with pytest.raises(ValueError):
        program.constants_digests(many)
