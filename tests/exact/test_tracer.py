"""The tracer against a plain one: the same records, step roots and trace roots.

``agents.exact.ops.Tracer`` numbers arrays and hashes each closed step's new tensors as
one batch on a pool of threads with the compiled engines, while later steps compute.
``tests.exact.plain_tracer.PlainTracer`` builds every record with hashlib as its op runs.
Both trace the same computations: whole training steps of every example model and of
optimizer variants, and random op sequences over edge values, under every hashing
engine, outstanding limit and number of hashing threads.
"""

from __future__ import annotations

import concurrent.futures
import functools
import gc
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import pytest

from agents.commitment import engine, hashing, merkle_root, tensor_root
from agents.commitment import threads as threads_module
from agents.commitment.threads import DONE, FREE, RUNNING, HashingThreads, Job
from agents.exact import ops as tracer_module
from agents.exact.cpu import CpuKernels
from agents.exact.errors import ExactError
from agents.exact.kernels import Kernels
from agents.exact.ops import CHAIN_OPS, ChainPlan, ExactOps, Imm, StepScalar, Tracer
from agents.exact.trace import Op, SegmentTrace, encode_attributes
from agents.learning.backends import get_backend
from agents.learning.task import Task
from tests.exact.plain_tracer import PlainTracer
from tests.exact.tasks import EXAMPLE_NAMES, example_task, tiny_exact_spec

F32 = np.float32

EDGE = np.array(
    [0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, -1e-45, 1.17549435e-38, 3.4028235e38, np.inf, -np.inf],
    dtype=F32,
)
NAN_PAYLOAD = np.array([0x7FC00001, 0xFFC00000, 0x7F800001], dtype=np.uint32).view(F32)


@pytest.fixture(params=["shani", "libcrypto", "vector16", "hashlib"])
def hashing_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every tensor, record and tree of the tracer hashed by one engine (or hashlib)."""
    name = request.param
    chosen = None if name == "hashlib" else hashing._make_engine(name)
    if name != "hashlib" and chosen is None:
        pytest.skip(f"engine {name} is not available here")
    from agents.commitment import tree

    monkeypatch.setattr(tree, "engine", lambda: chosen)
    monkeypatch.setattr(tracer_module, "engine", lambda: chosen)
    return str(name)


def _ops(kernels: Kernels, tracer: object) -> ExactOps:
    """Exact ops recording into ``tracer``; a PlainTracer (or a Tracer's subclass) stands in
    for a Tracer."""
    return ExactOps(kernels, cast(Tracer, tracer))


def _compare(got: Tracer, want: PlainTracer) -> SegmentTrace:
    # The batched root first (it reads no record objects), then the records themselves.
    fast_root = got.trace_root()
    segment = got.segment
    reference = want.segment
    assert len(segment.steps) == len(reference.steps)
    for step, (mine, plain) in enumerate(zip(segment.steps, reference.steps, strict=True)):
        # Records compare by their bytes (a NaN immediate is not equal to itself).
        assert len(mine.records) == len(plain.records), f"step {step}"
        for index, (a, b) in enumerate(zip(mine.records, plain.records, strict=True)):
            assert a.encode() == b.encode(), f"step {step}, record {index}: {a.op.name} differs"
    if reference.distance is None:
        assert segment.distance is None
    else:
        assert segment.distance is not None
        assert [r.encode() for r in segment.distance.records] == [
            r.encode() for r in reference.distance.records
        ]
    assert want.trace_root() == reference.root() == segment.root() == fast_root
    assert got.step_roots() == reference.step_roots()
    assert SegmentTrace.decode(segment.encode()).root() == reference.root()
    return segment


def test_arrays_of_many_axes_and_new_shapes_in_every_group_trace_as_the_plain_tracer() -> None:
    # A tensor root's message holds its shape header: up to six axes it is laid out from the
    # tracer's table of headers (a shape met in a later group gets its row then), beyond
    # six (a longer header) as a record's message is.
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    shapes = [(3, 4), (2, 1, 3, 1, 2, 1, 2), (5,), (1, 2, 1, 2, 1, 2), (), (2, 2, 1, 1, 1, 1, 1, 2)]
    for tracer in (got, want):
        rng = np.random.default_rng(5)
        E = _ops(kernels, tracer)
        for k, shape in enumerate(shapes):
            x = E.array(_values(rng, shape))
            y = E.mul(E.add(x, x), 0.5)
            E.reshape(y, [int(np.prod(shape))])
            E.commit_state({"x": E.neg(y)})
            if k % 2:
                tracer.trace_root()  # a group per two shapes
    _compare(got, want)


# --- whole training steps --------------------------------------------------------------


def _variant_tasks() -> dict[str, Task]:
    from agents.learning import datasets

    variants: dict[str, dict[str, Any]] = {
        "sgd": {"optimizer": {"kind": "sgd", "momentum": 0.0}},
        "sgd-momentum-decay": {"optimizer": {"kind": "sgd", "momentum": 0.9, "weight_decay": 1e-3}},
        "adam-decay-low-beta": {"optimizer": {"kind": "adam", "beta1": 0.3, "weight_decay": 1e-2}},
        "mse": {
            "loss": "mse",
            "dataset": {
                "source": {
                    "builtin": "synthetic-regression",
                    "samples": 96,
                    "features": 6,
                    "outputs": 3,
                }
            },
        },
    }
    tasks = {}
    for name, overrides in variants.items():
        spec = tiny_exact_spec(**overrides)
        assert spec.dataset.source is not None
        tasks[name] = Task.bind(spec, datasets.build(spec.dataset.source))
    return tasks


def _replay_both(task: Task, steps: int, tracer: Tracer) -> tuple[Tracer, PlainTracer]:
    backend = get_backend("exact")
    start = task.initial_state()
    batches = task.batches(0, steps)
    plain = PlainTracer(backend.kernels)  # type: ignore[attr-defined]
    for traced in (tracer, plain):
        session = backend.start(task, start, tracer=traced)  # type: ignore[call-arg]
        session.run(batches)
        claimed = session.state()
        session.traced_distances(start, claimed, "l2", 1e-12)
    return tracer, plain


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_steps_trace_as_the_plain_tracer(name: str) -> None:
    task = example_task(name)
    kernels = get_backend("exact").kernels  # type: ignore[attr-defined]
    got, want = _replay_both(task, 3, Tracer(kernels))
    segment = _compare(got, want)
    assert segment.distance is not None
    assert all(step.records[-1].op is Op.STATE for step in segment.steps)


def test_optimizer_and_loss_variants_trace_as_the_plain_tracer() -> None:
    kernels = get_backend("exact").kernels  # type: ignore[attr-defined]
    for name, task in _variant_tasks().items():
        got, want = _replay_both(task, 4, Tracer(kernels))
        _compare(got, want)
        assert len(got.segment.steps) == 4, name


# --- random op sequences -------------------------------------------------------------------


def _values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Ordinary values with edge values and NaN payloads mixed in."""
    values = rng.standard_normal(shape).astype(F32)
    flat = values.reshape(-1)
    if flat.size:
        picks = rng.random(flat.size) < 0.2
        pool = np.concatenate([EDGE, NAN_PAYLOAD])
        flat[picks] = rng.choice(pool, int(picks.sum()))
    return values


_UNARY = (Op.NEG, Op.ABS, Op.SQRT, Op.EXP, Op.LOG)


def _random_plan(
    rng: np.random.Generator, inputs: int, steps: int, imms: int, kinds: str = ""
) -> ChainPlan:
    """Ops of every kind over ``inputs`` registers, earlier outputs and immediates (unary
    ops read a register; the others an immediate in any slot but not in every one); with
    ``kinds``, registers of every kind and reductions of full ones."""
    plan = ChainPlan(inputs, kinds)
    ops = sorted(CHAIN_OPS)
    for k in range(steps):
        full = [r for r in range(inputs + k) if plan.kinds[r] == 0]
        if kinds and rng.random() < 0.25:
            plan([Op.SUM, Op.AMAX][int(rng.integers(2))], full[int(rng.integers(len(full)))])
            continue
        op = ops[int(rng.integers(len(ops)))]
        arity = 1 if op in _UNARY else 3 if op is Op.SELECT else 2
        registers = [int(rng.integers(inputs + k)) for _ in range(arity)]
        operands: list[int] = list(registers)
        if arity > 1:
            for slot in range(arity):
                if rng.random() < 0.4:
                    operands[slot] = Imm(int(rng.integers(imms)))
            if all(type(o) is Imm for o in operands):
                operands[int(rng.integers(arity))] = registers[0]
        plan(op, *operands)
    return plan


@pytest.mark.parametrize("seed", range(8))
def test_a_chains_records_with_changing_immediates_are_built_as_anew(seed: int) -> None:
    # A plan builds again only the steps that read an immediate whose bits changed since the
    # last immediates (a schedule changes some per step): its prefixes and attributes are
    # those of a plan that builds every step, for immediates that change in one or several
    # places, by sign only (+0, -0), by NaN payload only, or not at all, of several ranks.
    rng = np.random.default_rng([seed, 4])
    kinds = "FRC" if seed % 2 else ""
    steps, imms = int(rng.integers(1, 14)), 4
    plan = _random_plan(np.random.default_rng([seed, 5]), 3, steps, imms, kinds)
    values = np.concatenate([EDGE, NAN_PAYLOAD, np.array([0.0, -0.0], dtype=F32)])
    current = np.asarray(rng.choice(values, imms), dtype=F32)
    for k in range(40):
        changed = rng.choice(imms, int(rng.integers(0, imms + 1)), replace=False)
        current = current.copy()
        current[changed] = rng.choice(values, len(changed))
        rank = int(rng.integers(1, 4)) if k % 5 else 2
        fresh = _random_plan(np.random.default_rng([seed, 5]), 3, steps, imms, kinds)
        prefixes, attributes = plan.records(current, rank)
        want_prefixes, want_attributes = fresh.records(current, rank)
        assert prefixes == want_prefixes, k
        # As the record format defines them (agents.exact.trace).
        assert prefixes == [
            struct.pack(">H", int(op)) + encode_attributes(attrs) + struct.pack(">H", n - 1)
            for op, attrs, n in zip(plan.ops, want_attributes, plan.counts, strict=True)
        ], k
        assert [
            tuple(a.tobytes() if type(a) is np.float32 else a for a in attrs)
            for attrs in attributes
        ] == [
            tuple(a.tobytes() if type(a) is np.float32 else a for a in attrs)
            for attrs in want_attributes
        ], k


_METHODS = {op: op.name.lower() for op in CHAIN_OPS}


def _one_by_one(E: ExactOps, plan: ChainPlan, inputs: list[Any], imms: np.ndarray) -> list[Any]:
    """The registers of ``plan`` over ``inputs`` computed by the ops one by one."""
    registers = list(inputs)
    for op, operands in zip(plan.ops, plan.operands, strict=True):
        values = [imms[o] if type(o) is Imm else registers[o] for o in operands]
        if op is Op.SUM or op is Op.AMAX:
            registers.append(getattr(E, op.name.lower())(values[0], -1))
        else:
            registers.append(getattr(E, _METHODS[op])(*values))
    return registers


def _chain(E: ExactOps, plan: ChainPlan, inputs: list[Any], imms: np.ndarray) -> list[Any]:
    """``E.run_chain``; where it does not run the chain (no tracer that takes one), the ops one
    by one."""
    registers = E.run_chain(plan, inputs, imms)
    return registers if registers is not None else _one_by_one(E, plan, inputs, imms)


def _random_trace(seed: int, E: ExactOps, tracer: Any, steps: int) -> None:
    """A seeded sequence of ops over a kept state, pinned data, reshapes of reshapes,
    immediates of every edge value and step scalars, and a distance step."""
    rng = np.random.default_rng(seed)
    data = E.array(_values(rng, (12, 6)))
    tracer.pin(data)
    state = {
        "param/a": E.array(_values(rng, (4, 6))),
        "param/b": E.array(_values(rng, (6,))),
        "param/c": E.array(_values(rng, ())),
    }
    immediates: list[Any] = [*EDGE.tolist(), *NAN_PAYLOAD, StepScalar(0.25, 0), 3, -2.5]
    for _ in range(steps):
        a, b = state["param/a"], state["param/b"]
        rows = E.array(rng.integers(0, 12, 4).astype(F32))
        x = E.index_select(data, rows, 0)
        pool = [a, x, E.mul(a, x)]
        for _ in range(int(rng.integers(4, 12))):
            left = pool[int(rng.integers(len(pool)))]
            kind = int(rng.integers(8))
            if kind == 0:
                op = [E.add, E.sub, E.mul, E.div, E.maximum, E.minimum][int(rng.integers(6))]
                other = immediates[int(rng.integers(len(immediates)))]
                pool.append(op(left, other) if rng.random() < 0.5 else op(other, left))
            elif kind == 1:
                pool.append(E.add(left, b))  # broadcast of a row vector
            elif kind == 2:
                pool.append([E.neg, E.abs, E.exp, E.sqrt][int(rng.integers(4))](left))
            elif kind == 3:  # a reshape of a reshape shares the first one's bytes
                flat = E.reshape(left, [24])
                pool.append(E.reshape(E.reshape(flat, [6, 4]), [4, 6]))
            elif kind == 4:
                pool.append(E.swap_last(E.swap_last(left)))
            elif kind == 5:
                pool.append(E.add(E.sum(left, 1), E.amax(left, 0)))
            elif kind == 6:
                pool.append(E.select(E.lt(left, 0.0), left, pool[0]))
            else:
                square = E.index_select(data, E.array(rng.integers(0, 12, 6).astype(F32)), 0)
                pool.append(E.matmul_nt(left, square))
        # The optimizer's shape of work: elementwise chains over the state and the pool,
        # with immediates and step scalars, an input read twice.
        c = pool[int(rng.integers(len(pool)))]
        t = E.mul(a, immediates[int(rng.integers(len(immediates)))])
        u = E.sub(E.add(t, pool[-1]), StepScalar(0.125, 1))
        new_a = E.select(E.le(u, 0.0), E.sqrt(E.abs(u)), c)
        new_b = E.add(E.mul(b, b), E.neg(b))
        # A chain over the state and the pool, immediates of every edge value.
        plan = _random_plan(rng, 3, int(rng.integers(1, 12)), 4)
        chain_imms = np.asarray(rng.choice(np.concatenate([EDGE, NAN_PAYLOAD]), 4), dtype=F32)
        chained = _chain(E, plan, [a, pool[-1], c], chain_imms)
        new_a = E.add(new_a, chained[int(rng.integers(len(chained)))])
        # A chain over registers of every kind (full, one value per row, one per column)
        # with reductions: its last full register goes on.
        rows = E.amax(x, 1)
        plan = _random_plan(rng, 3, int(rng.integers(1, 14)), 4, "FRC")
        chained = _chain(E, plan, [pool[-1], rows, b], chain_imms)
        fulls = [r for r, kind in enumerate(plan.kinds) if kind == 0]
        new_a = E.add(new_a, chained[fulls[-1]])
        # A chain over 0-d registers (its outputs stay 0-d arrays).
        counter = state["param/c"]
        plan = _random_plan(rng, 2, int(rng.integers(1, 6)), 4)
        chained = _chain(E, plan, [counter, E.neg(counter)], chain_imms)
        assert all(np.shape(r) == () for r in chained)
        new_c = E.add(E.add(counter, 1.0), chained[-1])
        state = {"param/a": new_a, "param/b": new_b, "param/c": new_c}
        E.commit_state(state)
    tracer.begin_distance()
    total = E.sum(E.reshape(state["param/a"], [24]), 0)
    E.div(total, E.maximum(E.abs(total), 1e-12))
    tracer.end_step()


@pytest.mark.parametrize("seed", range(6))
def test_random_sequences_trace_as_the_plain_tracer(seed: int, hashing_engine: str) -> None:
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        _random_trace(seed, _ops(kernels, tracer), tracer, 5)
    _compare(got, want)


def _own_threads(monkeypatch: pytest.MonkeyPatch, threads: int, **sizes: int) -> HashingThreads:
    """The tracers' hashing on a pool of ``threads`` hashing threads of its own (returned, to
    stop), and the module constants ``sizes`` (``_GROUP_BYTES`` and so on) set as given."""
    active = engine()
    if active is None:
        pytest.skip("no compiled hashing engine here")
    pool = HashingThreads(active, threads)
    monkeypatch.setattr(threads_module, "hashing_threads", lambda engine, count: pool)
    for name, value in sizes.items():
        monkeypatch.setattr(tracer_module, name, value)
    return pool


@pytest.mark.parametrize(
    ("outstanding", "threads", "group"),
    [(1, 1, 1 << 20), (1, 3, 1), (2, 2, 1 << 20), (8, 4, 256), (3, 2, 4096), (2, 5, 64 << 10)],
)
def test_outstanding_steps_threads_and_groups_do_not_change_roots(
    monkeypatch: pytest.MonkeyPatch, outstanding: int, threads: int, group: int
) -> None:
    # Small groups: every step handed over alone, its arrays split into parts hashed on
    # several threads at once; large ones: several steps per group.
    pool = _own_threads(
        monkeypatch,
        threads,
        _OUTSTANDING=outstanding,
        _GROUP_BYTES=group,
        _PART_BYTES=max(1, group // 4),
        _CUT_BYTES=max(1, group // 2),
    )
    monkeypatch.setattr(tracer_module, "_HASHING_THREADS", threads)
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    try:
        for tracer in (got, want):
            _random_trace(99, _ops(kernels, tracer), tracer, 9)
        _compare(got, want)
    finally:
        pool.stop()


Hashed = list[tuple[threading.Thread, Job]]


def _hashed_here(monkeypatch: pytest.MonkeyPatch, pool: HashingThreads) -> Hashed:
    """Every job hashed by a thread asking for its roots (not a hashing thread), with that
    thread, in order."""
    hashed: Hashed = []
    real = pool.hash

    def hash_here(job: Job) -> None:
        hashed.append((threading.current_thread(), job))
        real(job)

    monkeypatch.setattr(pool, "hash", hash_here)
    return hashed


def _trace_alike(
    kernels: Kernels, got: Tracer, want: PlainTracer, seed: int, steps: int, pool: HashingThreads
) -> None:
    """``_random_trace`` into both tracers, compared; ``pool`` stopped after."""
    try:
        for tracer in (got, want):
            _random_trace(seed, _ops(kernels, tracer), tracer, steps)
        _compare(got, want)
    finally:
        pool.pause(False)
        pool.stop()


def test_the_thread_reading_the_root_hashes_every_part_not_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The one hashing thread takes no job until the trace root is known: every part of
    # every group, none started, is hashed by the thread reading the root, without waiting
    # for the hashing thread (which would never come to them).
    pool = _own_threads(
        monkeypatch,
        1,
        _GROUP_BYTES=1 << 12,
        _OUTSTANDING=1 << 20,  # never waits mid-way
        _PART_BYTES=1 << 10,
        _CUT_BYTES=1 << 11,
    )
    pool.pause()
    hashed = _hashed_here(monkeypatch, pool)
    waits: list[int] = []
    monkeypatch.setattr(pool, "wait", waits.append)  # a wait would never end here
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    _trace_alike(kernels, got, want, 3, 4, pool)
    assert len(hashed) > 3  # several groups, each in several parts
    assert {thread for thread, _ in hashed} == {threading.current_thread()}
    assert sum(int(job.sizes.sum()) for _, job in hashed) == got.hashed_bytes
    assert not waits


def test_the_waiting_thread_hashes_the_newer_groups_before_waiting_for_a_running_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first part handed over is taken by a hashing thread that is stuck on it until the
    # thread reading the trace root starts waiting for it: by then that thread has hashed
    # every other part, the newest groups' included.
    pool = _own_threads(
        monkeypatch, 1, _GROUP_BYTES=1 << 12, _OUTSTANDING=1 << 20, _CUT_BYTES=1 << 11
    )
    pool.pause()  # the test plays the hashing thread
    events: list[str] = []  # in order: "hashed" here, "waits" for a running part
    taken: list[Job] = []
    submit, hash_job, wait = pool.submit, pool.hash, pool.wait

    def submit_and_take_the_first(job: Job) -> None:
        submit(job)
        if not taken and job.slot >= 0:
            assert pool.claim(job.slot)  # running, as on a hashing thread
            taken.append(job)

    def hashed_here(job: Job) -> None:
        hash_job(job)
        events.append("hashed")

    def waits(slot: int) -> None:
        events.append("waits")
        (job,) = taken
        assert slot == job.slot and pool.state(slot) == RUNNING
        hash_job(job)  # the stuck thread goes on
        pool.release(slot)
        wait(slot)

    monkeypatch.setattr(pool, "submit", submit_and_take_the_first)
    monkeypatch.setattr(pool, "hash", hashed_here)
    monkeypatch.setattr(pool, "wait", waits)
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    _trace_alike(kernels, got, want, 8, 6, pool)
    assert events.count("waits") == 1
    assert events.count("hashed") > 3
    assert events[-1] == "waits"


def test_each_part_is_hashed_once_by_whichever_thread_takes_it_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With the hashing thread free, each part is hashed once, by the hashing thread or by
    # the thread reading the roots: none here twice, every other one hashed by the thread
    # (how many the thread takes depends on when the system runs it).
    pool = _own_threads(monkeypatch, 1, _GROUP_BYTES=1 << 12, _CUT_BYTES=1 << 10)
    hashed = _hashed_here(monkeypatch, pool)
    jobs: list[Job] = []
    make = pool.job

    def noted(addresses: np.ndarray, sizes: np.ndarray, arrays: Any) -> Job:
        jobs.append(make(addresses, sizes, arrays))
        return jobs[-1]

    monkeypatch.setattr(pool, "job", noted)
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    _trace_alike(kernels, got, want, 4, 6, pool)
    here = [id(job) for _, job in hashed]
    assert len(set(here)) == len(here)
    there = [job for job in jobs if id(job) not in set(here)]
    assert all(job.slot >= 0 and pool.state(job.slot) == DONE for job in there)
    assert all(job.finished for job in jobs)
    assert sum(int(job.sizes.sum()) for job in jobs) == got.hashed_bytes > 0


def test_tracers_side_by_side_trace_as_alone() -> None:
    # Replays in several threads share the hashing pool: each gets its own roots.
    kernels = CpuKernels()
    alone = PlainTracer(kernels)
    _random_trace(5, _ops(kernels, alone), alone, 6)
    tracers = [Tracer(kernels) for _ in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as replays:
        done = [replays.submit(_random_trace, 5, ExactOps(kernels, t), t, 6) for t in tracers]
        for future in done:
            future.result()
    for tracer in tracers:
        _compare(tracer, alone)


def test_the_eager_path_traces_the_same_roots() -> None:
    from agents.exact.eager import EagerKernels

    cpu, eager = CpuKernels(), EagerKernels("cpu")
    got, want = Tracer(eager), PlainTracer(cpu)
    _random_trace(7, ExactOps(eager, got), got, 3)
    _random_trace(7, _ops(cpu, want), want, 3)
    _compare(got, want)


# --- the record path -------------------------------------------------------------------------


def test_signed_zeros_and_nans_are_distinct_immediates() -> None:
    # Record prefixes are encoded once per site: +0 and -0 (equal as numbers) and NaN
    # payloads must still be sites of their own, in the records and in the trace root.
    kernels = CpuKernels()
    tracer, plain = Tracer(kernels), PlainTracer(kernels)
    for each in (tracer, plain):
        E = ExactOps(kernels, each)  # type: ignore[arg-type]
        x = E.array(np.arange(3, dtype=F32))
        for value in (0.0, -0.0, 0.0, float("nan"), -0.0, np.float32(np.inf)):
            E.mul(x, value)
        E.mul(x, NAN_PAYLOAD[0])
        E.mul(x, NAN_PAYLOAD[1])
        E.mul(x, 1)
        E.mul(x, 1.0)
        each.end_step()
    _compare(tracer, plain)
    records = tracer.segment.steps[0].records
    bits = [r.attributes[1].view(np.uint32) for r in records]  # type: ignore[union-attr]
    assert [int(b) for b in bits[:3]] == [0x00000000, 0x80000000, 0x00000000]
    # +0, -0, NaN, inf, two NaN payloads, 1
    assert len({r.encode()[:-32] for r in records}) == 7


def test_a_distance_cannot_begin_mid_step() -> None:
    kernels = CpuKernels()
    tracer = Tracer(kernels)
    E = ExactOps(kernels, tracer)
    E.add(E.array(np.ones(2, F32)), 1.0)
    with pytest.raises(ExactError, match="middle of a step"):
        tracer.begin_distance()
    tracer.end_step()
    assert tracer.segment.root() == merkle_root(
        [merkle_root([tracer.segment.steps[0].records[0].digest()])]
    )


def test_an_empty_trace_and_an_empty_step() -> None:
    kernels = CpuKernels()
    tracer = Tracer(kernels)
    assert tracer.segment.root() == merkle_root([])
    tracer.end_step()
    assert tracer.segment.steps[0].records == []
    assert tracer.segment.root() == merkle_root([merkle_root([])])


def test_the_trace_can_be_read_between_steps() -> None:
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    roots: list[list[bytes]] = [[], []]
    pair: tuple[Tracer | PlainTracer, ...] = (got, want)
    for i, tracer in enumerate(pair):
        E = _ops(kernels, tracer)
        x = E.array(np.arange(6, dtype=F32))
        for _ in range(3):
            x = E.mul(E.reshape(x, [2, 3]), 1.5)
            x = E.reshape(x, [6])
            E.commit_state({"x": x})
            roots[i].append(tracer.segment.root())
    assert roots[0] == roots[1]
    assert got.segment.steps[-1].records[-1].output == merkle_root(
        [tensor_root(np.arange(6, dtype=F32) * F32(1.5) ** 3)]
    )


def test_arrays_are_known_by_identity_only_while_alive() -> None:
    # Temporaries freed between ops get new arrays at the same addresses; each must be
    # hashed for what it holds when recorded.
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)

    def run(tracer: Any) -> Iterator[None]:
        E = ExactOps(kernels, tracer)
        for i in range(50):
            E.add(E.array(np.full(8, i, F32)), 1.0)  # the input array dies after its op
            yield
        tracer.end_step()

    for tracer in (got, want):
        for _ in run(tracer):
            pass
    _compare(got, want)


@pytest.mark.parametrize("path", ["cpu", "eager"])
def test_the_trace_can_be_read_mid_step_while_temporaries_die(path: str) -> None:
    # Reading the root in the middle of a step covers the closed steps only and hands the
    # open step's new arrays to the hashing threads; they must stay known by identity until
    # the step closes, on the eager path too, where the tracer hashes a numpy copy of each
    # tensor and nothing else would hold the tensor itself.
    from agents.exact.eager import EagerKernels

    kernels: Kernels = CpuKernels() if path == "cpu" else EagerKernels("cpu")
    got, want = Tracer(kernels), PlainTracer(CpuKernels())
    mid: list[bytes] = []
    for tracer, own in ((got, kernels), (want, CpuKernels())):
        E = _ops(own, tracer)
        x = E.array(np.arange(8, dtype=F32))
        x = E.mul(x, 1.5)
        E.commit_state({"x": x})
        kept = E.add(x, 2.0)
        for i in range(40):
            E.add(E.array(np.full(8, i, F32)), 1.0)  # the input array dies after its op
            if i == 5:
                mid.append(tracer.trace_root())
        E.commit_state({"x": E.mul(kept, -0.0)})
    assert mid[0] == mid[1]
    _compare(got, want)


# --- reshapes over their input's memory ------------------------------------------------------


class _HashLog(Tracer):
    """A tracer that notes the size of every array it hands to the hashing threads."""

    def __init__(self, kernels: Any) -> None:
        super().__init__(kernels)
        self.hashed: list[int] = []

    def _hash(
        self, arrays: list[np.ndarray], starts: list[int], sizes: list[int], waiting: bool = False
    ) -> Any:
        assert sizes == [values.nbytes for values in arrays]
        self.hashed += [values.size for values in arrays]
        return super()._hash(arrays, starts, sizes, waiting)


class _CopyingReshape(CpuKernels):
    """CPU kernels whose reshape returns a copy, not a view."""

    def reshape(self, x: np.ndarray, shape: Any) -> np.ndarray:
        return super().reshape(x, shape).copy()


def _reshapes(E: ExactOps, tracer: Any) -> None:
    x = E.mul(E.array(np.arange(2048, dtype=F32) - F32(1000.5)), 0.25)  # 2048 values
    flat = E.reshape(x, [4, 512])  # 2048 values again: a view of x on the CPU path
    again = E.reshape(E.reshape(flat, [2048]), [8, 16, 16])
    E.add(again, 1.0)
    E.commit_state({"a": again, "b": flat})


def test_a_reshape_over_its_input_takes_its_merkle_root() -> None:
    kernels = CpuKernels()
    got, want = _HashLog(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        _reshapes(_ops(kernels, tracer), tracer)
    _compare(got, want)
    # The input array, x and the sum (2048 values each); none of the three reshapes.
    assert got.hashed == [2048, 2048, 2048]
    records = got.segment.steps[0].records
    assert records[1].op is Op.RESHAPE
    assert records[1].output != records[1].inputs[0]  # same Merkle root, other shape header


def test_a_reshape_that_copies_is_hashed() -> None:
    kernels = _CopyingReshape()
    got, want = _HashLog(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        _reshapes(_ops(kernels, tracer), tracer)
    _compare(got, want)
    assert got.hashed == [2048] * 6


def test_a_reshape_record_of_other_values_is_hashed_for_them() -> None:
    # A record is hashed for what its arrays hold: an output of the input's size in other
    # memory (a faulty kernel, a lie under test) gets its own root.
    kernels = CpuKernels()
    got, want = _HashLog(kernels), PlainTracer(kernels)
    x = np.arange(1024, dtype=F32)
    lie = x.reshape(4, 256) + F32(1.0)
    same_memory_other_size = x[:512].reshape(2, 256)
    for tracer in (got, want):
        tracer.record(Op.RESHAPE, [4, 256], [x], lie)
        tracer.record(Op.RESHAPE, [2, 256], [x], same_memory_other_size)
        tracer.end_step()
    _compare(got, want)
    assert sorted(got.hashed) == [512, 1024, 1024]


def test_an_attribute_of_another_type_is_refused_even_when_equal_to_a_known_one() -> None:
    kernels = CpuKernels()
    tracer = Tracer(kernels)
    x = np.ones((2, 3), dtype=F32)
    tracer.record(Op.SUM, [1], [x], np.ones((2, 1), dtype=F32))
    for bad in (1.0, True, np.float64(1.0)):
        with pytest.raises(ExactError, match="attribute must be"):
            tracer.record(Op.SUM, [bad], [x], np.ones((2, 1), dtype=F32))  # type: ignore[list-item]


def _until_hashed(pool: HashingThreads) -> None:
    """Until the hashing threads have hashed every job submitted (their arrays let go)."""
    for _ in range(2000):
        if not pool.reap():
            return
        time.sleep(0.005)
    raise AssertionError("the hashing threads did not finish in 10 s")


def test_a_dropped_tracer_leaves_its_arrays_alive_until_hashed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The hashing threads read arrays by address: a tracer dropped while its group waits
    # to be hashed must not free them under the thread.
    import weakref

    pool = _own_threads(monkeypatch, 1, _GROUP_BYTES=1)
    pool.pause()  # the one hashing thread takes nothing until resumed
    kernels = CpuKernels()
    tracer = Tracer(kernels)
    E = ExactOps(kernels, tracer)
    out = E.add(E.array(np.arange(4096, dtype=F32)), 1.0)
    alive = weakref.ref(out)
    tracer.end_step()  # handed over: queued
    del E, out, tracer
    gc.collect()
    try:
        assert alive() is not None
        pool.pause(False)
        _until_hashed(pool)
        gc.collect()
        assert alive() is None
    finally:
        pool.pause(False)
        pool.stop()


def test_a_closed_steps_arrays_are_let_go_once_hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing but the job that hashes them holds a closed step's arrays: once their part is
    # hashed they are let go at the next step's end, though their roots are not collected
    # yet (their memory goes to the next steps' tensors). The roots stay the plain tracer's.
    import weakref

    pool = _own_threads(monkeypatch, 1, _GROUP_BYTES=1, _OUTSTANDING=8)
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    alive = []
    try:
        for tracer in (got, want):
            E = _ops(kernels, tracer)
            x = E.array(np.arange(4096, dtype=F32))
            out = E.mul(E.add(x, 1.0), 0.5)
            tracer.end_step()
            alive.append(weakref.ref(out))
            del E, x, out
        for _ in range(2000):  # the hashing thread is past the step's one part
            if pool.state(0) == DONE:
                break
            time.sleep(0.005)
        assert pool.state(0) == DONE and pool.state(1) == FREE
        gc.collect()
        assert alive[0]() is not None  # held until the tracer sees it hashed
        for tracer in (got, want):
            tracer.end_step()  # an empty step
        gc.collect()
        assert len(got._batches) == 1  # handed over, its roots not collected
        assert alive[0]() is None
        _compare(got, want)
    finally:
        pool.stop()


def test_hashed_bytes_counts_each_new_tensor_once() -> None:
    # Two steps: an input, three outputs and a reshape over its input's memory (not hashed);
    # the kept state and a pinned array are not hashed again in the second step.
    kernels = CpuKernels()
    tracer = Tracer(kernels)
    E = ExactOps(kernels, tracer)
    data = np.arange(600, dtype=F32)
    tracer.pin(data)
    x = E.array(np.linspace(-1, 1, 300, dtype=F32))
    y = E.mul(E.add(x, 1.0), 0.5)
    flat = E.reshape(y, [3, 100])
    E.sum(flat, 1)
    tracer.end_step(keep=[y])
    assert tracer.hashed_bytes == 0  # nothing handed over before a group fills
    tracer.trace_root()
    first = 4 * (300 + 300 + 300 + 3)
    assert tracer.hashed_bytes == first
    E.add(y, 2.0)
    E.add(data, 1.0)  # the pinned array itself
    tracer.end_step()
    tracer.trace_root()
    assert tracer.hashed_bytes == first + 4 * 300 + 4 * 600


def _path_kernels(path: str) -> Kernels:
    if path == "eager":
        from agents.exact.eager import EagerKernels

        return EagerKernels("cpu")
    return CpuKernels()


@pytest.mark.parametrize(("seed", "path"), [(0, "cpu"), (1, "cpu"), (2, "cpu"), (3, "eager")])
def test_linear_layers_trace_as_the_plain_tracer(seed: int, path: str) -> None:
    # A traced linear layer's backward pass runs its kernels itself and records them in one
    # call: the records and products must be the ops' one by one, for shapes on either side
    # of the product's transposed path (few columns), one row, one output, and edge values.
    from agents.exact.layers import linear_forward

    kernels = CpuKernels()
    shapes = [(1, 1, 1), (3, 5, 2), (20, 7, 3), (40, 33, 17), (64, 64, 10), (5, 0, 4)]
    got, want = Tracer(_path_kernels(path)), PlainTracer(kernels)
    for tracer in (got, want):
        E = _ops(tracer.kernels, tracer)
        layer = np.random.default_rng(seed)  # the same values for both tracers
        for rows, inputs, outputs in shapes:
            for bias, input_grad in [(True, True), (False, True), (True, False), (False, False)]:
                params = {"l.weight": E.array(_values(layer, (outputs, inputs)))}
                if bias:
                    params["l.bias"] = E.array(_values(layer, (outputs,)))
                grads: dict[str, Any] = {}
                x = E.array(_values(layer, (rows, inputs)))
                y, backward = linear_forward(E, params, grads, "l", x, input_grad=input_grad)
                dx = backward(E.mul(y, E.array(_values(layer, (rows, outputs)))))
                assert (dx is None) == (not input_grad)
                assert sorted(grads) == sorted(params)
                E.commit_state({**params, **{f"g/{k}": v for k, v in grads.items()}})
    _compare(got, want)


@pytest.mark.parametrize(("seed", "path"), [(0, "cpu"), (1, "cpu"), (2, "eager")])
def test_conv_layers_trace_as_the_plain_tracer(seed: int, path: str) -> None:
    # A traced convolution's backward pass (and a linear layer's forward pass) runs its
    # kernels itself and records them in one call: the ops' records one by one, for several
    # geometries, with and without the input gradient, with edge values.
    from agents.exact.layers import conv2d_forward

    kernels = CpuKernels()
    geometries = [(2, 1, 5, 5, 3, 3, 1, 0), (3, 2, 6, 7, 4, 3, 2, 1), (1, 3, 4, 4, 2, 1, 1, 2)]
    got, want = Tracer(_path_kernels(path)), PlainTracer(kernels)
    for tracer in (got, want):
        E = _ops(tracer.kernels, tracer)
        rng = np.random.default_rng(seed)  # the same values for both tracers
        for batch, channels, height, width, out, kernel, stride, padding in geometries:
            for input_grad in (True, False):
                params = {
                    "c.weight": E.array(_values(rng, (out, channels, kernel, kernel))),
                    "c.bias": E.array(_values(rng, (out,))),
                }
                grads: dict[str, Any] = {}
                x = E.array(_values(rng, (batch, channels, height, width)))
                y, backward = conv2d_forward(
                    E, params, grads, "c", x, stride=stride, padding=padding, input_grad=input_grad
                )
                dx = backward(E.mul(y, E.array(_values(rng, tuple(y.shape)))))
                if input_grad:
                    assert dx is not None and tuple(dx.shape) == tuple(x.shape)
                else:
                    assert dx is None
                E.commit_state({**params, **{f"g/{k}": v for k, v in grads.items()}})
    _compare(got, want)


def test_arrays_of_up_to_eight_axes_trace_as_the_plain_tracer() -> None:
    # A tensor root's message is laid out in a fixed slot for headers of up to six axes,
    # the general way beyond: both in one batch, and 0-d arrays.
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        E = _ops(kernels, tracer)
        rng = np.random.default_rng(11)
        state = {}
        for axes in range(9):
            shape = tuple(int(d) for d in rng.integers(1, 3, axes))
            x = E.array(_values(rng, shape))
            state[f"a/{axes}"] = E.mul(E.add(x, 1.5), x)
        E.commit_state(state)
    _compare(got, want)


def test_an_empty_chain_runs_and_records_nothing() -> None:
    kernels = CpuKernels()
    tracer = Tracer(kernels)
    E = ExactOps(kernels, tracer)
    a = E.array(np.arange(3, dtype=F32))
    registers = E.run_chain(ChainPlan(1), [a], np.zeros(0, dtype=F32))
    assert registers is not None and len(registers) == 1 and registers[0] is a
    tracer.end_step()
    assert tracer.segment.steps[0].records == []


@pytest.mark.parametrize(
    "imms",
    [
        np.array([0.5], dtype=np.float64),
        np.array([0.5], dtype=np.float16),
        np.array([[0.5]], dtype=F32),
        [0.5],
    ],
    ids=["float64", "float16", "two-axes", "list"],
)
def test_a_chain_refuses_immediates_that_are_not_one_axis_of_float32(imms: Any) -> None:
    # The kernels read the immediates as they are: a float64 one would compute in double.
    kernels = CpuKernels()
    E = ExactOps(kernels, Tracer(kernels))
    plan = ChainPlan(1)
    plan(Op.ADD, 0, Imm(0))
    a = E.array(np.arange(4, dtype=F32))
    with pytest.raises(ExactError, match="one axis of float32"):
        E.run_chain(plan, [a], imms)
    with pytest.raises(ExactError, match="one axis of float32"):
        E.run_chains(plan, [[a]], imms)


def test_a_convolution_with_a_flag_for_its_stride_is_refused_as_op_by_op() -> None:
    # A recorded sequence's plan is cached by its attributes' values: True equals 1, so the
    # sequence path must not take a stride that the record path refuses.
    from agents.exact.layers import conv2d_forward

    kernels = CpuKernels()
    E = ExactOps(kernels, Tracer(kernels))
    rng = np.random.default_rng(0)
    params = {
        "c.weight": E.array(_values(rng, (2, 1, 3, 3))),
        "c.bias": E.array(_values(rng, (2,))),
    }
    x = E.array(_values(rng, (1, 1, 5, 5)))
    conv2d_forward(E, params, {}, "c", x, stride=1, padding=0)
    with pytest.raises(ExactError, match="attribute must be"):
        conv2d_forward(E, params, {}, "c", x, stride=True, padding=0)


def test_layers_over_aliased_strided_and_recycled_arrays_trace_as_the_plain_tracer() -> None:
    # The one-call records of layers number their registers as ``record`` does, one op after
    # another: one array given as several registers (the input is the weight, the gradient
    # is both), inputs that are strided numpy views (not C-contiguous, copied to be hashed),
    # and, step after step, temporaries dropped so that new arrays may take freed identities.
    from agents.exact.layers import conv2d_forward, linear_forward

    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        E = _ops(kernels, tracer)
        rng = np.random.default_rng(5)
        for _ in range(3):
            grads: dict[str, Any] = {}
            square = E.array(_values(rng, (4, 4)))
            params = {"l.weight": square, "l.bias": E.array(_values(rng, (4,)))}
            y, backward = linear_forward(E, params, grads, "l", square)
            dx = backward(square)  # dy, x and the weight: one array
            strided = {
                "m.weight": _values(rng, (5, 3)).T,  # [3, 5], a transposed view
                "m.bias": _values(rng, (6,))[::2],  # [3], every other value
            }
            z, backward = linear_forward(E, strided, grads, "m", _values(rng, (6, 10))[:, ::2])
            dz = backward(_values(rng, (3, 6)).T)
            image = E.array(_values(rng, (2, 2, 3, 3)))
            conv = {"c.weight": image, "c.bias": E.array(_values(rng, (2,)))}  # x is the weight
            c, backward = conv2d_forward(E, conv, grads, "c", image, stride=1, padding=0)
            dc = backward(c)  # the output as its own gradient
            turned = _values(rng, (3, 2, 5, 4)).transpose(0, 1, 3, 2)  # [3, 2, 4, 5] view
            conv2 = {
                "d.weight": _values(rng, (2, 2, 3, 3))[:, :, ::-1, :],
                "d.bias": _values(rng, (4,))[1::2],
            }
            d, backward = conv2d_forward(E, conv2, grads, "d", turned, stride=2, padding=1)
            dd = backward(d)
            assert dx is not None and dz is not None and dc is not None and dd is not None
            state = {"y": y, "dx": dx, "z": z, "dz": dz, "c": c, "dc": dc, "d": d, "dd": dd}
            E.commit_state({**state, **{f"g/{k}": v for k, v in grads.items()}})
            del y, dx, z, dz, c, dc, d, dd, state, grads, square, params, image, conv, conv2
            del strided, turned
            gc.collect()
    _compare(got, want)


def _replay_alone(task: Task, tracer: Tracer) -> Tracer:
    """Two steps of ``task`` and the distance computation, traced by ``tracer``."""
    backend = get_backend("exact")
    start = task.initial_state()
    session = backend.start(task, start, tracer=tracer)  # type: ignore[call-arg]
    session.run(task.batches(0, 2))
    session.traced_distances(start, session.state(), "l2", 1e-12)
    return tracer


def test_example_steps_side_by_side_trace_as_alone() -> None:
    # Replays on several threads share the kernels (and their cache of transposes), the
    # layers' op sequences and the record prefixes: each gets the plain tracer's roots.
    kernels = get_backend("exact").kernels  # type: ignore[attr-defined]
    for name in ("cnn", "mlp"):
        task = example_task(name)
        _, want = _replay_both(task, 2, Tracer(kernels))
        with concurrent.futures.ThreadPoolExecutor(4) as replays:
            done = [replays.submit(_replay_alone, task, Tracer(kernels)) for _ in range(4)]
            for future in done:
                _compare(future.result(), want)


# --- steps numbered from a template ---------------------------------------------------------


def _count_templates(monkeypatch: pytest.MonkeyPatch) -> dict[bool, int]:
    """How often a closing step was numbered from a template (True) or not (False), with an
    empty cache of templates."""
    monkeypatch.setattr(tracer_module, "_TEMPLATES_BY_CALLS", {})
    applied = {True: 0, False: 0}
    apply = Tracer._apply

    def counted(self: Tracer, template: Any, keep: Any = ()) -> list[int] | None:
        kept = apply(self, template, keep)
        applied[kept is not None] += 1
        return kept

    monkeypatch.setattr(Tracer, "_apply", counted)
    return applied


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_steps_numbered_from_templates_trace_as_the_plain_tracer(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first step learns a template (its state is new to the trace), the second learns
    # another (its state is known), the others are numbered from it in one pass.
    applied = _count_templates(monkeypatch)
    kernels = get_backend("exact").kernels  # type: ignore[attr-defined]
    got, want = _replay_both(example_task(name), 6, Tracer(kernels))
    _compare(got, want)
    assert applied[True] >= 4


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_a_later_replay_numbers_every_step_from_the_templates_of_an_earlier_one(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Templates are shared by the tracers of a process: once one replay has learnt them, a
    # replay of the same task by a fresh tracer (its first step's state new to its trace, the
    # later steps' known) numbers every step from them, over as many steps as it runs.
    applied = _count_templates(monkeypatch)
    learnt: list[Tracer] = []
    learn = Tracer._learn

    def noted(self: Tracer, first: int, fresh: int, shared: int) -> Any:
        learnt.append(self)
        return learn(self, first, fresh, shared)

    monkeypatch.setattr(Tracer, "_learn", noted)
    kernels = get_backend("exact").kernels  # type: ignore[attr-defined]
    task = example_task(name)
    earlier = Tracer(kernels)
    _replay_both(task, 3, earlier)
    assert learnt and all(t is earlier for t in learnt)
    applied.update({True: 0, False: 0})
    got, want = _replay_both(task, 10, Tracer(kernels))
    _compare(got, want)
    assert all(t is earlier for t in learnt)  # nothing numbered one by one
    assert applied[True] >= 10


class _TogglingReshape(CpuKernels):
    """CPU kernels whose reshape returns other values (a copy of its input plus one) while
    ``lies`` is set, else a view."""

    lies = False

    def reshape(self, x: np.ndarray, shape: Any) -> np.ndarray:
        out = super().reshape(x, shape)
        return (out + F32(1.0)).astype(F32) if self.lies else out


def _varied_steps(kernels: _TogglingReshape, tracer: Any) -> None:
    """Steps that make the same tracer calls, most of them over arrays alike; some differ in
    one way a template must notice: an array given twice, a reshape of other values, an input
    that is a strided numpy view, another shape, a new array where the steps alike read a
    pinned one, the kept state's array in place of a new one, the trace read or data pinned
    in the middle of the step."""
    E = _ops(kernels, tracer)
    rng = np.random.default_rng(11)
    data = E.array(_values(rng, (12, 6)))
    extra = E.array(_values(rng, (4, 6)))
    tracer.pin(data)
    tracer.pin(extra)
    state = {"a": E.array(_values(rng, (4, 6))), "b": E.array(_values(rng, (6,)))}
    plan = ChainPlan(2)
    plan(Op.ADD, plan(Op.MUL, 0, Imm(0)), 1)
    for k in range(16):
        a, b = state["a"], state["b"]
        kernels.lies = k == 11
        rows = E.array(rng.integers(0, 12, 5 if k == 12 else 4).astype(F32))
        x = E.index_select(data, rows, 0)
        s = E.sum(x, 0)
        half, third = E.mul(a, 0.5), E.mul(a, 0.25)
        c = E.add(half, half if k == 10 else third)
        back = E.reshape(E.reshape(c, [24]), [4, 6])
        other = extra
        if k == 3:
            other = E.array(_values(rng, (4, 6)))
        elif k == 5:
            other = _values(rng, (4, 12))[:, ::2]
        if k == 6:
            tracer.trace_root()
        d = E.mul(back, other)
        if k == 7:
            tracer.pin(E.array(_values(rng, (3,))))
        chained = _chain(E, plan, [d, a], np.array([1.5], dtype=F32))
        new_a = E.add(chained[-1], s)
        new_b = E.neg(b)
        state = {"a": new_a, "b": b if k == 9 else new_b}
        E.commit_state(state)
    tracer.begin_distance()
    E.sum(E.reshape(state["a"], [24]), 0)
    tracer.end_step()


def test_steps_that_differ_from_their_template_trace_as_the_plain_tracer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied = _count_templates(monkeypatch)
    kernels = _TogglingReshape()
    got, want = Tracer(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        _varied_steps(kernels, tracer)
    _compare(got, want)
    # Steps 3, 5, 9, 10, 11 and 12 differ from the template learnt before them (6 and 7 are
    # numbered as they come); the steps alike are numbered from it.
    assert applied[False] >= 6
    assert applied[True] >= 5


def test_a_tracer_that_numbers_its_own_way_numbers_every_call_as_it_comes() -> None:
    class Noting(Tracer):
        def _number(self, array: Any) -> int:
            return super()._number(array)

    kernels = CpuKernels()
    assert Tracer(kernels)._templated
    assert not Noting(kernels)._templated


def test_the_cpu_path_reads_every_address_at_once_as_one_by_one() -> None:
    kernels = CpuKernels()
    base = np.arange(96, dtype=F32)
    arrays: list[np.ndarray] = [
        base,
        base[7:],
        base[::3],
        base.reshape(8, 12)[:, 5:].T,
        base[4:5].reshape(()),
        base[:0],
        np.zeros((2, 3), dtype=np.float64),
        np.empty(0, dtype=F32),
    ]
    assert kernels.addresses(arrays) == [kernels.address(a) for a in arrays]
    assert kernels.addresses(arrays) == [a.__array_interface__["data"][0] for a in arrays]


class _Sub(np.ndarray):
    """A numpy subclass: not an ``np.ndarray`` by type."""


def _packed(shapes: list[tuple[int, ...]]) -> np.ndarray:
    return np.array([d for shape in shapes for d in (len(shape), *shape)], dtype=np.int64)


def test_the_cpu_path_checks_every_array_at_once_as_numpy_does() -> None:
    # ``CpuKernels.float32_addresses`` reads each object's fields in one compiled call; the
    # base class asks numpy array by array. Both take exactly the C-contiguous float32
    # numpy arrays of the given shapes, and give their addresses.
    from agents.exact import cpu

    assert cpu._fields_hold_arrays()  # the compiled reading is the one under test here
    kernels = CpuKernels()
    base = np.arange(96, dtype=F32)
    taken: list[Any] = [
        base,
        base[7:],
        base.reshape(8, 12)[2:5],
        base[4:5].reshape(()),
        base[:0],
        np.empty((0, 3), dtype=F32),
        base.reshape(2, 3, 1, 4, 2, 1, 2),
        np.ones((1, 1), dtype=F32),
    ]
    refused: list[Any] = [
        base[::3],
        base.reshape(8, 12)[:, 5:],
        base.reshape(8, 12).T,
        np.zeros((2, 3), dtype=np.float64),
        base.astype(">f4"),
        base.astype(np.int32),
        base.copy().view(_Sub),
        [1.0, 2.0],
        F32(1.0),
        None,
        "float32",
    ]
    for values in taken:
        shapes = [np.shape(values)]
        assert kernels.float32_addresses([values], shapes, _packed(shapes)) == [
            values.__array_interface__["data"][0]
        ]
        assert Kernels.float32_addresses(kernels, [values], shapes, _packed(shapes)) == [
            values.__array_interface__["data"][0]
        ]
        # Another shape: of the same rank (each axis one larger, or one axis one smaller),
        # another rank, or packed with an axis too many or too few.
        others = [tuple(d + 1 for d in np.shape(values)), (*np.shape(values), 1)]
        if values.ndim:
            others += [np.shape(values)[1:], (*np.shape(values)[:-1], np.shape(values)[-1] + 2)]
        for shape in [s for s in others if s != np.shape(values)]:
            for kind in (kernels, Kernels):
                if kind is kernels:
                    got = kernels.float32_addresses([values], [shape], _packed([shape]))
                else:
                    got = Kernels.float32_addresses(kernels, [values], [shape], _packed([shape]))
                assert got is None, (values.shape, shape)
        dims = _packed(shapes)
        for short in (dims[:-1], np.append(dims, 1), np.append(dims, [1, 1])):
            assert kernels.float32_addresses([values], shapes, short) is None
    for values in refused:
        shapes = [np.shape(values)]
        assert kernels.float32_addresses([values], shapes, _packed(shapes)) is None
        assert Kernels.float32_addresses(kernels, [values], shapes, _packed(shapes)) is None
    # Many at once: the addresses in order; one refused array anywhere refuses them all.
    shapes = [np.shape(v) for v in taken]
    want = [v.__array_interface__["data"][0] for v in taken]
    assert kernels.float32_addresses(taken, shapes, _packed(shapes)) == want
    assert kernels.float32_addresses([], [], _packed([])) == []
    for k, bad in enumerate(refused):
        mixed = [*taken[:3], bad, *taken[3:]]
        mixed_shapes = [*shapes[:3], np.shape(bad), *shapes[3:]]
        assert kernels.float32_addresses(mixed, mixed_shapes, _packed(mixed_shapes)) is None, k


def _template_case(
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[Any], np.ndarray, dict[int, int], list[Any], int, dict[str, Any]]:
    """A random step template and registers it applies to: classes of positions (some of
    them known before the step, some new: arrays to hash, views over an earlier new array's
    bytes), with what a tracer would pass ``template_numbers``; ``truth`` holds the numbers
    it must give, worked out here from the definitions."""
    first = int(rng.integers(0, 50))
    known_arrays = [_values(rng, (int(rng.integers(1, 4)), 3)) for _ in range(4)]
    known = {id(a): int(rng.integers(0, first + 1)) for a in known_arrays}
    hashed_arrays = [
        _values(rng, tuple(rng.integers(1, 4, int(rng.integers(0, 3))))) for _ in range(5)
    ]
    sources = [int(rng.integers(0, len(hashed_arrays))) for _ in range(2)]
    views = [hashed_arrays[k].reshape(-1) for k in sources]
    new = [*hashed_arrays, *views]
    leaders = [*new, *known_arrays[:3]]  # the last known array is not in the step
    order = rng.permutation(len(leaders))
    leaders = [leaders[k] for k in order]
    size = len(leaders) + 6
    classes = [*range(len(leaders)), *rng.integers(0, len(leaders), 6).tolist()]
    positions = rng.permutation(size)
    registers: list[Any] = [None] * size
    by_position = [0] * size
    for c, p in zip(classes, positions.tolist(), strict=True):
        registers[p] = leaders[c]
        by_position[p] = c
    firsts_by_class: dict[int, int] = {}
    for p, c in enumerate(by_position):
        firsts_by_class.setdefault(c, p)
    # Classes renumbered in the order of their first positions, as a template numbers them.
    class_order = sorted(firsts_by_class, key=firsts_by_class.__getitem__)
    renamed = {c: k for k, c in enumerate(class_order)}
    new_ids = [id(a) for a in new]
    offsets = [
        new_ids.index(id(leaders[c])) if id(leaders[c]) in new_ids else -1 for c in class_order
    ]
    where = {id(a): firsts_by_class[c] for c, a in enumerate(leaders)}
    checked = [where[id(a)] for a in hashed_arrays] + [where[id(v)] for v in views]
    checked += [where[id(hashed_arrays[k])] for k in sources]
    shapes = [registers[p].shape for p in checked]
    program = tracer_module.template_program(
        [renamed[c] for c in by_position],
        [firsts_by_class[c] for c in class_order],
        offsets,
        len(hashed_arrays),
        len(new),
        checked,
        [d for shape in shapes for d in (len(shape), *shape)],
    )
    keep = [known_arrays[3], hashed_arrays[0], views[1], _values(rng, (2,)), known_arrays[0]]
    number_of = dict(known)
    number_of.update({id(a): first + k for k, a in enumerate(new)})
    truth = {
        "numbers": [number_of[id(a)] for a in registers],
        "addresses": [registers[p].__array_interface__["data"][0] for p in checked],
        "keep": [number_of.get(id(a), -1) for a in keep],
    }
    return program, registers, _known_table(known), known, keep, first, truth


def _known_table(known: dict[int, int]) -> np.ndarray:
    return np.array([list(known), list(known.values())], dtype=np.int64).reshape(2, -1)


def _numbered(kernels: Kernels, compiled: bool, case: tuple[Any, ...]) -> list[int] | None:
    program, registers, table, _, keep, first, _ = case
    ids = np.array([id(a) for a in registers], dtype=np.int64)
    keep_ids = np.array([id(a) for a in keep], dtype=np.int64)
    method = (
        kernels.template_numbers
        if compiled
        else functools.partial(Kernels.template_numbers, kernels)
    )
    out = method(program, registers, ids, table, keep_ids, first)
    return None if out is None else out.tolist()


@pytest.mark.parametrize("seed", range(40))
def test_the_cpu_path_numbers_a_step_from_its_template_as_the_definitions_do(seed: int) -> None:
    # ``CpuKernels.template_numbers`` (one compiled call reading the arrays' fields) and the
    # base class's (numpy, array by array) give the numbers worked out from the definitions
    # where the template applies, and both refuse each way a step can differ from it.
    from agents.exact import cpu

    assert cpu._fields_hold_arrays()
    kernels = CpuKernels()
    rng = np.random.default_rng(seed)
    case = _template_case(rng)
    program, registers, table, known, keep, first, truth = case
    want = truth["numbers"] + truth["addresses"] + truth["keep"]
    assert _numbered(kernels, True, case) == want
    assert _numbered(kernels, False, case) == want
    classes = program[program[5] :][: program[0]]
    firsts = program[program[6] :][: program[1]]
    offsets = program[program[7] :][: program[1]]
    checked = program[program[8] :][: program[4]]
    repeated = [p for p in range(len(registers)) if p not in set(firsts.tolist())]
    new_first = int(firsts[int(np.flatnonzero(offsets >= 0)[0])])
    known_first = int(firsts[int(np.flatnonzero(offsets < 0)[0])])
    view_at = int(checked[int(program[2])])

    def with_register(p: int, value: Any) -> tuple[Any, ...]:
        changed = list(registers)
        changed[p] = value
        return (program, changed, table, known, keep, first, truth)

    def with_known(extra: dict[int, int]) -> tuple[Any, ...]:
        return (program, registers, _known_table(extra), extra, keep, first, truth)

    other_class = registers[int(firsts[(classes[repeated[0]] + 1) % len(firsts)])]
    shape = registers[new_first].shape
    strided = np.zeros(tuple(2 * d for d in shape), F32)[tuple(slice(None, None, 2) for _ in shape)]
    differing = [
        # another array where a class's array was repeated, or a class's array twice
        with_register(repeated[0], registers[repeated[0]].copy()),
        with_register(repeated[0], other_class),
        with_register(new_first, registers[known_first]),
        # a new array known before the step, a known one no longer known
        with_known({**known, id(registers[new_first]): 0}),
        with_known({k: v for k, v in known.items() if k != id(registers[known_first])}),
        # a checked array of another dtype, layout, shape or type; a view moved
        with_register(new_first, np.zeros(registers[new_first].shape, np.float64)),
        with_register(new_first, strided),
        with_register(new_first, np.zeros((*registers[new_first].shape, 1), F32)),
        with_register(new_first, registers[new_first].tolist()),
        with_register(view_at, registers[view_at].copy()),
        # too few registers
        (program, registers[:-1], table, known, keep, first, truth),
    ]
    for k, changed in enumerate(differing):
        if k == 6 and strided.flags.c_contiguous:
            continue  # one value or none: contiguous however it is strided
        assert _numbered(kernels, True, changed) is None, k
        assert _numbered(kernels, False, changed) is None, k


@pytest.mark.parametrize("seed", range(4))
def test_one_chain_over_several_groups_traces_as_the_plain_tracer(seed: int) -> None:
    # The optimizer's chains over every parameter run as one kernel call: each group's
    # records are those of its ops one by one (the plain tracer runs them so), groups of
    # every shape (0-d and empty ones included), an array given twice, one shared by groups.
    kernels = CpuKernels()
    rng = np.random.default_rng(seed)
    plan = _random_plan(rng, 3, int(rng.integers(1, 12)), 4)
    imms = np.asarray(rng.choice(np.concatenate([EDGE, NAN_PAYLOAD]), 4), dtype=F32)
    shapes = [(4, 6), (6,), (), (0, 3), (2, 3, 5), (1,)]
    values = [[_values(rng, shape) for _ in range(3)] for shape in shapes]
    got, want = Tracer(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        E = _ops(kernels, tracer)
        groups = [[E.array(v.copy()) for v in group] for group in values]
        groups[1][2] = groups[1][0]  # one array as two inputs of a group
        groups[5][1] = groups[5][0]
        shared = groups[0][1]
        groups.append([E.mul(shared, 2.0), shared, E.neg(shared)])  # an input of two groups
        if tracer is got:
            done = E.run_chains(plan, groups, imms)
            assert done is not None
        else:
            done = [_chain(E, plan, group, imms) for group in groups]
        E.commit_state({f"s{i}/{k}": r for i, regs in enumerate(done) for k, r in enumerate(regs)})
    _compare(got, want)


class _ChainCalls(Tracer):
    """A tracer that takes chains one call each (it overrides ``record_chain``)."""

    def __init__(self, kernels: Kernels) -> None:
        super().__init__(kernels)
        self.chain_calls = 0

    def record_chain(self, *args: Any, **kwargs: Any) -> None:
        self.chain_calls += 1
        super().record_chain(*args, **kwargs)


def test_chains_over_several_groups_go_one_call_each_to_a_tracer_that_takes_them_so() -> None:
    # ``run_chains`` records every group in one tracer call (``record_chains``), but for a
    # tracer that overrides ``record_chain``: that one gets each group's chain as before.
    kernels = CpuKernels()
    rng = np.random.default_rng(7)
    plan = _random_plan(rng, 2, 5, 2)
    imms = np.array([0.5, -0.0], dtype=F32)
    shapes = [(4, 6), (), (0, 3), (3,)]
    values = [[_values(rng, shape) for _ in range(2)] for shape in shapes]
    got, want = _ChainCalls(kernels), PlainTracer(kernels)
    for tracer in (got, want):
        E = _ops(kernels, tracer)
        groups = [[E.array(v.copy()) for v in group] for group in values]
        if tracer is got:
            done = E.run_chains(plan, groups, imms)
            assert done is not None
        else:
            done = [_chain(E, plan, group, imms) for group in groups]
        E.commit_state({f"s{i}/{k}": r for i, regs in enumerate(done) for k, r in enumerate(regs)})
    assert got.chain_calls == len(shapes)
    _compare(got, want)


def test_a_template_learnt_over_copying_reshapes_numbers_views_as_the_plain_tracer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Steps alike but for their reshapes: views over their input (sharing its Merkle root) in
    # some, copies (hashed for their own bytes) in others, each way after the other, one copy
    # holding other values (step 4, where a template of views taken for copies gives it its
    # input's root); a template learnt from one numbers the other as the plain tracer does
    # (copies numbered as views only where they are over their input's bytes; views numbered
    # as copies: the same bytes hashed, the same roots).
    applied = _count_templates(monkeypatch)
    kernels = CpuKernels()
    got, want = _HashLog(kernels), PlainTracer(kernels)
    start = np.ascontiguousarray(_values(np.random.default_rng(5), (8, 16)))
    for tracer in (got, want):
        state = start
        for k in range(10):
            with np.errstate(invalid="ignore", over="ignore"):
                x = (state * F32(0.5)).astype(F32)
            copies = k in (3, 4, 5, 8)
            flat = x.reshape(128).copy() if copies else x.reshape(128)
            if k == 4:  # a record of other values (a faulty kernel): hashed for what it holds
                flat[0] = F32(3.0) if flat[0] != F32(3.0) else F32(4.0)
            back = flat.reshape(4, 32).copy() if copies else flat.reshape(4, 32)
            with np.errstate(invalid="ignore", over="ignore"):
                y = (back + F32(1.0)).astype(F32)
            tracer.record(Op.MUL, [F32(0.5)], [state], x)
            tracer.record(Op.RESHAPE, [128], [x], flat)
            tracer.record(Op.RESHAPE, [4, 32], [flat], back)
            tracer.record(Op.ADD, [F32(1.0)], [back], y)
            state = y.reshape(8, 16)
            tracer.record_state([state])
            tracer.end_step(keep=[state])
    _compare(got, want)
    assert applied[True] >= 5, applied
    assert applied[False] >= 1, applied


def test_steps_with_an_op_of_no_inputs_trace_as_the_plain_tracer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ``full`` reads no array: its record's one register is its output, in a step numbered
    # call by call (the first ones) and in the steps numbered from their template.
    applied = _count_templates(monkeypatch)
    kernels = CpuKernels()
    got, want = Tracer(kernels), PlainTracer(kernels)
    start = _values(np.random.default_rng(11), (4, 8))
    for tracer in (got, want):
        E = _ops(kernels, tracer)
        state = E.array(start)
        for k in range(6):
            ones = E.full([4, 8], 1.5 + k)
            state = E.add(E.mul(state, ones), E.full([8], 0.25))
            E.commit_state({"w": state})
    _compare(got, want)
    assert applied[True] >= 3, applied
