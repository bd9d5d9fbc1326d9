"""The trace provider of a real segment: a replay from the checkpoint, on demand, cached on disk.

``ReplayProvider`` replays segment ``i`` of a task from its start state with the exact
backend, traced, then runs the distance computation against the claimed end state: that
gives the records of every step, the state roots after each step, and the trace root a
verifier posts. The values an op read and wrote (for the element level, the partial
results and the one step's witness) come from one more replay that keeps the tensors of
the disputed step only. Records, state roots and kept tensors are written to a cache
directory, so a player that restarts (or a long game) does not replay a segment twice.

A ``Fault`` makes the provider a liar, consistently from the lie on (tests and devnet
adversaries): a flipped output element, a flipped partial result of a reduction, a
record with another attribute or input, another batch, a tampered state, or a step root
with nothing behind it.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.arbiter.elements import REDUCTIONS
from agents.commitment import tensor_root
from agents.dispute.errors import TraceError
from agents.dispute.program import Program, Source, SourceKind
from agents.dispute.provider import OpTensors, TraceProvider
from agents.dispute.reductions import partial_results
from agents.exact.kernels import Array, Kernels
from agents.exact.ops import Tracer
from agents.exact.trace import Attribute, Op, OpRecord, SegmentTrace
from agents.learning.backends.exact import ExactBackend
from agents.learning.layout import State, ordered
from agents.learning.task import Task

FAULT_KINDS = ("value", "term", "attribute", "input", "batch", "state", "garbage")


@dataclass(frozen=True)
class Fault:
    """One way a replay lies (see the module docstring), at local step ``step``.

    ``value``: output element ``element`` of op ``op`` gets bits ``mask`` flipped;
    ``term``: partial result ``term`` of that element (a reduction) gets bits ``mask``
    flipped and the fold goes on from it; ``attribute``: op ``op``'s record has its first
    float attribute negated (its sign bit flipped: ``2x + 1``, say, would leave ``inf`` and
    ``-1`` as they are); ``input``: its input ``slot`` is another tensor; ``batch``: the
    step trains on other samples; ``state``: tensor ``element`` of the state after the step
    is tampered with; ``garbage``: the trace root is random bytes.

    Every such lie changes the liar's trace root, except a ``term`` lie whose fold ends on
    the honest value (a flipped partial that a later maximum or a rounding absorbs): the
    output is then honest and there is nothing to dispute. ``fault_choices`` draws only
    ``term`` lies whose fold ends elsewhere, and no ``value`` lie on a gather of the batch's
    samples (a flipped label or token id is out of range for the ops that index with it, so
    the liar could not go on).
    """

    kind: str
    step: int
    op: int = 0
    element: int = 0
    term: int = 0
    slot: int = 0
    mask: int = 1 << 3

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")


def _flip(values: np.ndarray, element: int, mask: int) -> None:
    flat = values.reshape(-1).view(np.uint32)
    flat[element] ^= np.uint32(mask)


def _negated(value: np.float32) -> np.float32:
    """``value`` with its sign bit flipped: another bit pattern for every value."""
    bits = np.array([value], dtype=np.float32).view(np.uint32) ^ np.uint32(0x8000_0000)
    return np.float32(bits.view(np.float32)[0])


def faulty_partials(honest: np.ndarray, op: Op, term: int, mask: int) -> np.ndarray:
    """``P(0) … P(K)`` with ``P(term)`` flipped and each later term added to the flipped fold."""
    out = honest.copy()
    _flip(out[term : term + 1], 0, mask)
    for m in range(term + 1, len(out)):
        if op == Op.AMAX:
            out[m] = np.maximum(out[m - 1], honest[m])
        else:
            out[m] = np.float32(out[m - 1] + np.float32(honest[m] - honest[m - 1]))
    return out


class ReplayTracer(Tracer):
    """A tracer that keeps the tensors of chosen steps, the state roots, and applies a fault."""

    def __init__(self, kernels: Kernels, keep: set[int], fault: Fault | None) -> None:
        super().__init__(kernels)
        self.keep = keep
        self.fault = fault
        self.at_step = 0
        self.at_op = 0
        self.kept: dict[int, list[OpTensors | None]] = {}
        self.state_roots: list[list[bytes]] = []

    def _numpy(self, array: Array) -> np.ndarray:
        return np.array(self.kernels.to_numpy(array), dtype=np.float32, copy=True)

    def _faulty(self, *kinds: str) -> Fault | None:
        fault = self.fault
        if (
            fault is not None
            and fault.kind in kinds
            and (fault.step, fault.op) == (self.at_step, self.at_op)
        ):
            return fault
        return None

    def record(
        self,
        op: Op,
        attributes: Sequence[Attribute],
        inputs: Sequence[Array],
        output: Array,
        scalars: Mapping[int, int] | None = None,
    ) -> None:
        fault = self._faulty("value", "term", "attribute", "input")
        if fault is not None:
            attributes, inputs = self._lie(fault, op, attributes, inputs, output)
        super().record(op, attributes, inputs, output, scalars)
        if self.at_step in self.keep:
            kept = OpTensors(tuple(self._numpy(x) for x in inputs), self._numpy(output))
            self.kept.setdefault(self.at_step, []).append(kept)
        self.at_op += 1

    def _lie(
        self,
        fault: Fault,
        op: Op,
        attributes: Sequence[Attribute],
        inputs: Sequence[Array],
        output: Array,
    ) -> tuple[Sequence[Attribute], Sequence[Array]]:
        values = self.kernels.to_numpy(output)
        if fault.kind in ("value", "term"):
            if any(np.shares_memory(values, self.kernels.to_numpy(x)) for x in inputs):
                raise TraceError(
                    f"op {self.at_op} ({op.name}) writes a view of its input: no fault there"
                )
            if fault.kind == "value":
                _flip(values, fault.element, fault.mask)
            else:
                shape = tuple(int(d) for d in values.shape)
                arrays = [self._numpy(x) for x in inputs]
                honest = partial_results(op, attributes, arrays, shape, fault.element)
                lying = faulty_partials(honest, op, fault.term, fault.mask)
                values.reshape(-1)[fault.element] = lying[-1]
        elif fault.kind == "attribute":
            changed = list(attributes)
            for i, value in enumerate(changed):
                if isinstance(value, np.float32):
                    changed[i] = _negated(value)
                    return changed, inputs
            raise TraceError(f"op {self.at_op} ({op.name}) has no float attribute to lie about")
        else:
            swapped = list(inputs)
            other = self._numpy(inputs[fault.slot])
            if other.size == 0:
                raise TraceError(f"op {self.at_op} ({op.name}) input {fault.slot} is empty")
            lying = (other + np.float32(1.0)).astype(np.float32)
            if np.array_equal(lying.view(np.uint32), other.view(np.uint32)):
                # Every value absorbs the 1 (infinities, NaNs, |x| >= 2^24): negate one.
                lying.reshape(-1)[0] = _negated(lying.reshape(-1)[0])
            swapped[fault.slot] = self.kernels.from_numpy(lying)
            return attributes, swapped
        return attributes, inputs

    def record_state(self, arrays: Sequence[Array]) -> None:
        fault = self.fault
        if fault is not None and fault.kind == "state" and fault.step == self.at_step:
            tampered = self._numpy(arrays[fault.element])
            _flip(tampered, 0, fault.mask)
            arrays = [
                *arrays[: fault.element],
                self.kernels.from_numpy(tampered),
                *arrays[fault.element + 1 :],
            ]
        self.state_roots.append([tensor_root(self.kernels.to_numpy(a)) for a in arrays])
        super().record_state(arrays)
        self.at_step += 1
        self.at_op = 0


def _state_roots(state: State) -> list[bytes]:
    ordered_state = ordered(state)
    names = sorted(ordered_state, key=lambda n: n.encode())
    return [tensor_root(np.asarray(ordered_state[n], np.float32)) for n in names]


class ReplayProvider(TraceProvider):
    """Segment ``segment`` of ``task`` replayed from ``start``, with ``claimed`` as the claimed
    end state, as one party sees it (``fault``: as a liar sees it)."""

    def __init__(
        self,
        task: Task,
        program: Program,
        segment: int,
        start: State,
        claimed: State,
        *,
        fault: Fault | None = None,
        cache: Path | None = None,
        backend: ExactBackend | None = None,
    ) -> None:
        super().__init__(program, segment)
        self.task = task
        self.start = ordered(start)
        self.claimed = ordered(claimed)
        self.fault = fault
        self.backend = backend or ExactBackend()
        key = hashlib.sha256(
            json.dumps(
                {
                    "program": program.root().hex(),
                    "segment": segment,
                    "start": _state_roots(self.start),
                    "claimed": _state_roots(self.claimed),
                    "fault": asdict(fault) if fault is not None else None,
                },
                default=lambda b: b.hex(),
                sort_keys=True,
            ).encode()
        ).hexdigest()[:32]
        self.cache = cache / key if cache is not None else None
        self._segment: SegmentTrace | None = None
        self._roots: list[list[bytes]] | None = None
        self._kept: dict[int, list[OpTensors | None]] = {}

    # --- replays ------------------------------------------------------------------------

    def _batches(self) -> np.ndarray:
        batches = np.array(self.task.segment_batches(self.segment), dtype=np.int64)
        fault = self.fault
        if fault is not None and fault.kind == "batch":
            batches[fault.step] = np.roll(batches[fault.step], 1) if batches.shape[1] > 1 else 0
            if np.array_equal(
                batches[fault.step], self.task.segment_batches(self.segment)[fault.step]
            ):
                batches[fault.step] = (batches[fault.step] + 1) % self.task.samples
        return batches

    def _replay(self, keep: set[int]) -> ReplayTracer:
        tracer = ReplayTracer(self.backend.kernels, keep, self.fault)
        session = self.backend.start(self.task, self.start, tracer=tracer)
        session.run(self._batches())
        spec = self.task.spec.verification
        session.traced_distances(self.start, self.claimed, spec.metric, spec.epsilon)
        return tracer

    def _load(self) -> None:
        if self._segment is not None:
            return
        if self.cache is not None and (self.cache / "trace.bin").is_file():
            self._segment = SegmentTrace.decode((self.cache / "trace.bin").read_bytes())
            raw = json.loads((self.cache / "states.json").read_text())
            self._roots = [[bytes.fromhex(r) for r in roots] for roots in raw]
            return
        tracer = self._replay(set())
        self._segment = tracer.segment
        self._roots = tracer.state_roots
        if self.cache is not None:
            self.cache.mkdir(parents=True, exist_ok=True)
            _write(self.cache / "trace.bin", self._segment.encode())
            states = json.dumps([[r.hex() for r in roots] for roots in self._roots])
            _write(self.cache / "states.json", states.encode())

    def _kept_step(self, step: int) -> list[OpTensors | None]:
        if step in self._kept:
            return self._kept[step]
        path = self.cache / f"step-{step}.npz" if self.cache is not None else None
        if path is not None and path.is_file():
            self._kept[step] = _read_tensors(path, self.records(step))
            return self._kept[step]
        tracer = self._replay({step})
        kept: list[OpTensors | None] = list(tracer.kept.get(step, []))
        if step < self.step_count:
            kept.append(None)  # the STATE record
        self._kept = {step: kept}
        if path is not None:
            _write_tensors(path, kept)
        return kept

    # --- TraceProvider ------------------------------------------------------------------

    def records(self, step: int) -> list[OpRecord]:
        self._load()
        assert self._segment is not None
        if step < self.step_count:
            return self._segment.steps[step].records
        if step == self.step_count and self._segment.distance is not None:
            return self._segment.distance.records
        raise TraceError(f"segment {self.segment} has no step {step}")

    def tensors(self, step: int, op: int) -> OpTensors:
        kept = self._kept_step(step)
        if not 0 <= op < len(kept) or kept[op] is None:
            raise TraceError(f"op {op} of step {step} has no tensors (a STATE record?)")
        tensors = kept[op]
        assert tensors is not None
        return tensors

    def state_roots(self, step: int) -> list[bytes]:
        if step < 0:
            return _state_roots(self.start)
        self._load()
        assert self._roots is not None
        return self._roots[step]

    def claimed_roots(self) -> list[bytes]:
        return _state_roots(self.claimed)

    def partials(self, step: int, op: int, element: int) -> np.ndarray:
        fault = self.fault
        honest = super().partials(step, op, element)
        if (
            fault is not None
            and fault.kind == "term"
            and (fault.step, fault.op, fault.element) == (step, op, element)
        ):
            return faulty_partials(honest, self.record(step, op).op, fault.term, fault.mask)
        return honest

    @property
    def trace_root(self) -> bytes:
        if self.fault is not None and self.fault.kind == "garbage":
            return random.Random(self.fault.step).randbytes(32)
        return super().trace_root


def _write(path: Path, data: bytes) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def _write_tensors(path: Path, kept: list[OpTensors | None]) -> None:
    arrays: dict[str, Any] = {}
    for j, tensors in enumerate(kept):
        if tensors is None:
            continue
        arrays[f"{j}/out"] = tensors.output
        for i, x in enumerate(tensors.inputs):
            arrays[f"{j}/in/{i}"] = x
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)


def _read_tensors(path: Path, records: list[OpRecord]) -> list[OpTensors | None]:
    with np.load(path) as data:
        out: list[OpTensors | None] = []
        for j, record in enumerate(records):
            if record.op == Op.STATE:
                out.append(None)
                continue
            inputs = tuple(np.array(data[f"{j}/in/{i}"]) for i in range(len(record.inputs)))
            out.append(OpTensors(inputs, np.array(data[f"{j}/out"])))
    return out


def fault_choices(provider: TraceProvider, kind: str, rng: random.Random) -> Fault | None:
    """A random fault of ``kind`` that applies to ``provider``'s segment (``None`` if none does)."""
    steps = list(range(provider.step_count + 1))
    rng.shuffle(steps)
    for step in steps:
        records = provider.records(step)
        ops = list(range(len(records)))
        rng.shuffle(ops)
        for op in ops:
            record = records[op]
            entry = provider.entry(step, op)
            if record.op in (Op.STATE, Op.RESHAPE):
                if kind == "state" and record.op == Op.STATE:
                    return Fault("state", step, op, element=rng.randrange(len(entry.sources)))
                continue
            shape = entry.shape or ()
            numel = int(np.prod(shape, dtype=np.int64))
            if kind == "value" and numel > 0 and not _reads_data_only(entry.sources):
                return Fault(
                    "value", step, op, element=rng.randrange(numel), mask=1 << rng.randrange(0, 23)
                )
            if kind == "term" and record.op in REDUCTIONS and entry.terms > 1 and numel > 0:
                fault = _term_fault(provider, step, op, numel, entry.terms, rng)
                if fault is not None:
                    return fault
            if kind == "attribute" and any(isinstance(a, np.float32) for a in record.attributes):
                return Fault("attribute", step, op)
            if kind == "input" and record.inputs:
                return Fault("input", step, op, slot=rng.randrange(len(record.inputs)))
        if kind == "batch" and step < provider.step_count:
            return Fault("batch", step)
        if kind == "garbage":
            return Fault("garbage", step)
    return None


def _reads_data_only(sources: Sequence[Source]) -> bool:
    """Whether an op reads only dataset and batch tensors: a gather of the batch's samples,
    whose output may be labels or token ids that later ops index with. A liar who goes on
    from a flipped index could not replay the step (the index is out of range), so value
    lies go elsewhere."""
    return bool(sources) and all(s.kind in (SourceKind.DATASET, SourceKind.BATCH) for s in sources)


# The bits a term lie tries, after the drawn low one: exponent bits, then the sign.
_TERM_MASKS = (1 << 23, 1 << 27, 1 << 29, 1 << 30, 1 << 31)


def _term_fault(
    provider: TraceProvider, step: int, op: int, numel: int, terms: int, rng: random.Random
) -> Fault | None:
    """A ``term`` lie at a random element and partial result of op ``op`` whose fold ends on
    another value than the honest one (``None`` if no mask tried moves it: every later
    partial result absorbs the flipped one)."""
    element = rng.randrange(numel)
    term = rng.randrange(1, terms + 1)
    honest = provider.partials(step, op, element)
    reduction = provider.record(step, op).op
    for mask in (1 << rng.randrange(0, 23), *_TERM_MASKS):
        lying = faulty_partials(honest, reduction, term, mask)
        if lying[-1:].view(np.uint32)[0] != honest[-1:].view(np.uint32)[0]:
            return Fault("term", step, op, element=element, term=term, mask=mask)
    return None
