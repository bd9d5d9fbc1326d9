"""Native hashing threads (``agents.commitment.threads``) against the engines hashing alone.

Jobs are tables of buffers at random offsets of a shared buffer (sizes around the leaf
and group boundaries, empty ones included); their roots must be the engine's
``leaves_roots_at`` and the reference Merkle roots, however the jobs are split between
the hashing threads and the threads asking for the roots: in bulk, from several Python
threads at once, with the slots exhausted, the threads paused, stopped, failing to
start, and in a forked child.
"""

from __future__ import annotations

import concurrent.futures
import gc
import os
import time
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from agents.commitment import hashing, threads
from agents.commitment.hashing import Sha256Engine, _reference_leaves_root
from agents.commitment.threads import DONE, QUEUED, RUNNING, SLOTS, HashingThreads, Job

SIZES = [0, 1, 31, 1023, 1024, 1025, 4096, 16 * 1024 + 5, 40_000]


@pytest.fixture(params=hashing.ENGINE_NAMES)
def engine(request: pytest.FixtureRequest) -> Sha256Engine:
    chosen = hashing._checked(str(request.param))
    if chosen is None:
        pytest.skip(f"engine {request.param} does not run here")
    return chosen


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, 1 << 20, dtype=np.uint8)


@pytest.fixture
def pool(engine: Sha256Engine) -> Iterator[HashingThreads]:
    made = HashingThreads(engine, 2)
    yield made
    made.pause(False)
    made.stop()


def _table(rng: np.random.Generator, data: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
    sizes = rng.choice(SIZES, count).astype(np.int64)
    starts = rng.integers(0, data.size - sizes.max() - 1, count).astype(np.int64)
    return starts + data.ctypes.data, sizes, starts


def _job(pool: HashingThreads, rng: np.random.Generator, data: np.ndarray) -> Job:
    addresses, sizes, _ = _table(rng, data, int(rng.integers(1, 12)))
    return pool.job(addresses, sizes, data)


def test_jobs_in_bulk_give_the_engines_roots(
    pool: HashingThreads, engine: Sha256Engine, data: np.ndarray
) -> None:
    rng = np.random.default_rng(1)
    jobs = []
    for i in range(3 * SLOTS // 2):  # the slots go round more than once
        job = _job(pool, rng, data)
        pool.submit(job)
        jobs.append(job)
        if i % 5 == 0:  # some asked for at once: taken here or waited for
            jobs.pop(int(rng.integers(len(jobs)))).roots()
        if i % 97 == 0:
            pool.reap()
    for job in jobs[::-1]:
        assert (job.roots() == engine.leaves_roots_at(job.addresses, job.sizes)).all()
        assert job.finished and job.arrays is None


def test_the_roots_are_the_reference_merkle_roots(pool: HashingThreads, data: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    addresses, sizes, starts = _table(rng, data, 40)
    job = pool.job(addresses, sizes, data)
    pool.submit(job)
    roots = job.roots()
    for i, (start, size) in enumerate(zip(starts.tolist(), sizes.tolist(), strict=True)):
        assert bytes(roots[i]) == _reference_leaves_root(data[start : start + size].tobytes())


def test_threads_asking_at_once_each_get_their_jobs_roots(
    pool: HashingThreads, engine: Sha256Engine, data: np.ndarray
) -> None:
    def work(seed: int) -> bool:
        rng = np.random.default_rng(seed)
        jobs = []
        for _ in range(200):
            job = _job(pool, rng, data)
            pool.submit(job)
            jobs.append(job)
        return all(
            (job.roots() == engine.leaves_roots_at(job.addresses, job.sizes)).all()
            for job in reversed(jobs)
        )

    with concurrent.futures.ThreadPoolExecutor(4) as callers:
        assert all(callers.map(work, range(8)))


def test_a_paused_pool_leaves_every_job_to_the_thread_asking(
    pool: HashingThreads, engine: Sha256Engine, data: np.ndarray
) -> None:
    pool.pause()
    rng = np.random.default_rng(3)
    jobs = []
    for _ in range(SLOTS + 5):  # every slot taken: the last five are not queued at all
        job = _job(pool, rng, data)
        pool.submit(job)
        jobs.append(job)
    time.sleep(0.05)
    assert {pool.state(job.slot) for job in jobs[:SLOTS]} == {QUEUED}
    assert [job.slot for job in jobs[SLOTS:]] == [-1] * 5
    for job in jobs:
        assert (job.roots() == engine.leaves_roots_at(job.addresses, job.sizes)).all()
    assert {pool.state(job.slot) for job in jobs[:SLOTS]} == {DONE}


def test_a_running_job_is_waited_for_not_hashed_again(
    pool: HashingThreads, engine: Sha256Engine, data: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool.pause()
    job = _job(pool, np.random.default_rng(4), data)
    pool.submit(job)
    assert pool.claim(job.slot)  # taken, as by a hashing thread
    assert pool.state(job.slot) == RUNNING
    assert not pool.claim(job.slot)
    hashed_here: list[Job] = []
    monkeypatch.setattr(pool, "hash", hashed_here.append)
    with concurrent.futures.ThreadPoolExecutor(1) as asker:
        asked = asker.submit(job.roots)
        time.sleep(0.05)
        assert not asked.done()  # waiting for the thread that took it
        HashingThreads.hash(pool, job)
        pool.release(job.slot)
        roots = asked.result(timeout=10)
    assert not hashed_here
    assert (roots == engine.leaves_roots_at(job.addresses, job.sizes)).all()


def test_a_job_holds_its_arrays_until_hashed(pool: HashingThreads) -> None:
    pool.pause()
    values = np.arange(10_000, dtype=np.float32)
    alive = weakref.ref(values)
    addresses = np.array([values.ctypes.data], dtype=np.int64)
    sizes = np.array([values.nbytes], dtype=np.int64)
    job = pool.job(addresses, sizes, [values])
    pool.submit(job)
    del values, job  # the caller lets go of both
    gc.collect()
    assert alive() is not None
    pool.pause(False)
    for _ in range(2000):
        if not pool.reap():
            break
        time.sleep(0.005)
    gc.collect()
    assert alive() is None


def test_reaping_waits_for_the_oldest_pending_job_then_lets_go_of_every_hashed_one(
    pool: HashingThreads,
) -> None:
    # The threads take jobs in turn, so ``reap`` looks at the oldest pending job first: a
    # newer job hashed before it keeps its arrays until the oldest is hashed too.
    pool.pause()
    held = []
    for length in (1000, 2000):
        values = np.arange(length, dtype=np.float32)
        job = pool.job(
            np.array([values.ctypes.data], dtype=np.int64),
            np.array([values.nbytes], dtype=np.int64),
            [values],
        )
        pool.submit(job)
        held.append((weakref.ref(values), job))
        del values
    (older, first), (newer, second) = held
    assert pool.claim(second.slot)  # the newer job hashed here, out of turn
    HashingThreads.hash(pool, second)
    pool.release(second.slot)
    del held, second
    gc.collect()
    assert pool.reap()  # the oldest is not hashed: nothing let go yet
    gc.collect()
    assert older() is not None and newer() is not None
    assert pool.claim(first.slot)
    HashingThreads.hash(pool, first)
    pool.release(first.slot)
    del first
    assert not pool.reap()  # every job hashed: all of them let go
    gc.collect()
    assert older() is None and newer() is None


@pytest.mark.parametrize(
    ("idle", "level"),
    [(0, 0), (1, 1), (2, 2), (3, 2), (641, 2), (642, 2), (643, 3), (644, 4), (648, 8), (10**6, 8)],
)
def test_an_idle_thread_naps_short_for_a_while_after_a_job_then_longer(
    idle: int, level: int
) -> None:
    # Naps lengthen to 80 µs, stay there for 640 polls (a replay's next group comes within
    # milliseconds), then lengthen to the longest (5 ms).
    assert threads._NAP_LENGTHS[threads._HOLD_LEVEL] == 80_000
    assert threads._nap_level(idle, len(threads._NAP_LENGTHS) - 1) == level


def test_stopped_threads_start_again_at_the_next_job(
    pool: HashingThreads, engine: Sha256Engine, data: np.ndarray
) -> None:
    rng = np.random.default_rng(5)
    first = _job(pool, rng, data)
    pool.submit(first)
    first.roots()
    pool.stop()
    later = _job(pool, rng, data)
    pool.submit(later)
    for _ in range(2000):  # hashed by a thread, no one asking
        if pool.state(later.slot) == DONE:
            break
        time.sleep(0.005)
    assert pool.state(later.slot) == DONE
    assert (later.roots() == engine.leaves_roots_at(later.addresses, later.sizes)).all()


def test_threads_that_cannot_start_leave_the_jobs_to_whoever_asks(
    engine: Sha256Engine, data: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    libc = threads._LIBC

    class NoThreads:
        def __getattr__(self, name: str) -> Any:
            return getattr(libc, name)

        def pthread_create(self, *arguments: Any) -> int:
            return 11  # EAGAIN

    monkeypatch.setattr(threads, "_LIBC", NoThreads())
    pool = HashingThreads(engine, 2)
    job = _job(pool, np.random.default_rng(6), data)
    pool.submit(job)
    assert pool.threads == 0
    assert (job.roots() == engine.leaves_roots_at(job.addresses, job.sizes)).all()


def test_a_forked_child_hashes_the_jobs_its_parents_threads_were_running(
    pool: HashingThreads, engine: Sha256Engine, data: np.ndarray
) -> None:
    pool.pause()
    job = _job(pool, np.random.default_rng(8), data)
    pool.submit(job)
    assert pool.claim(job.slot)  # running on a thread the child will not have
    want = engine.leaves_roots_at(job.addresses, job.sizes)
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's exit status is the result)
        code = 0 if pool.state(job.slot) == QUEUED and (job.roots() == want).all() else 3
        os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert pool.state(job.slot) == RUNNING  # the parent's claim stands here
    HashingThreads.hash(pool, job)
    pool.release(job.slot)
    assert (job.roots() == want).all()
