"""Steps numbered from a learnt template against the plain tracer, over odd call sequences.

A seeded program of tracer calls (records of one to three inputs and of none, reshapes,
``STATE`` records over no arrays or the same one twice, chains, linear layers, the
optimizer's chains over every parameter) runs step after step over a kept state and pinned
data; most steps make the same calls over new arrays of the same shapes, so that
``Tracer._apply`` numbers them from the template learnt on an earlier one, and some differ
from it in one way: an array given twice, a known array (pinned, kept, the record's own
input) as a record's output, a reshape that copies or holds other values, an input of
another dtype, byte order, layout or array type, another shape, an extra call, an array of
an earlier step that was not kept, the trace read or data pinned mid-step, fewer arrays
kept. Shapes include 0-d, empty and one-value arrays. Every run is compared record by
record and root by root with ``tests.exact.plain_tracer.PlainTracer``; nothing is random
but the seeded generator, so a run gives the same records every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest

from agents.exact.cpu import CpuKernels
from agents.exact.ops import ChainPlan, Tracer
from agents.exact.optim import sgd_updates
from agents.exact.trace import Attribute, Op
from tests.exact.plain_tracer import PlainTracer
from tests.exact.test_tracer import (
    EDGE,
    NAN_PAYLOAD,
    _chain,
    _compare,
    _count_templates,
    _ops,
    _random_plan,
    _values,
)

F32 = np.float32

# The kept state's shapes (one array each): every kind of odd size.
_SHAPES: list[tuple[int, ...]] = [(4, 6), (6,), (), (0, 3), (1,), (2, 3, 4), (1, 1), (4,)]
_PINNED: list[tuple[int, ...]] = [(12, 6), (4, 6)]
# New arrays every step reads (a batch), first seen where a call reads them.
_BATCH: list[tuple[int, ...]] = [(4, 6), (4,), (2, 3, 4)]
_RECORD_OPS = (Op.ADD, Op.MUL, Op.NEG, Op.MAXIMUM, Op.SELECT, Op.SUM)
_MUTATIONS = (
    "alias",
    "known-output",
    "in-place",
    "copy-reshape",
    "lying-reshape",
    "dtype",
    "dtype-batch",
    "dtype-output",
    "shape",
    "extra",
    "leftover",
    "read",
    "pin",
    "keep-fewer",
)


class _Sub(np.ndarray):
    """A numpy subclass: not an ``np.ndarray`` by type."""


@dataclass
class _Call:
    """One tracer call of the program: ``inputs`` index the step's pool of arrays (pinned,
    then kept, then every output so far)."""

    kind: str
    inputs: list[int]
    shape: tuple[int, ...] = ()
    op: Op = Op.ADD
    attributes: list[Attribute] = field(default_factory=list)
    plan: ChainPlan | None = None
    momentum: bool = False
    # Whether its output (a record's, a reshape's) is read by no chain, linear layer or
    # optimizer: it may then be of another shape or dtype.
    free: bool = False


def _array(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A new C-contiguous float32 numpy array (0-d ones too, not numpy scalars)."""
    return np.array(_values(rng, shape), dtype=F32)


def _reshaped(shape: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
    size = int(np.prod(shape))
    choices = [(size,), (1, size), (size, 1), (*shape, 1)]
    return choices[int(rng.integers(len(choices)))]


def _program(rng: np.random.Generator, length: int) -> list[_Call]:
    shapes = [*_PINNED, *_SHAPES, *_BATCH]
    calls: list[_Call] = []
    outputs: dict[int, _Call] = {}  # a record's or a reshape's output: its call
    kinds = ["record"] * 5 + ["full", "reshape", "reshape", "state", "chain", "linear", "sgd"]
    for _ in range(length):
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "record":
            count = int(rng.integers(1, 4))
            inputs = [int(rng.integers(len(shapes))) for _ in range(count)]
            shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
            op = _RECORD_OPS[int(rng.integers(len(_RECORD_OPS)))]
            attributes: list[Attribute] = [F32(rng.choice(EDGE))] if rng.random() < 0.5 else []
            calls.append(_Call(kind, inputs, shape, op, attributes))
            outputs[len(shapes)] = calls[-1]
            shapes.append(shape)
        elif kind == "full":
            shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
            calls.append(_Call(kind, [], shape, Op.FULL, [F32(rng.choice(EDGE)), *shape]))
            outputs[len(shapes)] = calls[-1]
            shapes.append(shape)
        elif kind == "reshape":
            source = int(rng.integers(len(shapes)))
            shape = _reshaped(shapes[source], rng)
            calls.append(_Call(kind, [source], shape, Op.RESHAPE, [*shape]))
            outputs[len(shapes)] = calls[-1]
            shapes.append(shape)
        elif kind == "state":
            count = int(rng.integers(0, 4))
            calls.append(_Call(kind, [int(rng.integers(len(shapes))) for _ in range(count)]))
        elif kind == "chain":
            shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
            alike = [i for i, s in enumerate(shapes) if s == shape]
            inputs = [alike[int(rng.integers(len(alike)))] for _ in range(2)]
            plan = _random_plan(rng, 2, int(rng.integers(1, 6)), 4)
            calls.append(_Call(kind, inputs, shape, plan=plan))
            shapes += [shape] * len(plan.ops)
        elif kind == "linear":
            rows = [i for i, s in enumerate(shapes) if s == (4, 6)]
            biases = [i for i, s in enumerate(shapes) if s == (4,)]
            inputs = [rows[int(rng.integers(len(rows)))], rows[int(rng.integers(len(rows)))]]
            inputs.append(biases[int(rng.integers(len(biases)))])
            calls.append(_Call(kind, inputs, (4, 4)))
            shapes.append((4, 4))
        else:  # the optimizer over every kept array, gradients of the same shapes
            momentum = bool(rng.random() < 0.5)
            grads = []
            for shape in _SHAPES:
                alike = [i for i, s in enumerate(shapes) if s == shape]
                grads.append(alike[int(rng.integers(len(alike)))])
            calls.append(_Call(kind, grads, momentum=momentum))
            shapes += _SHAPES * (2 if momentum else 1)
    strict = {i for c in calls if c.kind in ("chain", "linear", "sgd") for i in c.inputs}
    for index, call in outputs.items():
        # Reshapes read their input's shape: their outputs keep theirs.
        call.free = index not in strict and call.kind != "reshape"
    for call in outputs.values():
        if call.kind == "reshape" and call.inputs[0] in outputs:
            outputs[call.inputs[0]].free = False
    return calls


def _other_dtype(values: np.ndarray, how: int) -> np.ndarray:
    """``values`` as an array the CPU path does not take as it is."""
    if how == 0:
        with np.errstate(invalid="ignore"):  # a NaN payload's signal bit
            return values.astype(np.float64)
    if how == 1:
        return values.astype(">f4")
    if how == 2:
        wide = np.repeat(values[..., None], 2, axis=-1)
        return wide[..., 0]  # strided (where it has more than one value)
    if how == 3:
        return np.where(np.abs(values) < 1e9, values, 0).astype(np.int32)  # NaN: 0
    return values.copy().view(_Sub)


def _step(
    rng: np.random.Generator,
    tracer: Any,
    kernels: CpuKernels,
    program: list[_Call],
    pinned: list[np.ndarray],
    state: list[np.ndarray],
    leftovers: list[np.ndarray],
    alike: bool = False,
) -> list[np.ndarray]:
    """Run ``program`` once (one step; unless ``alike``, perhaps varied, drawn from ``rng``)
    over ``state``; returns the next step's state."""
    E = _ops(kernels, tracer)
    mutation = _MUTATIONS[int(rng.integers(len(_MUTATIONS)))] if rng.random() < 0.4 else ""
    mutation = "" if alike else mutation
    target = int(rng.integers(len(program)))
    pool: list[Any] = [*pinned, *state, *(_array(rng, shape) for shape in _BATCH)]
    if mutation == "dtype-batch":  # a batch of another dtype or layout, where it may be
        strict = {i for c in program if c.kind in ("chain", "linear", "sgd") for i in c.inputs}
        strict |= {c.inputs[0] for c in program if c.kind == "reshape"}
        free = [i for i in range(len(pool) - len(_BATCH), len(pool)) if i not in strict]
        if free:
            which = free[int(rng.integers(len(free)))]
            pool[which] = _other_dtype(pool[which], int(rng.integers(5)))
    for index, call in enumerate(program):
        varied = index == target and mutation
        if varied == "read":
            tracer.trace_root()
        inputs = [pool[i] for i in call.inputs]
        if varied == "alias" and len(inputs) >= 2 and call.kind != "sgd":
            inputs[1] = inputs[0]
        if varied == "pin" and inputs:
            fresh = E.array(_array(rng, np.shape(inputs[0])))
            tracer.pin(fresh)
            leftovers.append(fresh)  # held, as pinned data is, for the tracer's lifetime
            inputs[0] = fresh
        if varied == "leftover" and call.kind == "record" and leftovers:
            inputs[0] = leftovers[int(rng.integers(len(leftovers)))]
        if varied == "dtype" and call.kind == "record":
            inputs[0] = _other_dtype(np.asarray(inputs[0]), int(rng.integers(5)))
        if varied == "extra":
            extra = _array(rng, (3,))
            tracer.record(Op.NEG, [], [inputs[0] if inputs else pinned[1]], extra)
            leftovers.append(extra)
        if call.kind in ("record", "full"):
            shape = (3,) if varied == "shape" else call.shape
            output: Any = _array(rng, shape)
            if call.kind == "full":
                output = np.full(shape, call.attributes[0], dtype=F32)
            if varied == "dtype-output" and call.free:
                output = _other_dtype(output, int(rng.integers(5)))
            elif varied == "known-output":
                output = pinned[1]
            elif varied == "in-place" and inputs:
                output = inputs[0]
            attributes = call.attributes
            if call.kind == "full":
                attributes = [call.attributes[0], *shape]
            tracer.record(call.op, attributes, inputs, output)
            # Later calls read an array of the program's shape (an unrecorded one if not).
            alike = np.shape(output) == call.shape
            pool.append(output if alike or call.free else _array(rng, call.shape))
        elif call.kind == "reshape":
            source = np.asarray(inputs[0])
            output = source.reshape(call.shape)
            if varied in ("copy-reshape", "lying-reshape"):
                output = output.copy()
                if varied == "lying-reshape" and output.size:
                    output.reshape(-1)[0] = F32(7.0) if output.reshape(-1)[0] != 7 else F32(8.0)
            tracer.record(Op.RESHAPE, call.attributes, [inputs[0]], output)
            pool.append(output)
        elif call.kind == "state":
            tracer.record_state(inputs)
        elif call.kind == "chain":
            assert call.plan is not None
            imms = np.array([0.5, -0.0, NAN_PAYLOAD[0], np.inf], dtype=F32)
            pool += _chain(E, call.plan, inputs, imms)[call.plan.inputs :]
        elif call.kind == "linear":
            x, weight, bias = inputs
            y = E.linear_forward(x, weight, bias)
            if y is None:  # the plain tracer: the ops one by one, as agents.exact.layers
                y = E.add(E.matmul_nt(x, weight), bias)
            pool.append(y)
        else:
            params = list(state)
            grads = inputs
            if varied == "alias":
                grads[0] = params[0]  # a parameter as its own gradient
            buffers: Sequence[Any] = [*grads] if call.momentum else [None] * len(params)
            done = sgd_updates(
                E, params, grads, buffers, lr=F32(0.125), momentum=F32(0.5), weight_decay=F32(0)
            )
            pool += [p for p, _ in done]
            if call.momentum:
                pool += [b for _, b in done]
    # The next state: the last array of each state shape the step made (or the old one).
    following = []
    for k, shape in enumerate(_SHAPES):
        made = [a for a in pool[len(pinned) + len(_SHAPES) :] if np.shape(a) == shape]
        candidate = made[-1] if made else state[k]
        ok = type(candidate) is np.ndarray and candidate.dtype == F32
        following.append(candidate if ok and candidate.flags.c_contiguous else state[k])
    tracer.record_state(following)
    keep = following[: len(following) // 2] if mutation == "keep-fewer" else following
    tracer.end_step(keep=keep)
    leftovers += [a for a in pool[len(pinned) :] if type(a) is np.ndarray][-4:]
    return following


def _run(seed: int, tracer: Any, kernels: CpuKernels, steps: int) -> None:
    program = _program(np.random.default_rng([seed, 1]), 6 + seed % 9)
    rng = np.random.default_rng([seed, 2])
    pinned = [_array(rng, shape) for shape in _PINNED]
    for array in pinned:
        tracer.pin(array)
    state = [_array(rng, shape) for shape in _SHAPES]
    leftovers: list[np.ndarray] = []
    for k in range(steps):
        # The first two steps alike: templates learnt from them (a tracer does not learn
        # again a sequence of calls it could not learn from once).
        state = _step(rng, tracer, kernels, program, pinned, state, leftovers, k < 2)
    tracer.begin_distance()
    tracer.record(Op.NEG, [], [state[0]], np.negative(state[0]))
    tracer.end_step()


@pytest.mark.parametrize("seed", range(24))
def test_odd_call_sequences_numbered_from_templates_trace_as_the_plain_tracer(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = _count_templates(monkeypatch)
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        _run(seed, tracer, kernels, 14)
    _compare(got, want)
    assert applied[True] >= 3, applied  # most steps were numbered from a template


def test_a_template_is_shared_by_tracers_of_other_pinned_and_kept_arrays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Templates are shared by the tracers of a process: one learnt by a tracer whose program
    # reads its pinned data numbers another tracer's steps, whose own pinned and kept arrays
    # are other objects (and of which some positions are new there).
    applied = _count_templates(monkeypatch)
    kernels = CpuKernels()
    tracers = [Tracer(kernels), Tracer(kernels)]
    plains = [PlainTracer(kernels), PlainTracer(kernels)]
    for got, want in zip(tracers, plains, strict=True):
        for tracer in (got, want):
            _run(3, tracer, kernels, 6)
    for got, want in zip(tracers, plains, strict=True):
        _compare(got, want)
    assert applied[True] >= 5, applied


def test_a_program_of_one_call_per_kind_alone_traces_as_the_plain_tracer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Steps of a single call (a STATE record closing them): a record of no inputs, a reshape
    # of a 0-d array, a STATE record over nothing, the same array twice.
    applied = _count_templates(monkeypatch)
    kernels = CpuKernels()
    programs = [
        [_Call("full", [], (), Op.FULL, [F32(-0.0)])],
        [_Call("full", [], (0, 3), Op.FULL, [F32(1.0), 0, 3])],
        [_Call("reshape", [4], (1,), Op.RESHAPE, [1])],
        [_Call("reshape", [5], (0,), Op.RESHAPE, [0])],
        [_Call("state", [])],
        [_Call("state", [2, 2])],
        [_Call("record", [3, 3, 3], (1, 1), Op.SELECT)],
    ]
    for program in programs:
        got, want = Tracer(kernels), PlainTracer(kernels)
        for tracer in (got, want):
            rng = np.random.default_rng(5)
            pinned = [_array(rng, shape) for shape in _PINNED]
            for array in pinned:
                tracer.pin(array)
            state = [_array(rng, shape) for shape in _SHAPES]
            for _ in range(4):
                calls = [replace(c, inputs=list(c.inputs)) for c in program]
                state = _step(rng, tracer, kernels, calls, pinned, state, [])
        _compare(got, want)
    assert applied[True] >= len(programs), applied


@pytest.mark.parametrize("how", range(5))
def test_new_arrays_of_another_dtype_or_layout_where_the_template_had_float32(
    how: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Steps alike over a new batch each, but for one array new to the step where the steps
    # alike had a new C-contiguous float32 numpy array: a batch read by two records, then a
    # record's output read by another (float64, big-endian, strided, int32, a subclass).
    applied = _count_templates(monkeypatch)
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        rng = np.random.default_rng([how, 3])
        state = _array(rng, (4, 6))
        for k in range(8):
            batch = _array(rng, (4, 6))
            if k == 3:
                batch = _other_dtype(batch, how)
            x = _array(rng, (4, 6))
            if k == 5:
                x = _other_dtype(x, how)
            y = _array(rng, (4, 6))
            tracer.record(Op.MUL, [], [batch, state], x)
            tracer.record(Op.ADD, [], [x, batch], y)
            tracer.record_state([y])
            tracer.end_step(keep=[y])
            state = y
    _compare(got, want)
    assert applied[False] >= 2 and applied[True] >= 3, applied


class _OneByOne(Tracer):
    """A tracer that numbers every call as it comes (it overrides a numbering method)."""

    def _over(self, values: np.ndarray, source: Any) -> bool:
        return super()._over(values, source)


@pytest.mark.parametrize("seed", range(24))
def test_steps_numbered_from_templates_number_their_arrays_as_one_by_one(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same roots are not enough: an array given twice where the template had two, or a known
    # array where it had a new one, hashes the same bytes under a number of its own. A step
    # numbered from a template numbers its arrays as the calls one by one do.
    applied = _count_templates(monkeypatch)
    kernels = CpuKernels()
    got, want = Tracer(kernels), _OneByOne(kernels)
    assert not want._templated
    for tracer in (got, want):
        _run(seed, tracer, kernels, 14)
    assert got._headers == want._headers
    assert len(got._closed) == len(want._closed)
    for mine, theirs in zip(got._closed, want._closed, strict=True):
        assert mine.slots.tolist() == theirs.slots.tolist()
        assert [(i, s.tolist()) for i, s in mine.states] == [
            (i, s.tolist()) for i, s in theirs.states
        ]
    assert applied[True] >= 3, applied
