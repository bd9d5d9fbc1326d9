"""A swarm backend: one task's steps shared by worker processes over torch.distributed.

``SwarmBackend(workers=W, stages=P, inner="exact")`` trains like its inner backend
(``exact`` or ``native``) with ``W = R × P`` workers: ``R`` pipelines, each the model
cut into ``P`` stages (``agents.learning.stages``), the pipelines sharing every step's
slices (``agents.swarm.pipeline`` describes a step). The spec fixes the arithmetic:
the slices (``parallel.microbatches``) and the order their gradients are summed, and,
when it compresses activations, where the model is cut (then ``P`` is the spec's
``parallel.stages``). With the exact kernels a swarm of any shape writes the proof a
single process writes, byte for byte, and a verifier replays it alone.

Workers are ``python -m agents.swarm.worker`` processes. Local ones are started by the
session (optionally each inside a network namespace: ``Placement``) and connect back
over a Unix socket; they meet through a file store (gloo over loopback, or over the
namespaces' links; NCCL when the inner backend runs on CUDA). Workers on other machines
are started by their operators and connect to ``listen`` (TCP) with the swarm's key;
they meet through a TCP store the session hosts (docs/swarm.md).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener, wait
from typing import Any, cast

import numpy as np

from agents.learning.backends import Backend, BackendError, Session, StepCallback, get_backend
from agents.learning.layout import State, ordered, step_of
from agents.learning.spec import TaskSpec
from agents.learning.stages import bounds
from agents.learning.task import Task
from agents.swarm.pipeline import Job, shares
from agents.swarm.plan import PlanFile

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 300.0
ANNOUNCE_TIMEOUT_S = 10.0
KEY_ENV = "VERITRAIN_SWARM_KEY"


@dataclass(frozen=True)
class Placement:
    """How a local worker is started: a command prefix (``ip netns exec NAME``, say) and
    environment (``GLOO_SOCKET_IFNAME``, say)."""

    prefix: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


def pipeline_depth(spec: TaskSpec, stages: int | None) -> int:
    """The pipeline's depth for ``spec``: ``stages`` when given, else the spec's; a spec that
    compresses activations fixes it."""
    parallel = spec.parallel
    fixed = parallel.stages if parallel is not None else 1
    depth = fixed if stages is None else stages
    if parallel is not None and parallel.compression is not None and depth != fixed:
        raise BackendError(
            f"task {spec.name} compresses activations where its {fixed} stages meet: "
            f"a swarm of {depth} stages cannot train it"
        )
    try:
        bounds(spec, depth)
    except ValueError as exc:
        raise BackendError(f"task {spec.name}: {exc}") from None
    return depth


class SwarmBackend(Backend):
    """Workers sharing each step; ``name`` is the inner backend's (same arithmetic).

    ``workers``: how many (local ones are started here); ``stages``: the pipeline's depth
    (default: the spec's); ``plan``: a plan file, whose devices, pipeline by pipeline, are
    the ranks (workers then announce their device's name); ``listen``: ``HOST:PORT`` where
    workers started elsewhere connect (with ``key``), instead of starting local ones;
    ``placements``: per local worker, how to start it; ``latency_s``: an emulated one-way
    latency added to every message between stages.
    """

    def __init__(
        self,
        workers: int = 2,
        inner: str = "exact",
        *,
        stages: int | None = None,
        plan: PlanFile | None = None,
        listen: str | None = None,
        key: bytes | None = None,
        placements: Sequence[Placement] | None = None,
        latency_s: float = 0.0,
        step_timeout_s: float | None = None,
        **inner_options: Any,
    ) -> None:
        if plan is not None:
            if stages is not None and stages != plan.stages:
                raise BackendError(f"the plan has {plan.stages} stages, not {stages}")
            stages = plan.stages
            workers = plan.stages * plan.replicas
        if workers < 1:
            raise BackendError("a swarm has at least one worker")
        if stages is not None and (stages < 1 or workers % stages):
            raise BackendError(f"{workers} workers do not form pipelines of {stages} stages")
        if inner not in ("exact", "native"):
            raise BackendError(f"a swarm trains with the exact or native backend, not {inner!r}")
        if listen is not None and key is None:
            raise BackendError("workers started elsewhere need the swarm's key")
        if listen is not None:
            _split_address(listen)
        if placements is not None and len(placements) != workers:
            raise BackendError(f"{len(placements)} placements for {workers} workers")
        if latency_s < 0:
            raise BackendError("latency cannot be negative")
        if step_timeout_s is not None and step_timeout_s <= 0:
            raise BackendError("a step timeout must be positive")
        inner_options.setdefault("threads", 1)
        get_backend(inner, **inner_options)  # refuse bad options here, not in a worker
        self.workers = workers
        self.stages = stages
        self.plan = plan
        self.inner = inner
        self.listen = listen
        self.key = key
        self.placements = list(placements) if placements is not None else None
        self.latency_s = latency_s
        self.step_timeout_s = step_timeout_s
        self.inner_options = inner_options
        self.name = inner

    def shape(self, spec: TaskSpec) -> tuple[int, int]:
        """``(stages, pipelines)`` of this swarm for ``spec``; ``BackendError`` saying why the
        swarm cannot train it."""
        depth = pipeline_depth(spec, self.stages)
        if self.workers % depth:
            raise BackendError(f"{self.workers} workers do not form pipelines of {depth} stages")
        pipelines = self.workers // depth
        if pipelines > 1:
            if spec.parallel is None:
                raise BackendError(
                    f"task {spec.name} has no parallel section: its steps do not split "
                    f"among {pipelines} pipelines"
                )
            shares(spec.parallel.microbatches, pipelines)
        return depth, pipelines

    def start(self, task: Task, state: State, *, trace: bool = False) -> SwarmSession:
        if trace:
            raise BackendError("a swarm does not record traces; replays run in one process")
        depth, pipelines = self.shape(task.spec)
        return SwarmSession(self, task, state, depth, pipelines)

    def describe(self) -> str:
        shape = f"workers={self.workers}"
        if self.stages is not None:
            shape += f", stages={self.stages}"
        return f"swarm({shape}, {self.inner})"


def placement_devices(device: str, world: int, *, local: bool, gpus: int) -> tuple[str, list[str]]:
    """How ``world`` workers training on ``device`` talk (``gloo`` or ``nccl``) and the device
    each computes on.

    Workers elsewhere each use ``device`` on their own machine, over NCCL when it is CUDA.
    Local workers on ``cuda`` take this machine's ``gpus`` GPUs in turn (rank ``r`` on
    ``cuda:r mod gpus``); NCCL refuses two ranks on one GPU, so when there are more workers
    than GPUs they talk over gloo (their messages pass through host memory, which the
    arithmetic does not see). A device that names its GPU (``cuda:1``) is kept as it is.
    """
    if not device.startswith("cuda"):
        return "gloo", [device] * world
    if not local:
        return "nccl", [device] * world
    if device == "cuda" and gpus >= 1:
        devices = [f"cuda:{rank % gpus}" for rank in range(world)]
    else:
        devices = [device] * world
    return ("nccl" if len(set(devices)) == world else "gloo"), devices


def _cuda_count(device: str) -> int:
    if not device.startswith("cuda"):
        return 0
    import torch

    return int(torch.cuda.device_count())


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BackendError(f"{address!r} is not HOST:PORT (a port from 1 to 65535)")
    return host, int(port)


def check_listen(address: str) -> None:
    """Raise ``BackendError`` saying why a session could not listen at ``address`` (a host
    that does not resolve or is not this machine's, a port in use or not allowed)."""
    host, port = _split_address(address)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise BackendError(f"cannot listen at {address}: {exc.strerror or exc}") from None


class SwarmSession(Session):
    """Worker processes holding the state; this object only sends them work."""

    def __init__(
        self, backend: SwarmBackend, task: Task, state: State, stages: int, pipelines: int
    ) -> None:
        self._spec = task.spec
        self._step = step_of(state)
        self._stages = stages
        self._step_timeout_s = backend.step_timeout_s
        world = stages * pipelines
        self._pipes: list[Connection] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._inbox: dict[int, list[Any]] = {r: [] for r in range(world)}
        self._store: Any = None
        self._dir = tempfile.mkdtemp(prefix="veritrain-swarm-")
        self._finalizer = weakref.finalize(self, _stop, self._pipes, self._processes, self._dir)
        key = backend.key or secrets.token_bytes(32)
        if backend.listen is None:
            address = os.path.join(self._dir, "session.sock")
            listener = Listener(address, family="AF_UNIX", authkey=key)
            rendezvous = "file:" + os.path.join(self._dir, "store")
            self._spawn(backend, f"unix:{address}", key, world)
        else:
            host, port = _split_address(backend.listen)
            try:
                listener = Listener((host, port), authkey=key)
            except OSError as exc:
                self.close()
                raise BackendError(
                    f"cannot listen at {backend.listen}: {exc.strerror or exc}"
                ) from None
            try:
                store_port = _free_port(host)
                from torch.distributed import TCPStore  # type: ignore[attr-defined]

                self._store = TCPStore(host, store_port, None, True, wait_for_workers=False)
            except (OSError, RuntimeError) as exc:
                listener.close()
                self.close()
                raise BackendError(f"cannot host the workers' store on {host}: {exc}") from None
            rendezvous = f"tcp:{host}:{store_port}"
        names = backend.plan.devices if backend.plan is not None else None
        try:
            by_rank = _accept(listener, world, START_TIMEOUT_S, names)
        finally:
            listener.close()
        if by_rank is None:
            self.close()
            raise BackendError(f"swarm workers did not connect within {START_TIMEOUT_S:.0f} s")
        self._pipes.extend(by_rank)
        device = str(backend.inner_options.get("device", "cpu"))
        comm, devices = placement_devices(
            device, world, local=backend.listen is None, gpus=_cuda_count(device)
        )
        for rank, pipe in enumerate(self._pipes):
            job = Job(
                rank=rank,
                pipelines=pipelines,
                stages=stages,
                rendezvous=rendezvous,
                comm=comm,
                task=task,
                state=dict(state),
                inner=backend.inner,
                options={**backend.inner_options, "device": devices[rank]},
                latency_s=backend.latency_s,
            )
            pipe.send(("start", job))
        for rank in range(world):
            self._expect(rank, "ready", START_TIMEOUT_S)

    def _spawn(self, backend: SwarmBackend, address: str, key: bytes, world: int) -> None:
        for rank in range(world):
            placement = backend.placements[rank] if backend.placements else Placement()
            env = dict(os.environ)
            env.setdefault("GLOO_SOCKET_IFNAME", "lo")
            env.update(placement.env)
            env[KEY_ENV] = key.hex()
            command = [*placement.prefix, sys.executable, "-m", "agents.swarm.worker"]
            self._processes.append(
                subprocess.Popen([*command, address, str(rank)], env=env, stdin=subprocess.DEVNULL)
            )

    def _fail(self, message: str) -> BackendError:
        self.close()
        return BackendError(message)

    def _expect(self, rank: int, kind: str, timeout: float | None = None) -> Any:
        """The next message of worker ``rank``, which must be ``kind``; an error or the end of
        any worker meanwhile fails the session."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._inbox[rank]:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise self._fail(f"swarm worker {rank} did not answer within {timeout:.0f} s")
            ready = cast(
                list[Connection],
                wait(self._pipes, timeout=1.0 if left is None else min(left, 1.0)),
            )
            for pipe in ready:
                r = self._pipes.index(pipe)
                try:
                    message = pipe.recv()
                except (EOFError, OSError):
                    raise self._fail(f"swarm worker {r} stopped") from None
                if message[0] == "error":
                    raise self._fail(f"swarm worker {r} failed: {message[1]}")
                self._inbox[r].append(message)
            for r, process in enumerate(self._processes):
                if process.poll() is not None and not self._pipes[r].poll():
                    raise self._fail(f"swarm worker {r} ended with status {process.returncode}")
        message = self._inbox[rank].pop(0)
        if message[0] != kind:
            raise self._fail(f"swarm worker {rank} answered {message[0]!r}, not {kind!r}")
        return message[1] if len(message) > 1 else None

    def run(self, batches: np.ndarray, on_step: StepCallback | None = None) -> None:
        batches = np.asarray(batches, dtype=np.int64)
        if batches.ndim != 2 or batches.shape[1] != self._spec.batch_size:
            raise BackendError(f"batches must be [steps, {self._spec.batch_size}] sample indices")
        if self._step + len(batches) > self._spec.steps:
            raise BackendError(
                f"running {len(batches)} steps from step {self._step} overshoots the task"
            )
        for pipe in self._pipes:
            pipe.send(("run", batches))
        limit = self._step_timeout_s
        for _ in range(len(batches)):
            self._step = int(self._expect(0, "step", limit))
            if on_step is not None:
                on_step(self._step)
        for rank in range(len(self._pipes)):
            self._expect(rank, "done", limit)

    def state(self) -> State:
        """The state, gathered from the stages of the first pipeline."""
        merged: State = {}
        for stage in range(self._stages):
            self._pipes[stage].send(("state",))
        for stage in range(self._stages):
            merged.update(self._expect(stage, "state"))
        return ordered(merged)

    def cpu_seconds(self) -> list[float] | None:
        """CPU time (user and system) each local worker has used so far, by rank; ``None``
        where it cannot be read (workers elsewhere, no ``/proc``)."""
        if not self._processes:
            return None
        out = []
        ticks = os.sysconf("SC_CLK_TCK")
        for process in self._processes:
            try:
                with open(f"/proc/{process.pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                return None
            out.append((int(fields[11]) + int(fields[12])) / ticks)
        return out

    def close(self) -> None:
        """Stop the workers (also done when the session is collected)."""
        self._finalizer()
        self._store = None


def _accept(
    listener: Listener, count: int, timeout: float, names: list[str] | None
) -> list[Connection] | None:
    """``count`` worker connections ordered by rank (each announces its rank, or with a plan
    its device's name), or ``None``."""
    got: dict[int, Connection] = {}

    def accept() -> None:
        while len(got) < count:
            try:
                conn = listener.accept()
            except AuthenticationError:
                continue  # a wrong key: that connection is closed, others may follow
            except (OSError, EOFError):
                return  # the listener was closed
            try:
                announced = conn.recv() if conn.poll(ANNOUNCE_TIMEOUT_S) else None
            except (OSError, EOFError):
                announced = None
            if names is not None and isinstance(announced, str) and announced in names:
                rank = names.index(announced)
            elif isinstance(announced, int) and 0 <= announced < count:
                rank = announced
            else:
                conn.close()
                continue
            if rank in got:
                conn.close()
                continue
            got[rank] = conn

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    thread.join(timeout)
    if len(got) < count:
        for conn in got.values():
            conn.close()
        return None
    return [got[r] for r in range(count)]


def _stop(
    pipes: list[Connection], processes: list[subprocess.Popen[bytes]], directory: str
) -> None:
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
                process.wait()
    for pipe in pipes:
        pipe.close()
    shutil.rmtree(directory, ignore_errors=True)
