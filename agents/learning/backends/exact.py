"""The ``exact`` training backend: the spec's training step in exact operations.

Named ``exact`` in ``agents.learning.backends``: solvers train with it in exact
mode (``tolerance: exact``), and it is the verifier's default replayer.
One step, in trace order:

1. the batch: ``index_select`` of the dataset rows (sequence tasks: of the
   tokens at ``start + t`` and ``start + t + 1``) by the step's sample indices;
2. the model's forward pass, the loss gradient (cross-entropy or MSE, mean
   over the batch), the backward pass (``agents.learning.backends.exact_models``);
3. the optimizer update of every parameter in layout order (``agents.exact.optim``)
   with the spec's binary32 learning rate for that step;
4. ``step = step + 1``; with a trace, the ``STATE`` record of the new state.

Options: ``device`` (``cpu``: the numba path; ``cuda``: the eager torch path),
``path`` (``cpu`` or ``eager``, to force one), ``threads`` (numba threads on
the CPU path; 0 keeps numba's default of every core; a process-wide setting).
Results are identical for every option: that is the point of the backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import numpy as np

from agents.exact.composites import cross_entropy_grad, mse_grad
from agents.exact.errors import ExactEnvironmentError
from agents.exact.float32 import check_denormals_kept
from agents.exact.kernels import Array, Kernels
from agents.exact.layers import Backward, Grads
from agents.exact.ops import ExactOps, StepScalar, Tracer
from agents.exact.optim import AdamScalars, adam_scalars, adam_updates, sgd_updates
from agents.learning.backends.base import (
    Backend,
    BackendError,
    Session,
    StageSession,
    StepCallback,
)
from agents.learning.backends.exact_models import build_exact_model
from agents.learning.compression import (
    Forward,
    Quantized,
    commit_buffers,
    commit_tensors,
    dequantize,
    forward_cut,
    quantize,
    receive_cut,
)
from agents.learning.distance import Metric, traced_distances
from agents.learning.layout import (
    OPT_PREFIX,
    PARAM_PREFIX,
    STEP,
    State,
    activation_buffer,
    layout_problems,
    name_key,
    optimizer_slots,
    ordered,
    parameter_shapes,
    seen_buffer,
    step_of,
)
from agents.learning.schedule import LearningRate
from agents.learning.spec import AdamSpec, CompressionSpec, SGDSpec, TaskSpec
from agents.learning.stages import bounds
from agents.learning.task import Task

F32 = np.float32
# A slice waiting for its backward pass: the pass, the gradients it fills, the stage's
# output, the samples, their targets when already selected, whether the stage is the last.
_Pending = tuple[Backward, Grads, Array, np.ndarray, Array | None, bool]


def step_scalars(spec: TaskSpec, rate: LearningRate, step: int) -> tuple[np.float32, ...]:
    """The immediates the schedule gives step ``step`` (0-based), in their program order
    (``agents.exact.ops.StepScalar``): SGD's learning rate; Adam's step size and ``bc2_sqrt``."""
    lr = rate(step)
    optimizer = spec.optimizer
    if isinstance(optimizer, AdamSpec):
        adam = adam_scalars(lr, F32(optimizer.beta1), F32(optimizer.beta2), step + 1)
        return F32(adam.step_size), F32(adam.bc2_sqrt)
    return (lr,)


def batch_tensors(task: Task, rows: np.ndarray) -> list[np.ndarray]:
    """The index tensors (float32 integers) the samples ``rows`` enter a step as, in the
    order the step reads them: classification, the rows; sequences, the positions of the
    inputs, then of the targets (``start + t`` and ``start + t + 1``)."""
    if task.targets is not None:
        return [np.asarray(rows).astype(np.float32)]
    starts = np.asarray(rows).astype(np.int64)[:, None] + np.arange(task.context, dtype=np.int64)
    return [
        starts.reshape(-1).astype(np.float32),
        (starts + 1).reshape(-1).astype(np.float32),
    ]


def step_batch_tensors(task: Task, rows: np.ndarray) -> list[np.ndarray]:
    """Every distinct index tensor of a step on batch ``rows``, in the order the step first
    reads it (one group per microbatch of the spec's ``parallel`` section, if it has one;
    with AQ-SGD compression each group also has the slice's samples, whose buffers it
    reads, and the step ends with the tensors that place the buffers' new values:
    ``agents.learning.compression.commit_tensors``, then the samples of the whole step)."""
    parallel = task.spec.parallel
    if parallel is None:
        return batch_tensors(task, rows)
    compression = parallel.compression
    aq = compression is not None and compression.method == "aq"
    size = len(rows) // parallel.microbatches
    out: list[np.ndarray] = []
    for m in range(parallel.microbatches):
        part = rows[m * size : (m + 1) * size]
        out += batch_tensors(task, part)
        if aq:
            out.append(np.asarray(part).astype(np.float32))
    if aq:
        positions, first = commit_tensors(rows, parallel.microbatches)
        out += [*positions, first, np.asarray(rows).astype(np.float32)]
    distinct: list[np.ndarray] = []
    seen: set[tuple[tuple[int, ...], bytes]] = set()
    for tensor in out:
        key = (tensor.shape, tensor.tobytes())
        if key not in seen:
            seen.add(key)
            distinct.append(tensor)
    return distinct


def make_kernels(path: str, device: str, threads: int = 0) -> Kernels:
    """The kernels of ``path`` (``cpu`` or ``eager``) on ``device``."""
    if path == "cpu":
        if device != "cpu":
            raise BackendError(f"the cpu path runs on the CPU, not {device!r}")
        if threads < 0:
            raise BackendError("threads must be at least 0")
        try:
            import numba

            from agents.exact.cpu import CpuKernels
        except ImportError as exc:
            raise BackendError(
                f"the cpu path needs numba, which does not load here: {exc}"
            ) from None
        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
        if threads > most:
            raise BackendError(f"at most {most} threads here")
        return CpuKernels(threads or None)
    if path == "eager":
        import torch

        from agents.exact.eager import EagerKernels

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("device cuda requested but torch sees no CUDA device")
        return EagerKernels(device)
    raise BackendError(f"unknown exact path {path!r} (cpu or eager)")


def _check_path_keeps_subnormals(kernels: Kernels) -> None:
    """Refuse a path (a GPU, say) whose arithmetic flushes subnormals to zero."""
    tiny = kernels.from_numpy(np.array([2.0**-126, 2.0**-149], dtype=np.float32))
    got = kernels.to_numpy(kernels.mul(tiny, np.float32(0.5)))
    if got[0] != np.float32(2.0**-127) or got[1] != 0:
        raise ExactEnvironmentError(
            f"the {kernels.name} path flushes subnormal floats to zero here; "
            "exact kernels cannot run bit-exactly on it"
        )


class ExactBackend(Backend):
    """Training and replay in exact kernels; see the module docstring for the options."""

    name = "exact"

    def __init__(self, device: str = "cpu", threads: int = 0, path: str | None = None) -> None:
        self.device = device
        self.path = path or ("cpu" if device == "cpu" else "eager")
        self.threads = threads
        self.kernels = make_kernels(self.path, device, threads)

    def start(
        self, task: Task, state: State, *, trace: bool = False, tracer: Tracer | None = None
    ) -> ExactSession:
        """A session from ``state``; ``trace`` records its ops (into ``tracer`` if given)."""
        return ExactSession(self, task, state, trace or tracer is not None, tracer)

    def describe(self) -> str:
        options = [f"path={self.path}", f"device={self.device}"]
        if self.threads:
            options.append(f"threads={self.threads}")
        return f"exact({', '.join(options)})"


class ExactSession(Session, StageSession):
    """Parameters, optimizer state and dataset live as arrays of the backend's path."""

    def __init__(
        self,
        backend: ExactBackend,
        task: Task,
        state: State,
        trace: bool,
        tracer: Tracer | None = None,
    ) -> None:
        problems = layout_problems(task.spec, state)
        if problems:
            raise BackendError(f"state does not fit task {task.spec.name}: {'; '.join(problems)}")
        check_denormals_kept()
        kernels = backend.kernels
        _check_path_keeps_subnormals(kernels)
        self._kernels = kernels
        self._tracer = (tracer or Tracer(kernels)) if trace else None
        self._ops = ExactOps(kernels, self._tracer)
        self._task = task
        self._spec = task.spec
        self._model = build_exact_model(task.spec)
        self._rate = LearningRate(task.spec)
        self._step = step_of(state)
        self._paths = list(parameter_shapes(task.spec))
        self._slots = optimizer_slots(task.spec.optimizer)
        self._arrays: dict[str, Array] = {
            name: kernels.from_numpy(np.array(value, dtype=np.float32))
            for name, value in ordered(state).items()
        }
        self._data = self._load_data(task)
        self._pending: dict[int, list[_Pending]] = {}
        self._sample_index: dict[bytes, Array] = {}

    def _load_data(self, task: Task) -> dict[str, Array]:
        as_f32 = {"inputs": task.inputs}
        if task.targets is not None:
            as_f32["targets"] = task.targets
        data = {
            key: self._kernels.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
            for key, value in as_f32.items()
        }
        if self._tracer is not None:
            for array in data.values():
                self._tracer.pin(array)
        return data

    # --- one step ------------------------------------------------------------------
    def _batch(self, rows: np.ndarray) -> tuple[Array, Array]:
        E = self._ops
        indices = [E.array(t) for t in batch_tensors(self._task, rows)]
        if self._task.targets is not None:
            return (
                E.index_select(self._data["inputs"], indices[0], 0),
                E.index_select(self._data["targets"], indices[0], 0),
            )
        tokens = self._data["inputs"]
        x = E.reshape(E.index_select(tokens, indices[0], 0), [len(rows), self._task.context])
        return x, E.index_select(tokens, indices[1], 0)

    def _targets(self, rows: np.ndarray) -> Array:
        """The targets of the samples ``rows``, selected as ``_batch`` selects them."""
        E = self._ops
        indices = batch_tensors(self._task, rows)
        if self._task.targets is not None:
            return E.index_select(self._data["targets"], E.array(indices[0]), 0)
        return E.index_select(self._data["inputs"], E.array(indices[1]), 0)

    def _loss_gradient(self, output: Array, targets: Array, slices: int) -> Array:
        """The loss gradient of ``output``, a ``1 / slices`` share of a step's batch (the
        loss normalized over the whole batch)."""
        E = self._ops
        if self._spec.loss == "cross_entropy":
            count = None if slices == 1 else int(np.prod(output.shape[:1])) * slices
            return cross_entropy_grad(E, output, targets, count)
        count = None if slices == 1 else int(np.prod(output.shape)) * slices
        return mse_grad(E, output, targets, count)

    def _gradients(self, rows: np.ndarray, slices: int = 1) -> Grads:
        """The parameter gradients of the samples ``rows``, a ``1 / slices`` share of a
        step's batch (the loss normalized over the whole batch)."""
        x, targets = self._batch(rows)
        params = {path: self._arrays[PARAM_PREFIX + path] for path in self._paths}
        grads: Grads = {}
        output, backward = self._model.forward(self._ops, params, grads, x)
        backward(self._loss_gradient(output, targets, slices))
        return grads

    def _apply(self, grads: Mapping[str, Array], paths: list[str] | None = None) -> None:
        E = self._ops
        self._update(grads, self._paths if paths is None else paths)
        self._arrays[STEP] = E.add(self._arrays[STEP], 1.0)
        self._step += 1
        if self._tracer is not None:
            E.commit_state(self._arrays)

    def _train_step(self, rows: np.ndarray) -> None:
        parallel = self._spec.parallel
        if parallel is None:
            self._apply(self._gradients(rows))
            return
        slices = parallel.microbatches
        size = len(rows) // slices
        compression = parallel.compression
        values: list[list[Array]] = [[] for _ in range(parallel.stages - 1)]
        acc: Grads | None = None
        for m in range(slices):
            part = rows[m * size : (m + 1) * size]
            if compression is None:
                grads = self._gradients(part, slices)
            else:
                grads = self._staged_gradients(part, slices, parallel.stages, values)
            acc = self.accumulate(acc, grads, self._paths)
        assert acc is not None
        if compression is not None and compression.method == "aq":
            for cut, passed in enumerate(values):
                self.commit_cut(cut, rows, passed)
        self._sample_index.clear()
        self._apply(acc)

    def _staged_gradients(
        self, rows: np.ndarray, slices: int, stages: int, values: list[list[Array]]
    ) -> Grads:
        """One slice through every stage in turn, compressed where they meet."""
        h: Array | None = None
        x, targets = self._batch(rows)
        for stage in range(stages):
            h = self._stage_forward(stages, stage, rows, x if stage == 0 else h, targets)
            if stage < stages - 1:
                passed = self.cut_forward(stage, rows, h)
                values[stage].append(passed.value)
                h = passed.value
        d: Array | None = None
        grads: Grads = {}
        for stage in reversed(range(stages)):
            d, stage_grads = self.stage_backward(stage, slices, d)
            grads.update(stage_grads)
            if stage > 0:
                assert d is not None
                d = self.cut_backward(d)[0]
        return grads

    # --- pipeline stages (StageSession) ----------------------------------------------
    def _rows(self, x: Array) -> Array:
        """A stage's output as one row per sample (a transformer's ``[B·T, width]`` as
        ``[B, T·width]``)."""
        time = self._task.context
        if time:
            tokens, width = (int(d) for d in x.shape)
            return self._ops.reshape(x, [tokens // time, time * width])
        return x

    def _unrows(self, x: Array) -> Array:
        """Rows back in the shape a stage computes with."""
        time = self._task.context
        if time:
            samples, values = (int(d) for d in x.shape)
            return self._ops.reshape(x, [samples * time, values // time])
        return x

    def stage_forward(self, stages: int, stage: int, rows: np.ndarray, x: Array | None) -> Array:
        rows = np.asarray(rows, np.int64)
        targets = None
        if x is None:
            x, targets = self._batch(rows)
        return self._stage_forward(stages, stage, rows, x, targets)

    def _stage_forward(
        self, stages: int, stage: int, rows: np.ndarray, x: Array, targets: Array | None
    ) -> Array:
        """``stage_forward`` with the stage's input at hand (the first stage's: the batch's
        inputs, selected with ``targets``, which the last stage uses)."""
        first, end = bounds(self._spec, stages)[stage]
        if stage > 0:
            x = self._unrows(x)
        params = {path: self._arrays[PARAM_PREFIX + path] for path in self._paths}
        grads: Grads = {}
        out, backward = self._model.stage_forward(self._ops, params, grads, x, first, end)
        last = stage == stages - 1
        self._pending.setdefault(stage, []).append((backward, grads, out, rows, targets, last))
        return out if last else self._rows(out)

    def stage_backward(
        self, stage: int, slices: int, dy: Array | None
    ) -> tuple[Array | None, Grads]:
        backward, grads, out, rows, targets, last = self._pending[stage].pop(0)
        if dy is None:
            if not last:
                raise BackendError("only the last stage starts a backward pass from the loss")
            if targets is None:
                targets = self._targets(rows)
            dy = self._loss_gradient(out, targets, slices)
        else:
            dy = self._unrows(dy)
        dx = backward(dy)
        return (None if dx is None else self._rows(dx)), grads

    def accumulate(self, acc: Grads | None, grads: Mapping[str, Array], paths: list[str]) -> Grads:
        E = self._ops
        if acc is None:
            if self._spec.parallel is None:
                return {path: grads[path] for path in paths}
            return {path: E.add(grads[path], 0.0) for path in paths}
        return {path: E.add(acc[path], grads[path]) for path in paths}

    def apply_stage(self, paths: list[str], grads: Mapping[str, Array]) -> None:
        if self._step >= self._spec.steps:
            raise BackendError("the task has no steps left")
        self._apply(grads, paths)

    def _compression(self) -> CompressionSpec:
        parallel = self._spec.parallel
        if parallel is None or parallel.compression is None:
            raise BackendError("the task compresses nothing where its stages meet")
        return parallel.compression

    def _buffer_rows(self, cut: int, rows: np.ndarray) -> tuple[Array, Array, np.ndarray]:
        E = self._ops
        samples = np.asarray(rows, np.int64).astype(np.float32)
        # One index tensor per slice, whichever cuts read it (a step's index tensors are
        # listed by step_batch_tensors).
        index = self._sample_index.get(samples.tobytes())
        if index is None:
            index = self._sample_index[samples.tobytes()] = E.array(samples)
        buffer = E.index_select(self._arrays[activation_buffer(cut)], index, 0)
        flags = E.index_select(self._arrays[seen_buffer(cut)], index, 0)
        seen = self._kernels.to_numpy(flags) != 0
        return buffer, E.reshape(flags, [len(rows), 1]), seen

    def cut_forward(self, cut: int, rows: np.ndarray, a: Array) -> Forward[Array]:
        compression = self._compression()
        if compression.method == "direct":
            return forward_cut(self._ops, "direct", compression.bits, a)
        buffer, flags, seen = self._buffer_rows(cut, rows)
        return forward_cut(self._ops, "aq", compression.bits, a, buffer, flags, seen)

    def cut_receive(
        self, cut: int, rows: np.ndarray, quantized: Quantized[Array] | None, full: Array | None
    ) -> Array:
        compression = self._compression()
        if compression.method == "direct":
            return receive_cut(self._ops, "direct", quantized, None)
        buffer, flags, _ = self._buffer_rows(cut, rows)
        return receive_cut(self._ops, "aq", quantized, full, buffer, flags)

    def cut_backward(self, g: Array) -> tuple[Array, Quantized[Array] | None]:
        bits = self._compression().backward_bits
        if bits is None:
            return g, None
        q = quantize(self._ops, g, bits)
        return dequantize(self._ops, q), q

    def cut_receive_backward(self, quantized: Quantized[Array]) -> Array:
        return dequantize(self._ops, quantized)

    def commit_cut(self, cut: int, step_rows: np.ndarray, values: list[Array]) -> None:
        name, flags = activation_buffer(cut), seen_buffer(cut)
        self._arrays[name], self._arrays[flags] = commit_buffers(
            self._ops, self._arrays[name], self._arrays[flags], step_rows, values
        )

    def to_numpy(self, value: Array) -> np.ndarray:
        return self._kernels.to_numpy(value).copy()

    def from_numpy(self, value: np.ndarray) -> Array:
        return self._kernels.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    def _update(self, grads: Mapping[str, Array], paths: list[str]) -> None:
        E = self._ops
        spec = self._spec.optimizer
        # The step's scalars, marked so a trace can tell them from constants of the spec.
        marked = [
            StepScalar(v, i) for i, v in enumerate(step_scalars(self._spec, self._rate, self._step))
        ]
        wd = F32(spec.weight_decay)
        arrays = self._arrays
        order = sorted(paths, key=name_key)
        names = [PARAM_PREFIX + path for path in order]
        slots = [f"{OPT_PREFIX}{path}/" for path in order]
        params = [arrays[name] for name in names]
        gradients = [grads[path] for path in order]
        # Every parameter in layout order, as one call: traced, their chains run as one.
        if isinstance(spec, AdamSpec):
            exp_avgs = [arrays[slot + "exp_avg"] for slot in slots]
            exp_avg_sqs = [arrays[slot + "exp_avg_sq"] for slot in slots]
            updated = adam_updates(
                E,
                params,
                gradients,
                exp_avgs,
                exp_avg_sqs,
                scalars=AdamScalars(marked[0], marked[1]),
                beta1=F32(spec.beta1),
                beta2=F32(spec.beta2),
                eps=F32(spec.eps),
                weight_decay=wd,
            )
            for name, slot, (param, exp_avg, exp_avg_sq) in zip(names, slots, updated, strict=True):
                arrays[name] = param
                arrays[slot + "exp_avg"] = exp_avg
                arrays[slot + "exp_avg_sq"] = exp_avg_sq
            return
        assert isinstance(spec, SGDSpec)
        buffers = [arrays.get(slot + "momentum") for slot in slots]
        stepped = sgd_updates(
            E,
            params,
            gradients,
            buffers,
            lr=marked[0],
            momentum=F32(spec.momentum),
            weight_decay=wd,
        )
        for name, slot, (param, buffer) in zip(names, slots, stepped, strict=True):
            arrays[name] = param
            if buffer is not None:
                arrays[slot + "momentum"] = buffer

    # --- Session -------------------------------------------------------------------
    def run(self, batches: np.ndarray, on_step: StepCallback | None = None) -> None:
        batches = np.asarray(batches, dtype=np.int64)
        if batches.ndim != 2 or batches.shape[1] != self._spec.batch_size:
            raise BackendError(f"batches must be [steps, {self._spec.batch_size}] sample indices")
        if batches.size and (batches.min() < 0 or batches.max() >= self._task.samples):
            raise BackendError("a batch index is outside the dataset")
        if self._step + len(batches) > self._spec.steps:
            raise BackendError(
                f"running {len(batches)} steps from step {self._step} overshoots the task"
            )
        for rows in batches:
            self._train_step(rows)
            if on_step is not None:
                on_step(self._step)

    def state(self) -> State:
        return ordered(
            {name: self._kernels.to_numpy(array).copy() for name, array in self._arrays.items()}
        )

    def trace_root(self) -> bytes | None:
        return None if self._tracer is None else self._tracer.trace_root()

    def traced_distances(
        self, start: State, claimed: State, metric: str, epsilon: float
    ) -> dict[str, float]:
        """Group distances of PROTOCOL.md §3 between ``claimed`` and this session's state,
        computed in exact ops (``agents.learning.distance``); with a trace they close it, and
        ``trace_root`` covers them."""
        if metric not in ("l2", "linf"):
            raise BackendError(f"unknown distance metric {metric!r} (l2 or linf)")
        kernels = self._kernels
        if self._tracer is not None:
            self._tracer.begin_distance()
        start_arrays = {n: kernels.from_numpy(np.asarray(v, np.float32)) for n, v in start.items()}
        claimed_arrays = {
            n: kernels.from_numpy(np.asarray(v, np.float32)) for n, v in claimed.items()
        }
        groups, _segment = traced_distances(
            self._ops, start_arrays, claimed_arrays, self._arrays, cast(Metric, metric), epsilon
        )
        if self._tracer is not None:
            self._tracer.end_step()
        return groups
