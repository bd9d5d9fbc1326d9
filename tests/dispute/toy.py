"""A toy task for the game contract's tests: a small program, a numpy interpreter, liars.

The task has a three-tensor state (``param/v`` [300], ``param/w`` [3], ``step`` []), two
dataset tensors, a 14-op training step (a batch gather, elementwise ops with a per-step
learning rate, a 2-term and a 300-term reduction, a STATE record) and an 18-op distance
computation. Its records are real op records (``agents.exact.trace``) over real tensor
roots; the values are computed here with numpy in binary32, reductions in the defined
order (``agents.dispute.reductions``). ``ToyTrace(fault=...)`` is a party whose trace
lies in one of the ways a cheater could, consistently from the lie on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.arbiter.elements import REDUCTIONS
from agents.commitment import merkle_root, tensor_root
from agents.dispute.program import (
    Program,
    ProgramEntry,
    Source,
    SourceKind,
    StepConstants,
    StepScalar,
)
from agents.dispute.provider import OpTensors, TraceProvider
from agents.dispute.reductions import partial_results
from agents.exact.trace import Attribute, Op, OpRecord
from scripts.arena import open_game

F32 = np.float32
STEPS = 6
INTERVAL = 3
SEGMENTS = 2
V = 300
NAMES = ("param/v", "param/w", "step")
EPSILON = F32(1e-12)

S = SourceKind


def src(kind: SourceKind, index: int) -> Source:
    return Source(kind, index)


def _entry(
    op: Op,
    attributes: tuple[Any, ...],
    sources: tuple[Source, ...],
    terms: int,
    shape: tuple[int, ...] | None,
) -> ProgramEntry:
    return ProgramEntry(op, attributes, sources, terms, shape)


STEP_TEMPLATE = [
    _entry(Op.INDEX_SELECT, (0,), (src(S.DATASET, 0), src(S.BATCH, 0)), 0, (2, 3)),
    _entry(Op.MUL, (), (src(S.OP, 0), src(S.STATE, 1)), 0, (2, 3)),
    _entry(Op.SUM, (0,), (src(S.OP, 1),), 2, (1, 3)),
    _entry(Op.RESHAPE, (3,), (src(S.OP, 2),), 0, (3,)),
    _entry(Op.MUL, (1, StepScalar(0)), (src(S.OP, 3),), 0, (3,)),
    _entry(Op.SUB, (), (src(S.STATE, 1), src(S.OP, 4)), 0, (3,)),
    _entry(Op.RESHAPE, (1, V), (src(S.STATE, 0),), 0, (1, V)),
    _entry(Op.MATMUL_NT, (), (src(S.OP, 6), src(S.DATASET, 1)), V, (1, 2)),
    _entry(Op.MUL, (1, StepScalar(0)), (src(S.OP, 7),), 0, (1, 2)),
    _entry(Op.SUM, (1,), (src(S.OP, 8),), 2, (1, 1)),
    _entry(Op.RESHAPE, (1,), (src(S.OP, 9),), 0, (1,)),
    _entry(Op.SUB, (), (src(S.STATE, 0), src(S.OP, 10)), 0, (V,)),
    _entry(Op.ADD, (1, F32(1.0)), (src(S.STATE, 2),), 0, ()),
    _entry(Op.STATE, (), (src(S.OP, 11), src(S.OP, 5), src(S.OP, 12)), 0, None),
]

DISTANCE_TEMPLATE = [
    _entry(Op.SUB, (), (src(S.STATE, 0), src(S.CLAIMED, 0)), 0, (V,)),
    _entry(Op.MUL, (), (src(S.OP, 0), src(S.OP, 0)), 0, (V,)),
    _entry(Op.SUM, (0,), (src(S.OP, 1),), V, (1,)),
    _entry(Op.SUB, (), (src(S.STATE, 1), src(S.CLAIMED, 1)), 0, (3,)),
    _entry(Op.MUL, (), (src(S.OP, 3), src(S.OP, 3)), 0, (3,)),
    _entry(Op.SUM, (0,), (src(S.OP, 4),), 3, (1,)),
    _entry(Op.ADD, (), (src(S.OP, 2), src(S.OP, 5)), 0, (1,)),
    _entry(Op.SQRT, (), (src(S.OP, 6),), 0, (1,)),
    _entry(Op.SUB, (), (src(S.CLAIMED, 0), src(S.START, 0)), 0, (V,)),
    _entry(Op.MUL, (), (src(S.OP, 8), src(S.OP, 8)), 0, (V,)),
    _entry(Op.SUM, (0,), (src(S.OP, 9),), V, (1,)),
    _entry(Op.SUB, (), (src(S.CLAIMED, 1), src(S.START, 1)), 0, (3,)),
    _entry(Op.MUL, (), (src(S.OP, 11), src(S.OP, 11)), 0, (3,)),
    _entry(Op.SUM, (0,), (src(S.OP, 12),), 3, (1,)),
    _entry(Op.ADD, (), (src(S.OP, 10), src(S.OP, 13)), 0, (1,)),
    _entry(Op.SQRT, (), (src(S.OP, 14),), 0, (1,)),
    _entry(Op.MAXIMUM, (1, EPSILON), (src(S.OP, 15),), 0, (1,)),
    _entry(Op.DIV, (), (src(S.OP, 7), src(S.OP, 16)), 0, (1,)),
]


def dataset() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        rng.standard_normal((4, 3)).astype(F32),
        (rng.standard_normal((2, V)) * 0.1).astype(F32),
    ]


def initial_state() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [
        rng.standard_normal(V).astype(F32),
        rng.standard_normal(3).astype(F32),
        np.array(0.0, dtype=F32),
    ]


def batch_rows(step: int) -> np.ndarray:
    return np.array([(2 * step) % 4, (2 * step + 1) % 4], dtype=F32)


def learning_rate(step: int) -> np.float32:
    return F32(F32(0.1) / F32(step + 1))


def _binary(op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op == Op.ADD:
            return np.asarray((a + b), dtype=F32)
        if op == Op.SUB:
            return np.asarray((a - b), dtype=F32)
        if op == Op.MUL:
            return np.asarray((a * b), dtype=F32)
        if op == Op.DIV:
            return np.asarray((a / b), dtype=F32)
        if op == Op.MAXIMUM:
            return np.asarray(np.maximum(a, b), dtype=F32)
    raise AssertionError(op)


def execute(
    op: Op, attributes: tuple[Attribute, ...], inputs: list[np.ndarray], shape: tuple[int, ...]
) -> np.ndarray:
    """The toy's interpreter: one op of the templates above, in binary32."""
    if op in REDUCTIONS:
        out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=F32)
        for e in range(out.size):
            out[e] = partial_results(op, attributes, inputs, shape, e)[-1]
        return out.reshape(shape)
    if op == Op.INDEX_SELECT:
        return np.asarray(inputs[0][inputs[1].astype(np.int64)], dtype=F32)
    if op == Op.RESHAPE:
        return inputs[0].reshape(shape).copy()
    if op == Op.SQRT:
        return np.asarray(np.sqrt(inputs[0]), dtype=F32)
    if len(inputs) == 1 and attributes:
        slot, value = int(attributes[0]), F32(attributes[1])
        operands = [inputs[0], np.full((), value, F32)]
        if slot == 0:
            operands.reverse()
        return _binary(op, operands[0], operands[1]).reshape(shape)
    return _binary(op, inputs[0], inputs[1]).reshape(shape)


def _flip(array: np.ndarray, element: int, mask: int) -> np.ndarray:
    out = array.copy()
    flat = out.reshape(-1).view(np.uint32)
    flat[element] ^= np.uint32(mask)
    return out


@dataclass(frozen=True)
class Fault:
    """One way a trace lies, from local step ``step`` on.

    kinds: ``value`` (output element ``element`` of op ``op`` has bits ``mask`` flipped),
    ``term`` (partial result ``term`` of that element is flipped and the sum goes on from
    it), ``attribute`` (op ``op`` runs with twice the learning rate), ``input`` (op ``op``
    reads a wrong tensor at input ``slot``), ``batch`` (the step trains on other samples),
    ``state`` (tensor ``element`` of the state after the step is tampered with),
    ``garbage`` (the step's root is random bytes: nothing behind it).
    """

    kind: str
    step: int
    op: int = 0
    element: int = 0
    term: int = 0
    slot: int = 0
    mask: int = 1 << 4


def toy_program() -> Program:
    data = dataset()
    constants = [
        StepConstants((learning_rate(g),), (tensor_root(batch_rows(g)),)) for g in range(STEPS)
    ]
    return Program(
        steps=STEPS,
        interval=INTERVAL,
        segments=SEGMENTS,
        samples=1,
        metric="l2",
        epsilon=EPSILON,
        state_tensors=len(NAMES),
        initial_state=merkle_root([tensor_root(t) for t in initial_state()]),
        datasets=tuple(tensor_root(t) for t in data),
        step_template=list(STEP_TEMPLATE),
        distance_template=list(DISTANCE_TEMPLATE),
        constants=constants,
    )


def honest_checkpoints() -> list[list[np.ndarray]]:
    """The state at every checkpoint of an honest run (a replay from checkpoint 0)."""
    states = [initial_state()]
    for segment in range(SEGMENTS):
        trace = ToyTrace(segment, states[-1], claimed=None)
        states.append(trace.final_state())
    return states


class ToyTrace(TraceProvider):
    """A party's trace of one toy segment, honest or lying by ``fault``."""

    def __init__(
        self,
        segment: int,
        start: list[np.ndarray],
        claimed: list[np.ndarray] | None,
        fault: Fault | None = None,
        program: Program | None = None,
    ) -> None:
        super().__init__(program or toy_program(), segment)
        self.fault = fault
        self.data = dataset()
        self._records: list[list[OpRecord]] = []
        self._tensors: list[list[OpTensors | None]] = []
        self._states: list[list[np.ndarray]] = [start]
        self._run(start)
        self._claimed = claimed if claimed is not None else self._states[-1]
        self._distance(start, self._claimed)

    def _faulty(self, kind: str, step: int) -> Fault | None:
        if self.fault is not None and self.fault.kind == kind and self.fault.step == step:
            return self.fault
        return None

    def _run(self, start: list[np.ndarray]) -> None:
        state = start
        for t in range(self.step_count):
            g = self.first_step + t
            rows = batch_rows(g)
            if self._faulty("batch", t):
                rows = np.array([3, 3], dtype=F32)
            lr = learning_rate(g)
            outputs: list[np.ndarray] = []
            records: list[OpRecord] = []
            tensors: list[OpTensors | None] = []
            for j, entry in enumerate(STEP_TEMPLATE):
                if entry.op == Op.STATE:
                    new = [outputs[s.index] for s in entry.sources]
                    fault = self._faulty("state", t)
                    if fault is not None:
                        new[fault.element] = _flip(new[fault.element], 0, fault.mask)
                    root = merkle_root([tensor_root(x) for x in new])
                    records.append(OpRecord(Op.STATE, (), (), root))
                    tensors.append(None)
                    state = new
                    continue
                inputs = []
                for slot, source in enumerate(entry.sources):
                    if source.kind == S.OP:
                        value = outputs[source.index]
                    elif source.kind == S.STATE:
                        value = state[source.index]
                    elif source.kind == S.DATASET:
                        value = self.data[source.index]
                    else:
                        value = rows
                    fault = self._faulty("input", t)
                    if fault is not None and fault.op == j and fault.slot == slot:
                        value = (value * F32(2.0)).astype(F32)
                    inputs.append(value)
                attributes = entry.record_attributes((lr,))
                if self._faulty("attribute", t) and self.fault is not None and self.fault.op == j:
                    attributes = entry.record_attributes((F32(lr * F32(2.0)),))
                assert entry.shape is not None
                out = execute(entry.op, attributes, inputs, entry.shape)
                out = self._apply_value_faults(t, j, entry.op, attributes, inputs, out)
                outputs.append(out)
                tensors.append(OpTensors(tuple(inputs), out))
                records.append(
                    OpRecord(
                        entry.op,
                        attributes,
                        tuple(tensor_root(x) for x in inputs),
                        tensor_root(out),
                    )
                )
            self._records.append(records)
            self._tensors.append(tensors)
            self._states.append(state)

    def _apply_value_faults(
        self,
        t: int,
        j: int,
        op: Op,
        attributes: tuple[Attribute, ...],
        inputs: list[np.ndarray],
        out: np.ndarray,
    ) -> np.ndarray:
        fault = self.fault
        if fault is None or fault.step != t or fault.op != j:
            return out
        if fault.kind == "value":
            return _flip(out, fault.element, fault.mask)
        if fault.kind == "term":
            partials = self._faulty_partials(op, attributes, inputs, out.shape, fault)
            changed = out.copy()
            changed.reshape(-1)[fault.element] = partials[-1]
            return changed
        return out

    @staticmethod
    def _faulty_partials(
        op: Op,
        attributes: tuple[Attribute, ...],
        inputs: list[np.ndarray],
        shape: tuple[int, ...],
        fault: Fault,
    ) -> np.ndarray:
        """The element's partial results with P(term) flipped and the sum continued from it."""
        honest = partial_results(op, attributes, inputs, shape, fault.element)
        out = honest.copy()
        out[fault.term] = _flip(honest[fault.term : fault.term + 1], 0, fault.mask)[0]
        # The terms are what the honest sum added: continue from the changed value.
        for m in range(fault.term + 1, len(out)):
            if op == Op.AMAX:
                out[m] = np.maximum(out[m - 1], honest[m])
            else:
                out[m] = F32(out[m - 1] + F32(honest[m] - honest[m - 1]))
        return out

    def _distance(self, start: list[np.ndarray], claimed: list[np.ndarray]) -> None:
        final = self._states[-1]
        outputs: list[np.ndarray] = []
        records: list[OpRecord] = []
        tensors: list[OpTensors | None] = []
        t = self.step_count
        for j, entry in enumerate(DISTANCE_TEMPLATE):
            inputs = []
            for slot, source in enumerate(entry.sources):
                if source.kind == S.OP:
                    value = outputs[source.index]
                elif source.kind == S.STATE:
                    value = final[source.index]
                elif source.kind == S.CLAIMED:
                    value = claimed[source.index]
                else:
                    value = start[source.index]
                fault = self._faulty("input", t)
                if fault is not None and fault.op == j and fault.slot == slot:
                    value = (value * F32(2.0)).astype(F32)
                inputs.append(value)
            attributes = entry.record_attributes(())
            assert entry.shape is not None
            out = execute(entry.op, attributes, inputs, entry.shape)
            out = self._apply_value_faults(t, j, entry.op, attributes, inputs, out)
            outputs.append(out)
            tensors.append(OpTensors(tuple(inputs), out))
            records.append(
                OpRecord(
                    entry.op, attributes, tuple(tensor_root(x) for x in inputs), tensor_root(out)
                )
            )
        self._records.append(records)
        self._tensors.append(tensors)

    # --- TraceProvider --------------------------------------------------------------------

    def records(self, step: int) -> list[OpRecord]:
        return self._records[step]

    def tensors(self, step: int, op: int) -> OpTensors:
        tensors = self._tensors[step][op]
        assert tensors is not None
        return tensors

    def state_roots(self, step: int) -> list[bytes]:
        return [tensor_root(x) for x in self._states[step + 1]]

    def claimed_roots(self) -> list[bytes]:
        return [tensor_root(x) for x in self._claimed]

    def partials(self, step: int, op: int, element: int) -> np.ndarray:
        fault = self.fault
        if (
            fault is not None
            and fault.kind == "term"
            and (fault.step, fault.op, fault.element) == (step, op, element)
        ):
            record = self.record(step, op)
            t = self.tensors(step, op)
            return self._faulty_partials(
                record.op, record.attributes, list(t.inputs), t.output.shape, fault
            )
        return super().partials(step, op, element)

    @property
    def trace_root(self) -> bytes:
        if self.fault is not None and self.fault.kind == "garbage":
            return random.Random(self.fault.step).randbytes(32)
        return super().trace_root

    def final_state(self) -> list[np.ndarray]:
        return self._states[-1]


@dataclass
class ToyClaims:
    """The checkpoints of an honest toy run and the Merkle tree the solver would commit."""

    states: list[list[np.ndarray]] = field(default_factory=honest_checkpoints)

    def roots(self) -> list[bytes]:
        return [merkle_root([tensor_root(t) for t in s]) for s in self.states]


def open_toy_game(
    deployed: Any,
    claims: ToyClaims,
    defender: ToyTrace,
    challenger: ToyTrace,
    segment: int = 1,
    accounts: tuple[int, int] = (1, 2),
) -> int:
    """Open a game on the toy game (``deployed.game``) over toy segment ``segment`` between
    ``defender`` and ``challenger`` (played by those two of ``deployed.accounts``); its id."""
    game_id, _ = open_game(
        deployed.game,
        defender.program,
        claims.roots(),
        segment,
        defender.trace_root,
        challenger.trace_root,
        deployed.accounts[accounts[0]],
        deployed.accounts[accounts[1]],
    )
    return game_id
