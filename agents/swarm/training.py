"""A swarm backend: one task's steps shared by worker processes over torch.distributed.

``SwarmBackend(workers=W, inner="exact")`` trains like its inner backend (``exact``
or ``native``), but every step's batch is shared out: the task's ``parallel``
section cuts the batch into ``M`` slices (microbatches), worker ``r`` of ``W`` takes
a contiguous run of them, and the step's gradient is their sum **in slice order**:
worker 0 adds its slices' gradients to ``+0.0``, sends the running sum to worker 1,
which adds its own, and so on; the last worker broadcasts the total and every
worker applies the same optimizer step to its copy of the state. The sum is the
one the inner backend computes alone (``ExactSession`` adds the slices in the same
order), so with the exact kernels a swarm of any size writes the proof a single
process writes, byte for byte, and a verifier replays it alone.

Workers are local processes joined by gloo over loopback (or NCCL where GPUs
are); the session that starts them talks to them through pipes and stops them
when it is closed or collected.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import threading
import traceback
import weakref
from collections.abc import Mapping
from multiprocessing.connection import Connection, Listener
from typing import Any, cast

import numpy as np

from agents.learning.backends import Backend, BackendError, Session, StepCallback, get_backend
from agents.learning.layout import State, parameter_shapes, step_of
from agents.learning.task import Task

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 300.0


def shares(slices: int, workers: int) -> list[tuple[int, int]]:
    """``(first, count)`` of the contiguous slices each worker takes (earlier ones one more)."""
    if not 1 <= workers <= slices:
        raise BackendError(f"{workers} workers cannot share {slices} slices of a step")
    base, extra = divmod(slices, workers)
    out, first = [], 0
    for r in range(workers):
        count = base + (1 if r < extra else 0)
        out.append((first, count))
        first += count
    return out


class SwarmBackend(Backend):
    """Local workers sharing each step; ``name`` is the inner backend's (same arithmetic)."""

    def __init__(
        self,
        workers: int = 2,
        inner: str = "exact",
        address: str = LOOPBACK,
        **inner_options: Any,
    ) -> None:
        if workers < 1:
            raise BackendError("a swarm has at least one worker")
        if inner not in ("exact", "native"):
            raise BackendError(f"a swarm trains with the exact or native backend, not {inner!r}")
        inner_options.setdefault("threads", 1)
        get_backend(inner, **inner_options)  # refuse bad options here, not in a worker
        self.workers = workers
        self.inner = inner
        self.address = address
        self.inner_options = inner_options
        self.name = inner

    def start(self, task: Task, state: State, *, trace: bool = False) -> SwarmSession:
        if trace:
            raise BackendError("a swarm does not record traces; replays run in one process")
        parallel = task.spec.parallel
        if parallel is None:
            raise BackendError(
                f"task {task.spec.name} has no parallel section: its steps do not split"
            )
        shares(parallel.microbatches, self.workers)
        return SwarmSession(self, task, state)

    def describe(self) -> str:
        return f"swarm(workers={self.workers}, {self.inner})"


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


class SwarmSession(Session):
    """Worker processes holding the state; this object only sends them work.

    Each worker is ``python -m agents.swarm.worker`` started here; it connects back to
    a loopback listener of this session (authenticated with a fresh key) and receives
    its rank, the task and the state.
    """

    def __init__(self, backend: SwarmBackend, task: Task, state: State) -> None:
        self._spec = task.spec
        self._step = step_of(state)
        key = secrets.token_bytes(32)
        listener = Listener((LOOPBACK, 0), authkey=key)
        host, port = cast(tuple[str, int], listener.address)
        dist_port = _free_port(backend.address)
        env = dict(os.environ, VERITRAIN_SWARM_KEY=key.hex())
        self._processes = [
            subprocess.Popen(
                [sys.executable, "-m", "agents.swarm.worker", f"{host}:{port}", str(rank)],
                env=env,
                stdin=subprocess.DEVNULL,
            )
            for rank in range(backend.workers)
        ]
        self._pipes: list[Connection] = []
        self._finalizer = weakref.finalize(self, _stop, self._pipes, list(self._processes))
        try:
            by_rank = _accept(listener, backend.workers, START_TIMEOUT_S)
        finally:
            listener.close()
        if by_rank is None:
            self.close()
            raise BackendError(f"swarm workers did not connect within {START_TIMEOUT_S:.0f} s")
        self._pipes.extend(by_rank)
        for rank, pipe in enumerate(self._pipes):
            pipe.send(
                (
                    "start",
                    {
                        "rank": rank,
                        "world": backend.workers,
                        "address": backend.address,
                        "port": dist_port,
                        "task": task,
                        "state": dict(state),
                        "inner": backend.inner,
                        "options": backend.inner_options,
                    },
                )
            )
        for rank in range(backend.workers):
            self._expect(rank, "ready", timeout=START_TIMEOUT_S)

    def _expect(self, rank: int, kind: str, timeout: float | None = None) -> Any:
        pipe = self._pipes[rank]
        if timeout is not None and not pipe.poll(timeout):
            self.close()
            raise BackendError(f"swarm worker {rank} did not answer within {timeout:.0f} s")
        try:
            message = pipe.recv()
        except EOFError:
            self.close()
            raise BackendError(f"swarm worker {rank} stopped") from None
        if message[0] == "error":
            self.close()
            raise BackendError(f"swarm worker {rank} failed: {message[1]}")
        if message[0] != kind:
            self.close()
            raise BackendError(f"swarm worker {rank} answered {message[0]!r}, not {kind!r}")
        return message[1] if len(message) > 1 else None

    def run(self, batches: np.ndarray, on_step: StepCallback | None = None) -> None:
        batches = np.asarray(batches, dtype=np.int64)
        if batches.ndim != 2 or batches.shape[1] != self._spec.batch_size:
            raise BackendError(f"batches must be [steps, {self._spec.batch_size}] sample indices")
        for pipe in self._pipes:
            pipe.send(("run", batches))
        for _ in range(len(batches)):
            self._step = int(self._expect(0, "step"))
            if on_step is not None:
                on_step(self._step)
        for rank in range(len(self._pipes)):
            self._expect(rank, "done")

    def state(self) -> State:
        self._pipes[0].send(("state",))
        state: State = self._expect(0, "state")
        return state

    def close(self) -> None:
        """Stop the workers (also done when the session is collected)."""
        self._finalizer()


def _accept(listener: Listener, count: int, timeout: float) -> list[Connection] | None:
    """``count`` worker connections, ordered by the rank each announces, or ``None``."""
    got: dict[int, Connection] = {}

    def accept() -> None:
        with contextlib.suppress(OSError, EOFError):
            while len(got) < count:
                conn = listener.accept()
                rank = conn.recv()
                got[int(rank)] = conn

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    thread.join(timeout)
    if len(got) < count or sorted(got) != list(range(count)):
        for conn in got.values():
            conn.close()
        return None
    return [got[r] for r in range(count)]


def _stop(pipes: list[Connection], processes: list[subprocess.Popen[bytes]]) -> None:
    for pipe in pipes:
        with contextlib.suppress(OSError, ValueError):
            pipe.send(("stop",))
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            if process.poll() is None:
                process.kill()
    for pipe in pipes:
        pipe.close()


# --- the worker process ------------------------------------------------------------


def _flat(grads: Mapping[str, np.ndarray], paths: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(grads[p], np.float32).reshape(-1) for p in paths])


def _unflat(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    out, at = {}, 0
    for path, shape in shapes.items():
        size = int(np.prod(shape))
        out[path] = flat[at : at + size].reshape(shape)
        at += size
    return out


def serve(pipe: Connection) -> None:
    """A worker's life: wait for its start message, then run what the session sends."""
    message = pipe.recv()
    if message[0] != "start":
        return
    job = message[1]
    _worker(
        job["rank"],
        job["world"],
        job["address"],
        job["port"],
        pipe,
        job["task"],
        job["state"],
        job["inner"],
        job["options"],
    )


def _worker(
    rank: int,
    world: int,
    address: str,
    port: int,
    pipe: Connection,
    task: Task,
    state: State,
    inner: str,
    inner_options: dict[str, Any],
) -> None:
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        if address == LOOPBACK:
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        dist.init_process_group(
            "gloo", init_method=f"tcp://{address}:{port}", rank=rank, world_size=world
        )
        session = get_backend(inner, **inner_options).start(task, state)
        spec = task.spec
        assert spec.parallel is not None
        first, count = shares(spec.parallel.microbatches, world)[rank]
        shapes = {p: tuple(s) for p, s in parameter_shapes(spec).items()}
        paths = list(shapes)
        size = sum(int(np.prod(s)) for s in shapes.values())
        step = step_of(state)
        pipe.send(("ready",))
        while True:
            try:
                message = pipe.recv()
            except EOFError:
                break
            if message[0] == "stop":
                break
            if message[0] == "state":
                pipe.send(("state", session.state()))
                continue
            for rows in message[1]:
                acc = None
                if rank > 0:
                    incoming = torch.empty(size, dtype=torch.float32)
                    dist.recv(incoming, src=rank - 1)
                    acc = _unflat(incoming.numpy(), shapes)
                acc = session.slice_gradients(rows, first, count, acc)  # type: ignore[attr-defined]
                total = torch.from_numpy(_flat(acc, paths))
                if rank < world - 1:
                    dist.send(total, dst=rank + 1)
                dist.broadcast(total, src=world - 1)
                session.apply_gradients(_unflat(total.numpy(), shapes))  # type: ignore[attr-defined]
                step += 1
                if rank == 0:
                    pipe.send(("step", step))
            pipe.send(("done",))
        dist.destroy_process_group()
    except Exception as exc:  # reported to the session, which raises it
        with contextlib.suppress(OSError, ValueError):
            pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"))
