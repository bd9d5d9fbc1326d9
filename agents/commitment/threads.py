"""Hashing threads that never take the GIL: tables of buffers hashed beside Python.

A Python thread that hashes (even one that runs the compiled kernels without the GIL)
takes the GIL to wake, to start each kernel and to hand back its result, and every time
it does, the thread computing next waits for it: an exact step of the digits MLP took
1.45 to 1.77 times as long beside a Python thread hashing 256 KiB buffers in a loop, and
1.01 times beside a thread of this module doing the same (measured on this project's
2-core machine; the small CNN 1.49 against 1.00, the tiny transformer 1.28 against 1.03;
docs/exact.md has the runs). These threads are started with ``pthread_create`` on a numba
``cfunc`` and run compiled code only: they take jobs (an engine's ``leaves_roots_at`` of a
table of addresses and sizes) from a ring of slots in shared memory, with atomic loads,
stores and compare-exchange, and sleep briefly when there are none.

A job's slot moves QUEUED -> RUNNING (whoever wins the compare-exchange: a hashing
thread, or the thread that wants the roots and would rather hash them itself than wait)
-> DONE. The pool holds each job, with the arrays its addresses point into, until it is
seen DONE: no thread ever reads memory that was let go. A forked child has no hashing
threads: jobs its parent's threads were running are queued again there, so that the
thread that wants their roots hashes them itself. A thread polling for jobs allocates
nothing (nanosleep's timespecs are in the table): numba's runtime allocates through
CPython's raw allocator, whose tracemalloc hooks (3.11) can crash when tracing stops while
another thread allocates, as they can for any thread running numba kernels without the GIL.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import functools
import os
import threading
from typing import Any

import numpy as np
from llvmlite import ir
from numba import cfunc, njit
from numba.core import types as nbtypes
from numba.extending import intrinsic

# A slot's states.
FREE, QUEUED, RUNNING, DONE = 0, 1, 2, 3
# Words per row of the table (two cache lines: threads polling one slot do not share a
# line with the next). The first _FIRST rows control: stop, submitted, cursor, the kernel's
# vector flag, its three scalar entry points, nanosleep's entry point, the kernel's,
# paused, then from word _NAPS the naps' lengths as timespecs. Each slot's row holds its
# state, the addresses and sizes of its buffers (pointers to int64 arrays), their count and
# where the roots go.
_WORDS = 16
_STOP, _SUBMITTED, _CURSOR, _VECTOR, _SCALAR, _SLEEP, _KERNEL, _PAUSED = 0, 1, 2, 3, 4, 7, 8, 9
_NAPS = 16  # from this word on: the timespecs of the naps, shortest first
_STATE, _ADDRESSES, _SIZES, _COUNT, _OUT = 0, 1, 2, 3, 4
#: Jobs in flight at once; past this many, a job is hashed by the thread that submits it.
SLOTS = 1024
# An idle thread polls for jobs, sleeping between polls for the next of _NAP_LENGTHS (ns),
# up to the last (an idle thread wakes 200 times a second; a job waits at most that long
# for a thread that slept, and meanwhile the thread wanting its roots may hash it). For
# _HOLD_POLLS polls after a job (about 50 ms) it naps no longer than _NAP_LENGTHS[_HOLD_LEVEL]:
# a replay hands over its next group a few milliseconds after the last, and a thread deep in
# its naps by then left the group to start late, or to the computing thread (the digits
# MLP's groups came every 4 ms, each hashed in 1.5 ms).
_NAP_LENGTHS = (20_000, 40_000, 80_000, 160_000, 320_000, 640_000, 1_280_000, 2_560_000, 5_000_000)
_HOLD_LEVEL = 2
_HOLD_POLLS = 640
_FIRST = 3  # the control rows (the naps' timespecs included); slot s is row _FIRST + s
_SPINS = 1 << 14  # compare-exchange polls before a waiting thread sleeps


def _i64_at(builder: Any, address: Any) -> Any:
    return builder.inttoptr(address, ir.IntType(64).as_pointer())


def _load_typer(typingctx: Any, address: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.load_atomic(_i64_at(builder, args[0]), "acquire", 8)

    return nbtypes.int64(nbtypes.int64), codegen


def _store_typer(typingctx: Any, address: Any, value: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        builder.store_atomic(args[1], _i64_at(builder, args[0]), "release", 8)
        return context.get_dummy_value()

    return nbtypes.void(nbtypes.int64, nbtypes.int64), codegen


def _exchange_typer(typingctx: Any, address: Any, expected: Any, value: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        pair = builder.cmpxchg(_i64_at(builder, args[0]), args[1], args[2], "acq_rel", "acquire")
        return builder.extract_value(pair, 1)

    return nbtypes.boolean(nbtypes.int64, nbtypes.int64, nbtypes.int64), codegen


def _address_typer(typingctx: Any, pointer: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ptrtoint(args[0], ir.IntType(64))

    return nbtypes.int64(nbtypes.voidptr), codegen


def _call_typer(typingctx: Any, function: Any, first: Any, second: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        pointer = ir.IntType(8).as_pointer()
        kind = ir.FunctionType(ir.IntType(32), [pointer, pointer])
        target = builder.inttoptr(args[0], kind.as_pointer())
        return builder.call(target, [builder.inttoptr(a, pointer) for a in args[1:]])

    return nbtypes.int32(nbtypes.int64, nbtypes.int64, nbtypes.int64), codegen


def _kernel_typer(
    typingctx: Any, function: Any, a: Any, b: Any, c: Any, d: Any, e: Any, f: Any
) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        word = ir.IntType(64)
        kind = ir.FunctionType(ir.VoidType(), [word] * 6)
        builder.call(builder.inttoptr(args[0], kind.as_pointer()), list(args[1:]))
        return context.get_dummy_value()

    return nbtypes.void(*[nbtypes.int64] * 7), codegen


_load: Any = intrinsic(_load_typer)
_run_kernel: Any = intrinsic(_kernel_typer)
_store: Any = intrinsic(_store_typer)
_exchange: Any = intrinsic(_exchange_typer)
_address: Any = intrinsic(_address_typer)
_call: Any = intrinsic(_call_typer)


@intrinsic
def _words(typingctx: Any, address: Any) -> Any:  # an ``int64*`` at an address
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return _i64_at(builder, args[0])

    return nbtypes.CPointer(nbtypes.int64)(nbtypes.int64), codegen  # type: ignore[no-untyped-call]


@njit(nogil=True, cache=True)
def _word(table: int, row: int, word: int) -> int:
    return int(_load(table + 8 * (_WORDS * row + word)))


@njit(nogil=True, cache=True)
def _set_state(table: int, slot: int, state: int) -> None:
    _store(table + 8 * _WORDS * (_FIRST + slot), state)


@njit(nogil=True, cache=True)
def _claim(table: int, slot: int) -> bool:
    """QUEUED -> RUNNING for the caller: whether it won."""
    return bool(_exchange(table + 8 * _WORDS * (_FIRST + slot), QUEUED, RUNNING))


@njit(nogil=True, cache=True)
def _states(table: int, slots: np.ndarray, out: np.ndarray) -> None:
    for i in range(slots.size):
        out[i] = _load(table + 8 * _WORDS * (_FIRST + slots[i]))


@njit(nogil=True, cache=True)
def _nap(table: int, level: int) -> None:
    """Sleep for ``_NAP_LENGTHS[level]`` (nanosleep's entry point and the timespecs are in
    the control rows: nothing is allocated, so no allocator hook runs on a thread polling)."""
    _call(_load(table + 8 * _SLEEP), table + 8 * (_NAPS + 2 * level), 0)


@njit(nogil=True, cache=True)
def _await(table: int, slot: int) -> None:
    """Until the slot is DONE: polling, then napping between polls."""
    address = table + 8 * _WORDS * (_FIRST + slot)
    spins = 0
    while _load(address) != DONE:
        spins += 1
        if spins > _SPINS:
            _nap(table, 0)


@njit(nogil=True, cache=True)
def _next(table: int, slots: int) -> int:
    """A QUEUED slot this thread now runs, from the oldest submitted on; -1 when none."""
    cursor = table + 8 * _CURSOR
    while True:
        taken = _load(cursor)
        if taken >= _load(table + 8 * _SUBMITTED):
            return -1
        if _exchange(cursor, taken, taken + 1):
            slot = taken % slots
            if _exchange(table + 8 * _WORDS * (_FIRST + slot), QUEUED, RUNNING):
                return int(slot)


@njit(nogil=True, cache=True)
def _hash_job(table: int, slot: int) -> None:
    """Hash the job in ``slot`` with the kernel named in the control row."""
    row = table + 8 * _WORDS * (_FIRST + slot)
    _run_kernel(
        _load(table + 8 * _KERNEL),
        _load(row + 8 * _ADDRESSES),
        _load(row + 8 * _SIZES),
        _load(row + 8 * _COUNT),
        _load(row + 8 * _OUT),
        _load(table + 8 * _VECTOR),
        table + 8 * _SCALAR,
    )


@njit(nogil=True, cache=True)
def _hash_table(table: int, addresses: int, sizes: int, count: int, out: int) -> None:
    """Hash a job not in a slot with the kernel named in the control row."""
    _run_kernel(
        _load(table + 8 * _KERNEL),
        addresses,
        sizes,
        count,
        out,
        _load(table + 8 * _VECTOR),
        table + 8 * _SCALAR,
    )


@njit(nogil=True, cache=True)
def _nap_level(idle: int, last: int) -> int:
    """The nap after ``idle`` polls without a job: lengthening up to _HOLD_LEVEL, held there
    for _HOLD_POLLS polls, then lengthening again up to the last."""
    if idle < _HOLD_LEVEL:
        return idle
    if idle < _HOLD_LEVEL + _HOLD_POLLS:
        return _HOLD_LEVEL
    return min(idle - _HOLD_POLLS, last)


@njit(nogil=True, cache=True)
def _serve(table: int, slots: int) -> None:
    """A hashing thread's loop: every job it takes hashed, until the control row says stop."""
    idle = 0  # polls since the last job
    last = len(_NAP_LENGTHS) - 1
    while _load(table + 8 * _STOP) == 0:
        slot = -1 if _load(table + 8 * _PAUSED) else _next(table, slots)
        if slot < 0:
            _nap(table, _nap_level(idle, last))
            idle = min(idle + 1, _HOLD_POLLS + last)
            continue
        idle = 0
        _hash_job(table, slot)
        _store(table + 8 * _WORDS * (_FIRST + slot), DONE)


def _thread_entry(argument: Any) -> Any:
    _serve(_address(argument), SLOTS)
    return argument


@functools.cache
def _compiled_entry() -> Any:
    """A thread's entry point, ``void* (void* table)``, compiled (on first use)."""
    return cfunc(nbtypes.voidptr(nbtypes.voidptr), cache=True)(_thread_entry)


class Job:
    """The Merkle roots of a table of buffers (``sizes[i]`` bytes at ``addresses[i]``, int64,
    lying in ``arrays``), hashed by a hashing thread or by whoever asks for them first
    (``roots``). The arrays are held until the roots are known."""

    __slots__ = ("_pool", "addresses", "arrays", "finished", "out", "sizes", "slot")

    def __init__(
        self, pool: HashingThreads, addresses: np.ndarray, sizes: np.ndarray, arrays: Any
    ) -> None:
        self._pool = pool
        self.addresses = addresses
        self.sizes = sizes
        self.arrays = arrays
        self.out = np.empty((addresses.size, 32), dtype=np.uint8)
        self.slot = -1  # not in a slot: hashed by whoever asks for the roots
        self.finished = False  # the roots are in ``out``

    def roots(self) -> np.ndarray:
        """The ``(n, 32)`` Merkle roots: hashed here if no thread has started on them, else
        once the thread that has is done."""
        if not self.finished:
            pool = self._pool
            if self.slot < 0:
                pool.hash(self)
            elif pool.claim(self.slot):
                pool.hash(self)
                pool.release(self.slot)
            else:
                pool.wait(self.slot)
            self.finished = True
            self.arrays = None
        return self.out


class HashingThreads:
    """Native threads hashing jobs with ``engine``'s kernel (``Sha256Engine.thread_kernel``):
    ``threads`` of them, started at the first job submitted (none: jobs wait in their slots
    until whoever wants their roots hashes them). Shared by the threads of a process."""

    def __init__(self, engine: Any, threads: int) -> None:
        kernel, vector, scalar = engine.thread_kernel()
        self.threads = threads
        self._lock = threading.Lock()
        self._table = np.zeros(((_FIRST + SLOTS) * _WORDS,), dtype=np.int64)
        self._base = int(self._table.ctypes.data)
        self._pending: dict[int, Job] = {}  # slot -> its job, until seen hashed
        self._submitted = 0
        self._running: list[int] = []  # the threads' ids
        control = self._table[:_WORDS]
        control[_KERNEL] = kernel
        control[_VECTOR] = int(vector)
        control[_SCALAR : _SCALAR + 3] = np.asarray(scalar, dtype=np.int64)[:3]
        control[_SLEEP] = _nanosleep()
        naps = self._table[_NAPS : _NAPS + 2 * len(_NAP_LENGTHS)].reshape(-1, 2)
        naps[:, 0], naps[:, 1] = np.divmod(np.asarray(_NAP_LENGTHS, dtype=np.int64), 10**9)
        _POOLS.append(self)

    def job(self, addresses: np.ndarray, sizes: np.ndarray, arrays: Any) -> Job:
        """A job for the buffers of ``sizes[i]`` bytes at ``addresses[i]`` (int64 arrays of
        one length), which lie in ``arrays``; not submitted yet."""
        return Job(self, addresses, sizes, arrays)

    def hash(self, job: Job) -> None:
        """Hash ``job`` on this thread (without the GIL)."""
        _hash_table(
            self._base,
            job.addresses.ctypes.data,
            job.sizes.ctypes.data,
            job.addresses.size,
            job.out.ctypes.data,
        )

    def submit(self, job: Job) -> None:
        """Queue ``job`` for the hashing threads (where every slot holds a job not hashed
        yet, it stays with whoever asks for its roots). The pool holds it, with its arrays,
        until it is seen hashed."""
        with self._lock:
            if _CLOSED:  # the interpreter is exiting: no thread starts again
                return
            self._start()
            self._collect()
            slot = self._submitted % SLOTS
            if slot in self._pending:
                return
            row = self._table[_WORDS * (_FIRST + slot) : _WORDS * (_FIRST + 1 + slot)]
            row[_ADDRESSES] = job.addresses.ctypes.data
            row[_SIZES] = job.sizes.ctypes.data
            row[_COUNT] = job.addresses.size
            row[_OUT] = job.out.ctypes.data
            self._pending[slot] = job
            job.slot = slot
            _set_state(self._base, slot, QUEUED)
            self._submitted += 1
            _set_word(self._base, _SUBMITTED, self._submitted)

    def reap(self) -> bool:
        """Let go the arrays of every job hashed since (and the pool's hold on it) once the
        oldest pending job is hashed (the threads take jobs in turn: until then, the newer
        ones are seldom done, and one look costs less than a look at each); whether jobs
        are still pending."""
        with self._lock:
            pending = self._pending
            if pending and self.state(next(iter(pending))) == DONE:
                self._collect()
            return bool(pending)

    def _collect(self) -> None:
        pending = self._pending
        if not pending:
            return
        slots = np.fromiter(pending, dtype=np.int64, count=len(pending))
        states = np.empty(slots.size, dtype=np.int64)
        _states(self._base, slots, states)
        for slot, state in zip(slots.tolist(), states.tolist(), strict=True):
            if state == DONE:
                job = pending.pop(slot)
                job.finished = True
                job.arrays = None

    # --- a slot's state --------------------------------------------------------------
    def state(self, slot: int) -> int:
        """The state of ``slot``: FREE, QUEUED, RUNNING or DONE."""
        return int(_word(self._base, _FIRST + slot, _STATE))

    def claim(self, slot: int) -> bool:
        """Take the QUEUED job in ``slot`` to hash it here (``release`` it after): whether
        no other thread had taken it."""
        return bool(_claim(self._base, slot))

    def release(self, slot: int) -> None:
        """The claimed job in ``slot`` is hashed."""
        _set_state(self._base, slot, DONE)

    def wait(self, slot: int) -> None:
        """Until the job in ``slot`` is hashed (without the GIL)."""
        _await(self._base, slot)

    # --- the threads -------------------------------------------------------------------
    def pause(self, paused: bool = True) -> None:
        """Let the threads take no job (they finish the one they hold) until resumed."""
        _set_word(self._base, _PAUSED, int(paused))

    def _start(self) -> None:
        while len(self._running) < self.threads:
            thread = ctypes.c_ulong()
            failed = _LIBC.pthread_create(
                ctypes.byref(thread),
                None,
                ctypes.c_void_p(_compiled_entry().address),
                ctypes.c_void_p(self._base),
            )
            if failed:  # jobs are hashed by whoever asks for their roots, from now on
                self.threads = len(self._running)
                return
            self._running.append(thread.value)

    def after_fork(self) -> None:
        """In a forked child: no thread runs here. Jobs the parent's threads were hashing go
        back to QUEUED (their buffers are this process's copies), so that they are hashed
        when their roots are asked for (the threads started at the next job take only the
        jobs submitted from then on)."""
        self._running = []
        self._lock = threading.Lock()
        for slot in self._pending:
            if self.state(slot) == RUNNING:
                _set_state(self._base, slot, QUEUED)

    def stop(self) -> None:
        """Stop the threads, each once its job is hashed (a later job starts them again)."""
        if not self._running:  # (a forked child has none: ``after_fork``)
            return
        _set_word(self._base, _STOP, 1)
        for thread in self._running:
            _LIBC.pthread_join(ctypes.c_ulong(thread), None)
        self._running = []
        _set_word(self._base, _STOP, 0)


@njit(nogil=True, cache=True)
def _set_word(table: int, word: int, value: int) -> None:
    _store(table + 8 * word, value)


_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_LIBC.pthread_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
_LIBC.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
_POOLS: list[HashingThreads] = []  # every pool of this process, stopped at its exit


def _entry_point(library: Any, name: str) -> int:
    return int(ctypes.cast(getattr(library, name), ctypes.c_void_p).value or 0)


def _nanosleep() -> int:
    return _entry_point(_LIBC, "nanosleep")


def _after_fork_in_child() -> None:
    for pool in _POOLS:
        pool.after_fork()


_CLOSED = False


@atexit.register
def _stop_all() -> None:
    # Before the interpreter lets module globals go (the tables the threads read); a job
    # submitted after (by a daemon thread) stays with whoever asks for its roots.
    global _CLOSED
    _CLOSED = True
    for pool in _POOLS:
        with pool._lock:
            pool.stop()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.cache
def hashing_threads(engine: Any, threads: int) -> HashingThreads:
    """The process's pool of ``threads`` hashing threads for ``engine``."""
    return HashingThreads(engine, threads)
