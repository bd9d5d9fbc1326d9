"""A swarm worker: one stage of one pipeline, over torch.distributed.

Rank ``r`` of a swarm of ``R`` pipelines of ``P`` stages runs stage ``r mod P`` of
pipeline ``r div P``. Pipeline ``k`` takes the contiguous slices ``shares(M, R)[k]`` of
every step's ``M`` slices. One step, on every worker:

1. forward, slice by slice in order: receive the input from the previous stage (the
   first stage reads the batch), compute, send the output on (compressed as the task
   says: ``agents.swarm.codec``), without waiting for it to arrive;
2. backward, slice by slice in the same order: receive the output's gradient (the last
   stage starts from the loss), compute, send the input's gradient back;
3. the stage's gradients summed in slice order across pipelines: pipeline 0 adds its
   slices' gradients to ``+0.0`` and passes the sum to pipeline 1, which adds its own,
   and so on; the last pipeline broadcasts the total to the stage's group;
4. with AQ-SGD, the values each cut passed on are shared within the stage's group and
   the buffers updated (``StageSession.commit_cut``);
5. the optimizer step of the stage's parameters.

Every worker computes what one process computes for its part, and sums and buffers
follow the order the spec fixes, so with the exact kernels the swarm's state is the
single process's, bit for bit, for any number of pipelines and stages.

A message between stages is its send time and its payload, whose length the receiver
knows (from the slice's size and, for AQ-SGD, which of its samples crossed before); with
an emulated latency ``L`` a message is handed on no sooner than ``L`` after it was sent.
"""

from __future__ import annotations

import contextlib
import datetime
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from agents.learning.backends import BackendError, get_backend
from agents.learning.backends.base import StageSession
from agents.learning.compression import Quantized
from agents.learning.layout import (
    OPT_PREFIX,
    PARAM_PREFIX,
    STEP,
    State,
    activation_buffer,
    seen_buffer,
)
from agents.learning.spec import CompressionSpec, TaskSpec, cut_sizes
from agents.learning.stages import stage_paths
from agents.learning.task import Task
from agents.swarm import codec

FORWARD, BACKWARD, CHAIN = 1, 2, 3
PROCESS_GROUP_TIMEOUT_S = 1800


def shares(slices: int, pipelines: int) -> list[tuple[int, int]]:
    """``(first, count)`` of the contiguous slices each pipeline takes (earlier ones one more)."""
    if not 1 <= pipelines <= slices:
        raise BackendError(f"{pipelines} pipelines cannot share {slices} slices of a step")
    base, extra = divmod(slices, pipelines)
    out, first = [], 0
    for r in range(pipelines):
        count = base + (1 if r < extra else 0)
        out.append((first, count))
        first += count
    return out


@dataclass(frozen=True)
class Job:
    """What a worker needs to start: its place, how to meet the others, the task."""

    rank: int
    pipelines: int
    stages: int
    rendezvous: str  # "file:<path>" or "tcp:<host>:<port>"
    comm: str  # "gloo" or "nccl"
    task: Task
    state: State
    inner: str
    options: dict[str, Any]
    latency_s: float = 0.0

    @property
    def pipeline(self) -> int:
        return self.rank // self.stages

    @property
    def stage(self) -> int:
        return self.rank % self.stages


def stage_state_names(
    spec: TaskSpec, stages: int, stage: int, state: Mapping[str, Any]
) -> list[str]:
    """The names of ``state`` a stage reports: its parameters and their optimizer tensors,
    the buffers of the cut after it, and (the first stage) the step counter."""
    mine = set(stage_paths(spec, stages, stage))
    names = []
    for name in state:
        if name.startswith(PARAM_PREFIX):
            keep = name[len(PARAM_PREFIX) :] in mine
        elif name.startswith(OPT_PREFIX):
            keep = name[len(OPT_PREFIX) :].rsplit("/", 1)[0] in mine
        elif name == STEP:
            keep = stage == 0
        else:
            keep = name in (activation_buffer(stage), seen_buffer(stage))
        if keep:
            names.append(name)
    return names


class Links:
    """Messages between ranks over torch.distributed: the send time (8 bytes), then the
    payload, whose length the receiver knows (``expected_size``)."""

    def __init__(self, dist: Any, torch: Any, device: str, latency_s: float) -> None:
        self.dist = dist
        self.torch = torch
        self.device = device
        self.latency_s = latency_s
        self.pending: list[Any] = []

    def send(self, data: bytes, dst: int, tag: int) -> None:
        stamp = time.time_ns().to_bytes(8, "little")
        message = self.torch.frombuffer(bytearray(stamp + data), dtype=self.torch.uint8)
        message = message.to(self.device)
        self.pending.append((self.dist.isend(message, dst, tag=tag), message))

    def recv(self, src: int, tag: int, size: int) -> bytes:
        message = self.torch.empty(8 + size, dtype=self.torch.uint8, device=self.device)
        self.dist.recv(message, src, tag=tag)
        data = bytes(message.cpu().numpy().tobytes())
        if self.latency_s > 0:
            sent = int.from_bytes(data[:8], "little") / 1e9
            wait = sent + self.latency_s - time.time()
            if wait > 0:
                time.sleep(wait)
        return data[8:]

    def flush(self) -> None:
        for work, _ in self.pending:
            work.wait()
        self.pending.clear()


class StageWorker:
    """One stage of one pipeline (module docstring)."""

    def __init__(self, job: Job, session: StageSession, dist: Any, torch: Any, device: str) -> None:
        self.job = job
        self.session = session
        self.dist = dist
        self.torch = torch
        self.device = device
        spec = job.task.spec
        self.spec = spec
        parallel = spec.parallel
        self.slices = parallel.microbatches if parallel is not None else 1
        self.compression: CompressionSpec | None = (
            parallel.compression if parallel is not None else None
        )
        self.paths = stage_paths(spec, job.stages, job.stage)
        self.shapes = {p: tuple(job.state[PARAM_PREFIX + p].shape) for p in self.paths}
        self.links = Links(dist, torch, device, job.latency_s)
        # Which samples have crossed each cut this stage keeps buffers of (the sizes of
        # AQ-SGD messages follow from them).
        self.seen = {cut: np.asarray(job.state[seen_buffer(cut)]) != 0 for cut in self._cuts()}
        self.first, self.count = shares(self.slices, job.pipelines)[job.pipeline]
        self.group = None
        if job.pipelines > 1:
            # Every rank creates every group, in the same order.
            for stage in range(job.stages):
                ranks = [k * job.stages + stage for k in range(job.pipelines)]
                group = dist.new_group(ranks)
                if stage == job.stage:
                    self.group = group

    def rank_of(self, pipeline: int, stage: int) -> int:
        return pipeline * self.job.stages + stage

    # --- one step ---------------------------------------------------------------------
    def step(self, rows: np.ndarray) -> None:
        job, session = self.job, self.session
        stage, stages = job.stage, job.stages
        size = len(rows) // self.slices
        own = range(self.first, self.first + self.count)
        passed: dict[int, dict[int, Any]] = {cut: {} for cut in self._cuts()}
        prev, nxt = self.rank_of(job.pipeline, stage - 1), self.rank_of(job.pipeline, stage + 1)
        for m in own:
            part = rows[m * size : (m + 1) * size]
            x = None
            if stage > 0:
                x = self._receive_forward(stage - 1, part, prev)
                if stage - 1 in passed:
                    passed[stage - 1][m] = x
            out = session.stage_forward(stages, stage, part, x)
            if stage < stages - 1:
                value = self._send_forward(stage, part, out, nxt)
                if stage in passed:
                    passed[stage][m] = value
        grads = []
        for _ in own:
            dy = None if stage == stages - 1 else self._receive_backward(nxt, size)
            dx, stage_grads = session.stage_backward(stage, self.slices, dy)
            grads.append(stage_grads)
            if stage > 0:
                assert dx is not None
                self._send_backward(dx, prev)
        total = self._sum(grads)
        for cut, values in passed.items():
            session.commit_cut(cut, rows, self._share_values(cut, values, size))
            self.seen[cut][rows] = True
        self.links.flush()
        session.apply_stage(self.paths, total)

    def _cuts(self) -> list[int]:
        """The cuts whose AQ-SGD buffers this stage keeps (before and after it)."""
        if self.compression is None or self.compression.method != "aq":
            return []
        stage, stages = self.job.stage, self.job.stages
        return [c for c in (stage - 1, stage) if 0 <= c < stages - 1]

    def _send_forward(self, cut: int, rows: np.ndarray, out: Any, dst: int) -> Any:
        session, compression = self.session, self.compression
        if compression is None:
            self.links.send(codec.encode_full(session.to_numpy(out)), dst, FORWARD)
            return out
        sent = session.cut_forward(cut, rows, out)
        q = sent.quantized
        assert q is not None
        codes, lo, step = (session.to_numpy(v) for v in (q.codes, q.lo, q.step))
        if compression.method == "direct":
            data = codec.encode_quantized(codes, lo, step, compression.bits)
        else:
            full = session.to_numpy(sent.full)
            data = codec.encode_aq(sent.seen, codes, lo, step, full, compression.bits)
        self.links.send(data, dst, FORWARD)
        return sent.value

    def _receive_forward(self, cut: int, rows: np.ndarray, src: int) -> Any:
        session, compression = self.session, self.compression
        n, d = len(rows), self._cut_size(cut)
        if compression is None:
            size = 4 * n * d
        elif compression.method == "direct":
            size = codec.quantized_size(n, d, compression.bits)
        else:
            seen = int(self.seen[cut][rows].sum())
            size = n + codec.quantized_size(seen, d, compression.bits) + 4 * (n - seen) * d
        data = self.links.recv(src, FORWARD, size)
        if compression is None:
            return session.from_numpy(codec.decode_full(data, n, d))
        if compression.method == "direct":
            codes, lo, step = codec.decode_quantized(data, n, d, compression.bits)
            return session.cut_receive(
                cut, rows, self._quantized(codes, lo, step, compression.bits), None
            )
        got = codec.decode_aq(data, n, d, compression.bits)
        q = self._quantized(got.codes, got.lo, got.step, compression.bits)
        return session.cut_receive(cut, rows, q, session.from_numpy(got.full))

    def _send_backward(self, dx: Any, dst: int) -> None:
        session = self.session
        bits = self.compression.backward_bits if self.compression is not None else None
        if bits is None:
            self.links.send(codec.encode_full(session.to_numpy(dx)), dst, BACKWARD)
            return
        _, q = session.cut_backward(dx)
        assert q is not None
        codes, lo, step = (session.to_numpy(v) for v in (q.codes, q.lo, q.step))
        self.links.send(codec.encode_quantized(codes, lo, step, bits), dst, BACKWARD)

    def _receive_backward(self, src: int, n: int) -> Any:
        session = self.session
        d = self._cut_size(self.job.stage)
        bits = self.compression.backward_bits if self.compression is not None else None
        size = 4 * n * d if bits is None else codec.quantized_size(n, d, bits)
        data = self.links.recv(src, BACKWARD, size)
        if bits is None:
            return session.from_numpy(codec.decode_full(data, n, d))
        codes, lo, step = codec.decode_quantized(data, n, d, bits)
        return session.cut_receive_backward(self._quantized(codes, lo, step, bits))

    def _quantized(
        self, codes: np.ndarray, lo: np.ndarray, step: np.ndarray, bits: int
    ) -> Quantized[Any]:
        session = self.session
        return Quantized(
            session.from_numpy(codes), session.from_numpy(lo), session.from_numpy(step), bits
        )

    def _cut_size(self, cut: int) -> int:
        return cut_sizes(self.spec.model, self.job.stages)[cut]

    # --- the stage's group --------------------------------------------------------------
    def _flat(self, grads: Mapping[str, Any]) -> np.ndarray:
        session = self.session
        return np.concatenate([session.to_numpy(grads[p]).reshape(-1) for p in self.paths])

    def _unflat(self, flat: np.ndarray) -> dict[str, Any]:
        out, at = {}, 0
        for path in self.paths:
            shape = self.shapes[path]
            size = int(np.prod(shape))
            out[path] = self.session.from_numpy(flat[at : at + size].reshape(shape))
            at += size
        return out

    def _tensor(self, values: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(values, np.float32)).to(self.device)

    def _sum(self, grads: list[dict[str, Any]]) -> dict[str, Any]:
        """The stage's gradients of the whole step, summed in slice order across pipelines."""
        job, session, dist = self.job, self.session, self.dist
        k, pipelines = job.pipeline, job.pipelines
        acc = None
        if k > 0:
            size = sum(int(np.prod(s)) for s in self.shapes.values())
            incoming = self._tensor(np.empty(size, np.float32))
            dist.recv(incoming, self.rank_of(k - 1, job.stage), tag=CHAIN)
            acc = self._unflat(incoming.cpu().numpy())
        for stage_grads in grads:
            acc = session.accumulate(acc, stage_grads, self.paths)
        assert acc is not None
        if pipelines == 1:
            return acc
        total = self._tensor(self._flat(acc))
        if k < pipelines - 1:
            dist.send(total, self.rank_of(k + 1, job.stage), tag=CHAIN)
        dist.broadcast(total, src=self.rank_of(pipelines - 1, job.stage), group=self.group)
        return acc if k == pipelines - 1 else self._unflat(total.cpu().numpy())

    def _share_values(self, cut: int, values: dict[int, Any], size: int) -> list[Any]:
        """Every slice's passed-on rows at ``cut``, in slice order, from every pipeline of the
        stage's group."""
        job, session = self.job, self.session
        if job.pipelines == 1:
            return [values[m] for m in sorted(values)]
        width = self._cut_size(cut)
        out: list[Any] = []
        for k, (first, count) in enumerate(shares(self.slices, job.pipelines)):
            mine = k == job.pipeline
            if mine:
                block = np.stack([session.to_numpy(values[m]) for m in range(first, first + count)])
            else:
                block = np.empty((count, size, width), np.float32)
            tensor = self._tensor(block)
            self.dist.broadcast(tensor, src=self.rank_of(k, job.stage), group=self.group)
            if mine:
                out.extend(values[m] for m in range(first, first + count))
            else:
                out.extend(session.from_numpy(v) for v in tensor.cpu().numpy())
        return out


def serve(pipe: Connection) -> None:
    """A worker's life: wait for its job, then run what the session sends until told to stop."""
    message = pipe.recv()
    if message[0] != "start":
        return
    job: Job = message[1]
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        device = str(job.options.get("device", "cpu"))
        comm_device = device if job.comm == "nccl" else "cpu"
        if job.comm == "nccl":
            torch.cuda.set_device(torch.device(device))
        store = _store(dist, job)
        dist.init_process_group(
            job.comm,
            store=store,
            rank=job.rank,
            world_size=job.pipelines * job.stages,
            timeout=datetime.timedelta(seconds=PROCESS_GROUP_TIMEOUT_S),
        )
        session = get_backend(job.inner, **job.options).start(job.task, job.state)
        if not isinstance(session, StageSession):
            raise BackendError(f"backend {job.inner} cannot run a pipeline stage")
        worker = StageWorker(job, session, dist, torch, comm_device)
        step = int(np.asarray(job.state[STEP]))
        pipe.send(("ready",))
        while True:
            try:
                message = pipe.recv()
            except EOFError:
                break
            if message[0] == "stop":
                break
            if message[0] == "state":
                state = session.state()
                names = stage_state_names(job.task.spec, job.stages, job.stage, state)
                pipe.send(("state", {name: state[name] for name in names}))
                continue
            for rows in message[1]:
                worker.step(np.asarray(rows, np.int64))
                step += 1
                if job.rank == 0:
                    pipe.send(("step", step))
            pipe.send(("done",))
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
    except Exception as exc:  # reported to the session, which raises it
        with contextlib.suppress(OSError, ValueError):
            pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"))


def _store(dist: Any, job: Job) -> Any:
    world = job.pipelines * job.stages
    kind, _, where = job.rendezvous.partition(":")
    if kind == "file":
        return dist.FileStore(where, world)
    host, _, port = where.rpartition(":")
    return dist.TCPStore(
        host,
        int(port),
        None,
        False,
        timeout=datetime.timedelta(seconds=PROCESS_GROUP_TIMEOUT_S),
    )
