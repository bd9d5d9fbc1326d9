"""Exact kernels against native torch, and commitment throughput against sha256.

Per example model (digits MLP, small CNN, tiny char transformer), on this machine's CPU:
``native_step_ms`` (torch with 2 intra-op threads, BLAS), ``exact_step_ms`` (the exact
backend, untraced), ``ratio`` = exact / native, ``traced_step_ms`` (the exact backend
recording its trace: every intermediate tensor hashed, the time until the trace root is
known) and ``traced_ratio`` = traced / exact (goal ≤ 1.5). ``unhashed_step_ms`` and
``unhashed_ratio`` (over ``exact_step_ms``): the traced step with its tensors' hashing
skipped (``UnhashedTracer``: records made, numbered and laid out, every intermediate
written, no tensor hashed), what recording the trace alone costs the computing thread;
where it is above the goal, no hashing engine or count of hashing threads can meet it.
``segment_steps`` (the spec's ``checkpoint_interval``) and ``traced_segment_ratio``: the
traced over the untraced replay of one segment, from its first step until its trace root
is known, as a verifier replays it (the last steps' hashing weighs more in short
segments, less in long ones). What bounds the traced ratio from below:
``trace_mb_per_step``, the bytes of the tensors a traced step hands over to hashing
(fixed by the trace's definition), ``hash_step_ms``, the time one hashing thread of the
engine takes for those bytes at ``hash_thread_mb_s`` (below; a lower bound, a step's
many smaller tensors go somewhat slower), and ``traced_floor_ratio`` = (``exact_cpu_ms``
+ ``hash_step_ms``) / (cores × ``exact_step_ms``), at least 1: the ratio a traced step
would have if the tracer cost nothing but the hashing and that were spread perfectly
over the ``cores`` this process runs on (``exact_cpu_ms``: the untraced step's CPU time,
every thread of the process). Also ``native_1thread_step_ms`` and ``ratio_1thread``:
torch on one thread, which is faster for these small models than two threads whenever
other processes share the cores (idle OpenMP threads then spin against them). All run
interleaved, round after round, from the same state on the same batches; each figure is
the best round, so a burst of load from another process does not land on one side only.
That whole measurement is made ``RUNS`` times, one after another: this shared machine's
speed drifts by half within a minute, and one run's best untraced and best traced rounds
can fall in different states of it. ``traced_ratio_runs`` lists each run's traced_ratio
and ``traced_ratio_spread`` their range (max - min); the model's other figures are those
of the run of the median traced_ratio (the lower middle one).

Top level: ``commit_mb_s`` (``tensor_root`` of a 256 MiB float32 tensor),
``sha256_mb_s`` (hashlib's sha256 over the same bytes, one core), and
``commit_ratio`` = commit / sha256, measured interleaved the same way;
``hash_thread_mb_s``, what one thread of the engine hashes (a 4 MiB tensor's Merkle root
through the tracer's entry point, best of several);
``commit_engine``, the engine ``tensor_root`` used, and ``commit_engines_mb_s``,
every engine this CPU runs on the same bytes (its Merkle root over them, on
every core), so that the choice can be seen.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agents.commitment import engine, tensor_root
from agents.commitment.hashing import Sha256Engine, runnable_engines
from agents.exact.ops import Tracer
from agents.learning import datasets
from agents.learning.backends import Backend, Session, get_backend
from agents.learning.backends.exact import ExactBackend
from agents.learning.spec import load_spec
from agents.learning.task import Task
from agents.roles.hardware import Hardware

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MODELS = {
    "digits_mlp": "digits-mlp",
    "small_cnn": "digits-cnn",
    "tiny_transformer": "char-transformer",
}
NATIVE_THREADS = 2
ROUNDS = 5
RUNS = 4  # whole interleaved measurements per model (see the module docstring)
COMMIT_BYTES = 256 * 1024 * 1024


def _task(example: str) -> Task:
    spec = load_spec(EXAMPLES / f"{example}.yaml")
    assert spec.dataset.source is not None
    return Task.bind(spec, datasets.build(spec.dataset.source))


def _step_ms(backend: Backend, task: Task, batches: np.ndarray, trace: bool = False) -> float:
    return _step_times(backend, task, batches, trace)[0]


def _step_times(
    backend: Backend, task: Task, batches: np.ndarray, trace: bool = False
) -> tuple[float, float]:
    """Wall and process CPU milliseconds per step over ``batches`` after the first."""
    return _timed(backend.start(task, task.initial_state(), trace=trace), batches)


def _timed(session: Session, batches: np.ndarray) -> tuple[float, float]:
    """Wall and process CPU milliseconds per step of ``session`` over ``batches`` after the
    first (a warm-up: compilation caches, first allocations)."""
    session.run(batches[:1])
    session.trace_root()
    started, cpu = time.perf_counter(), time.process_time()
    session.run(batches[1:])
    # A traced run is done when its trace root is known: the hashing of the last steps
    # may still be under way when ``run`` returns.
    session.trace_root()
    steps = len(batches) - 1
    return (
        (time.perf_counter() - started) / steps * 1e3,
        (time.process_time() - cpu) / steps * 1e3,
    )


def _exact(backend: Backend) -> ExactBackend:
    if not isinstance(backend, ExactBackend):
        raise TypeError(f"traces come from the exact backend, not {backend.describe()}")
    return backend


class UnhashedTracer(Tracer):
    """Records, numbers and lays out every op as ``Tracer`` does, but hashes no tensor: every
    array's Merkle root reads as zeros, so its roots are not the trace's. What recording a
    trace costs the computing thread when the hashing costs nothing."""

    def _hash(
        self, arrays: list[np.ndarray], starts: list[int], sizes: list[int], waiting: bool = False
    ) -> np.ndarray:
        return np.zeros((len(arrays), 32), dtype=np.uint8)


def unhashed_step_ms(backend: Backend, task: Task, batches: np.ndarray) -> float:
    """Milliseconds per step over ``batches`` after the first, recorded by an
    ``UnhashedTracer``."""
    exact = _exact(backend)
    tracer = UnhashedTracer(exact.kernels)
    return _timed(exact.start(task, task.initial_state(), tracer=tracer), batches)[0]


def trace_bytes_per_step(backend: Backend, task: Task, batches: np.ndarray) -> float:
    """Bytes a traced step hands over to hashing, over ``batches`` after the first (whose
    step also hashes the initial state)."""
    exact = _exact(backend)
    tracer = Tracer(exact.kernels)
    session = exact.start(task, task.initial_state(), tracer=tracer)
    session.run(batches[:1])
    session.trace_root()
    before = tracer.hashed_bytes
    session.run(batches[1:])
    session.trace_root()
    return (tracer.hashed_bytes - before) / (len(batches) - 1)


def hash_thread_mb_s(size: int = 4 << 20, rounds: int = 20) -> float:
    """MB/s one thread of the engine hashes: a ``size``-byte tensor's Merkle root through
    ``leaves_roots_at`` (the tracer's hashing threads' call), best of ``rounds``."""
    active = engine()
    values = np.random.default_rng(1).standard_normal(size // 4).astype(np.float32)
    addresses = np.array([values.ctypes.data], dtype=np.int64)
    sizes = np.array([values.nbytes], dtype=np.int64)

    def hash_once() -> None:
        if active is None:  # hashlib, as the tracer falls back to
            tensor_root(values)
        else:
            active.leaves_roots_at(addresses, sizes)

    hash_once()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        hash_once()
        best = min(best, time.perf_counter() - started)
    return size / 1e6 / best


def _cores() -> int:
    return Hardware(threads=0).cores()  # every core this process may run on


def _best_interleaved(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = min(best[name], run())
    return best


def floor_ratio(exact_ms: float, exact_cpu_ms: float, hash_ms: float, cores: int) -> float:
    """The traced/untraced ratio if tracing cost nothing but ``hash_ms`` of hashing and the
    untraced step's CPU time and that hashing were spread perfectly over ``cores``."""
    return max(1.0, (exact_cpu_ms + hash_ms) / (cores * exact_ms))


def model_figures(example: str, hash_mb_s: float, steps: int = 16) -> dict[str, float]:
    """``native_step_ms``, ``exact_step_ms``, ``ratio``, ``traced_step_ms``, ``traced_ratio``,
    what bounds it, and the traced over the untraced replay of one of the spec's segments,
    for one example; ``hash_mb_s``: one hashing thread's MB/s."""
    task = _task(example)
    batches = task.batches(0, steps + 1)
    interval = task.spec.checkpoint_interval
    segment = task.batches(0, interval + 1)  # a warm-up step, then one segment
    native = get_backend("native", threads=NATIVE_THREADS)
    native_one = get_backend("native", threads=1)
    exact = get_backend("exact")
    fastest = {"wall": float("inf"), "cpu": float("inf")}  # the fastest untraced round

    def untraced() -> float:
        wall, cpu = _step_times(exact, task, batches)
        if wall < fastest["wall"]:
            fastest.update(wall=wall, cpu=cpu)
        return wall

    best = _best_interleaved(
        {
            "native": lambda: _step_ms(native, task, batches),
            "native_one": lambda: _step_ms(native_one, task, batches),
            "exact": untraced,
            "traced": lambda: _step_ms(exact, task, batches, trace=True),
            "unhashed": lambda: unhashed_step_ms(exact, task, batches),
            "segment": lambda: _step_ms(exact, task, segment),
            "segment_traced": lambda: _step_ms(exact, task, segment, trace=True),
        },
        ROUNDS,
    )
    traced = best["traced"]
    trace_mb = trace_bytes_per_step(exact, task, batches) / 1e6
    hash_ms = trace_mb / hash_mb_s * 1e3
    return {
        "trace_mb_per_step": round(trace_mb, 3),
        "hash_step_ms": round(hash_ms, 3),
        "exact_cpu_ms": round(fastest["cpu"], 3),
        "traced_floor_ratio": round(
            floor_ratio(best["exact"], fastest["cpu"], hash_ms, _cores()), 3
        ),
        "native_step_ms": round(best["native"], 3),
        "exact_step_ms": round(best["exact"], 3),
        "ratio": round(best["exact"] / best["native"], 3),
        "traced_step_ms": round(traced, 3),
        "traced_ratio": round(traced / best["exact"], 3),
        "unhashed_step_ms": round(best["unhashed"], 3),
        "unhashed_ratio": round(best["unhashed"] / best["exact"], 3),
        "segment_steps": interval,
        "traced_segment_ratio": round(best["segment_traced"] / best["segment"], 3),
        "native_1thread_step_ms": round(best["native_one"], 3),
        "ratio_1thread": round(best["exact"] / best["native_one"], 3),
    }


def commit_figures(size: int = COMMIT_BYTES) -> dict[str, Any]:
    """Commitment throughput against hashlib sha256 on the same bytes, and the throughput
    of each engine this CPU runs (``commit_engines_mb_s``: name to MB/s)."""
    values = np.random.default_rng(0).standard_normal(size // 4).astype(np.float32)
    raw = values.view(np.uint8)
    tensor_root(values[: 1 << 20])  # warm-up: engine self-check and kernel load
    engines = runnable_engines()
    for candidate in engines:
        candidate.leaves_root(raw[: 1 << 20])

    def commit() -> float:
        started = time.perf_counter()
        tensor_root(values)
        return time.perf_counter() - started

    def sha() -> float:
        started = time.perf_counter()
        hashlib.sha256(raw.data).digest()
        return time.perf_counter() - started

    def engine_root(candidate: Sha256Engine) -> Callable[[], float]:
        def root() -> float:
            started = time.perf_counter()
            candidate.leaves_root(raw)
            return time.perf_counter() - started

        return root

    runs = {"commit": commit, "sha256": sha}
    runs.update({f"engine {candidate.name}": engine_root(candidate) for candidate in engines})
    best = _best_interleaved(runs, 3)
    mb = size / 1e6
    active = engine()
    return {
        "commit_mb_s": round(mb / best["commit"], 1),
        "sha256_mb_s": round(mb / best["sha256"], 1),
        "commit_ratio": round(best["sha256"] / best["commit"], 3),
        "commit_engine": active.name if active is not None else "hashlib",
        "commit_engines_mb_s": {
            candidate.name: round(mb / best[f"engine {candidate.name}"], 1) for candidate in engines
        },
    }


def median_run(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The figures of the run of the median ``traced_ratio`` (the lower middle one for an
    even count), with every run's ratio and their spread."""
    ratios = [run["traced_ratio"] for run in runs]
    middle = sorted(range(len(runs)), key=lambda i: ratios[i])[(len(runs) - 1) // 2]
    return {
        **runs[middle],
        "traced_ratio_runs": ratios,
        "traced_ratio_spread": round(max(ratios) - min(ratios), 3),
    }


def run() -> dict[str, Any]:
    """Every figure of this benchmark (see the module docstring)."""
    hash_mb_s = hash_thread_mb_s()
    figures: dict[str, Any] = {
        "native_threads": NATIVE_THREADS,
        "device": "cpu",
        "runs": RUNS,
        "cores": _cores(),
        "hash_thread_mb_s": round(hash_mb_s, 1),
    }
    for key, example in MODELS.items():
        figures[key] = median_run([model_figures(example, hash_mb_s) for _ in range(RUNS)])
    figures.update(commit_figures())
    return figures
