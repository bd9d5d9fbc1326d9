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
from agents.exact.layers import Grads
from agents.exact.ops import ExactOps, StepScalar, Tracer
from agents.exact.optim import AdamScalars, adam_scalars, adam_update, sgd_update
from agents.learning.backends.base import Backend, BackendError, Session, StepCallback
from agents.learning.backends.exact_models import build_exact_model
from agents.learning.distance import Metric, traced_distances
from agents.learning.layout import (
    OPT_PREFIX,
    PARAM_PREFIX,
    STEP,
    State,
    layout_problems,
    name_key,
    optimizer_slots,
    ordered,
    parameter_shapes,
    step_of,
)
from agents.learning.schedule import LearningRate
from agents.learning.spec import AdamSpec, SGDSpec, TaskSpec
from agents.learning.task import Task

F32 = np.float32


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
    """Every index tensor of a step on batch ``rows``, in order (one group per microbatch of
    the spec's ``parallel`` section, if it has one)."""
    parallel = task.spec.parallel
    if parallel is None:
        return batch_tensors(task, rows)
    size = len(rows) // parallel.microbatches
    out: list[np.ndarray] = []
    for m in range(parallel.microbatches):
        out += batch_tensors(task, rows[m * size : (m + 1) * size])
    return out


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


class ExactSession(Session):
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

    def _gradients(self, rows: np.ndarray, slices: int = 1) -> Grads:
        """The parameter gradients of the samples ``rows``, a ``1 / slices`` share of a
        step's batch (the loss normalized over the whole batch)."""
        E = self._ops
        x, targets = self._batch(rows)
        params = {path: self._arrays[PARAM_PREFIX + path] for path in self._paths}
        grads: Grads = {}
        output, backward = self._model.forward(E, params, grads, x)
        count = None if slices == 1 else int(np.prod(output.shape[:1])) * slices
        if self._spec.loss == "cross_entropy":
            dout = cross_entropy_grad(E, output, targets, count)
        else:
            count = None if slices == 1 else int(np.prod(output.shape)) * slices
            dout = mse_grad(E, output, targets, count)
        backward(dout)
        return grads

    def _slices(self, rows: np.ndarray, first: int, count: int, acc: Grads | None) -> Grads:
        """``acc`` (``+0.0`` when ``None``) plus the gradients of slices ``first`` …
        ``first + count − 1`` of the step's batch ``rows``, added in slice order."""
        parallel = self._spec.parallel
        assert parallel is not None
        slices = parallel.microbatches
        size = len(rows) // slices
        E = self._ops
        for m in range(first, first + count):
            grads = self._gradients(rows[m * size : (m + 1) * size], slices)
            if acc is None:
                acc = {path: E.add(grads[path], 0.0) for path in self._paths}
            else:
                acc = {path: E.add(acc[path], grads[path]) for path in self._paths}
        assert acc is not None
        return acc

    def _apply(self, grads: Grads) -> None:
        E = self._ops
        self._update(grads)
        self._arrays[STEP] = E.add(self._arrays[STEP], 1.0)
        self._step += 1
        if self._tracer is not None:
            E.commit_state(self._arrays)

    def _train_step(self, rows: np.ndarray) -> None:
        parallel = self._spec.parallel
        if parallel is None:
            self._apply(self._gradients(rows))
        else:
            self._apply(self._slices(rows, 0, parallel.microbatches, None))

    # --- a step shared by several sessions (agents.swarm) --------------------------
    def slice_gradients(
        self, rows: np.ndarray, first: int, count: int, acc: Mapping[str, np.ndarray] | None
    ) -> dict[str, np.ndarray]:
        """``acc`` plus the gradients of ``count`` slices of the step's batch ``rows`` from
        slice ``first``, in order (the task's ``parallel`` section fixes the slices)."""
        if self._spec.parallel is None:
            raise BackendError("the task does not split its steps (no parallel section)")
        kernels = self._kernels
        start = None
        if acc is not None:
            start = {p: kernels.from_numpy(np.asarray(acc[p], np.float32)) for p in self._paths}
        out = self._slices(np.asarray(rows, np.int64), first, count, start)
        return {path: kernels.to_numpy(out[path]).copy() for path in self._paths}

    def apply_gradients(self, grads: Mapping[str, np.ndarray]) -> None:
        """One optimizer step with the step's whole gradients ``grads``."""
        if self._step >= self._spec.steps:
            raise BackendError("the task has no steps left")
        kernels = self._kernels
        self._apply({p: kernels.from_numpy(np.asarray(grads[p], np.float32)) for p in self._paths})

    def _update(self, grads: Mapping[str, Array]) -> None:
        E = self._ops
        spec = self._spec.optimizer
        # The step's scalars, marked so a trace can tell them from constants of the spec.
        marked = [
            StepScalar(v, i) for i, v in enumerate(step_scalars(self._spec, self._rate, self._step))
        ]
        wd = F32(spec.weight_decay)
        arrays = self._arrays
        for path in sorted(self._paths, key=name_key):
            pname = PARAM_PREFIX + path
            slot = f"{OPT_PREFIX}{path}/"
            if isinstance(spec, AdamSpec):
                beta1, beta2 = F32(spec.beta1), F32(spec.beta2)
                scalars = AdamScalars(marked[0], marked[1])
                arrays[pname], arrays[slot + "exp_avg"], arrays[slot + "exp_avg_sq"] = adam_update(
                    E,
                    arrays[pname],
                    grads[path],
                    arrays[slot + "exp_avg"],
                    arrays[slot + "exp_avg_sq"],
                    scalars=scalars,
                    beta1=beta1,
                    beta2=beta2,
                    eps=F32(spec.eps),
                    weight_decay=wd,
                )
            else:
                assert isinstance(spec, SGDSpec)
                buffer = arrays.get(slot + "momentum")
                arrays[pname], buffer = sgd_update(
                    E,
                    arrays[pname],
                    grads[path],
                    buffer,
                    lr=marked[0],
                    momentum=F32(spec.momentum),
                    weight_decay=wd,
                )
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
        return None if self._tracer is None else self._tracer.segment.root()

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
