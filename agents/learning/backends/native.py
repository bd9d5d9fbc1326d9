"""The native backend: the spec's model, loss and optimizer in plain torch (CPU or CUDA).

The optimizers are torch's own (``foreach=False``, single-tensor formulas):

- SGD: ``g = g + wd·p``; ``b = μ·b + g``; ``p = p − lr·b`` (the buffer starts at
  zero, so the first step uses the same formula as every other);
- Adam: ``t = t + 1``; ``g = g + wd·p``; ``m = lerp(m, g, 1 − β1)``;
  ``v = β2·v + (1 − β2)·g²``; ``p = p − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)``.

Options vary how the same arithmetic is carried out without changing what is
computed, which is what an honest solver on other hardware does:
``threads`` (intra-op threads; one by default, which is fastest for the small
operations of the example tasks and keeps a CPU's results independent of its
core count; ``0`` keeps torch's own setting), ``microbatches`` (gradient
accumulation over equal slices of each batch, each slice's loss weighted by its
share) and ``device``. On CUDA, TensorFloat-32 is off while a session computes
(``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32``,
the latter on by default for convolutions): TF32 keeps 10 bits of the mantissa,
so its products drift about 10³ times further than binary32 rounding, beyond
any τ a profile of binary32 training proposes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import torch

from agents.learning.backends.base import (
    Backend,
    BackendError,
    Session,
    StageSession,
    StepCallback,
)
from agents.learning.compression import (
    Forward,
    Quantized,
    TorchOps,
    commit_buffers,
    dequantize,
    forward_cut,
    quantize,
    receive_cut,
)
from agents.learning.layout import (
    OPT_PREFIX,
    PARAM_PREFIX,
    STEP,
    State,
    activation_buffer,
    buffer_shapes,
    layout_problems,
    optimizer_slots,
    ordered,
    seen_buffer,
    step_of,
    step_tensor,
)
from agents.learning.models import build_model, loss_value, stage_output
from agents.learning.schedule import LearningRate
from agents.learning.spec import AdamSpec, CompressionSpec
from agents.learning.stages import bounds, stage_of_path
from agents.learning.task import Task


class NativeBackend(Backend):
    """Plain torch; see the module docstring for the options."""

    name = "native"

    def __init__(self, device: str = "cpu", threads: int = 1, microbatches: int = 1) -> None:
        if microbatches < 1:
            raise BackendError("microbatches must be at least 1")
        if threads < 0:
            raise BackendError("threads must be at least 0")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("device cuda requested but torch sees no CUDA device")
        self.device = torch.device(device)
        self.threads = threads if threads > 0 else None
        self.microbatches = microbatches

    def start(self, task: Task, state: State, *, trace: bool = False) -> Session:
        return NativeSession(self, task, state)

    def describe(self) -> str:
        options = [f"device={self.device}"]
        if self.threads is not None:
            options.append(f"threads={self.threads}")
        if self.microbatches != 1:
            options.append(f"microbatches={self.microbatches}")
        return f"native({', '.join(options)})"


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _binary32() -> Iterator[None]:
    """TensorFloat-32 off for matrix products and convolutions (restored afterwards)."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


@contextmanager
def _arithmetic(threads: int | None) -> Iterator[None]:
    """How a session computes: its intra-op threads, binary32 throughout."""
    with _threads(threads), _binary32():
        yield


# A slice waiting for its backward pass: the stage's input (None on the first stage), its
# output, the samples, the pipeline's depth.
_Pending = tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, int]


class NativeSession(Session, StageSession):
    """Model and optimizer live on the backend's device between ``run`` calls."""

    def __init__(self, backend: NativeBackend, task: Task, state: State) -> None:
        problems = layout_problems(task.spec, state)
        if problems:
            raise BackendError(f"state does not fit task {task.spec.name}: {'; '.join(problems)}")
        spec = task.spec
        if spec.batch_size % backend.microbatches:
            raise BackendError(
                f"batch size {spec.batch_size} does not split into {backend.microbatches} slices"
            )
        self._backend = backend
        self._task = task
        self._spec = spec
        self._device = backend.device
        self._step = step_of(state)
        self._rate = LearningRate(spec)
        self._model = build_model(spec).to(self._device)
        self._params = dict(self._model.named_parameters())
        with torch.no_grad():
            for path, param in self._params.items():
                param.copy_(torch.from_numpy(np.array(state[PARAM_PREFIX + path])))
        self._optimizer = self._make_optimizer(state)
        self._ops = TorchOps(self._device)
        self._buffers = {
            name: torch.from_numpy(np.array(state[name], np.float32)).to(self._device)
            for name in buffer_shapes(spec)
        }
        self._pending: dict[int, list[_Pending]] = {}
        # Copies: arrays read from artifacts are read-only views, which torch will not wrap.
        inputs = torch.from_numpy(np.array(task.inputs)).to(self._device)
        if task.targets is None:
            windows = inputs.unfold(0, task.context + 1, 1)
            self._inputs, self._targets = windows[:, :-1], windows[:, 1:]
        else:
            self._inputs = inputs
            self._targets = torch.from_numpy(np.array(task.targets)).to(self._device)

    def _make_optimizer(self, state: State) -> torch.optim.Optimizer:
        spec = self._spec.optimizer
        params = list(self._params.values())
        optimizer: torch.optim.Optimizer
        if isinstance(spec, AdamSpec):
            optimizer = torch.optim.Adam(
                params,
                lr=0.0,
                betas=(float(np.float32(spec.beta1)), float(np.float32(spec.beta2))),
                eps=float(np.float32(spec.eps)),
                weight_decay=float(np.float32(spec.weight_decay)),
                foreach=False,
                fused=False,
            )
        else:
            optimizer = torch.optim.SGD(
                params,
                lr=0.0,
                momentum=float(np.float32(spec.momentum)),
                weight_decay=float(np.float32(spec.weight_decay)),
                foreach=False,
            )
        slots = optimizer_slots(spec)
        for path, param in self._params.items():
            tensors = {
                slot: torch.from_numpy(np.array(state[f"{OPT_PREFIX}{path}/{slot}"])).to(
                    self._device
                )
                for slot in slots
            }
            if isinstance(spec, AdamSpec):
                optimizer.state[param] = {
                    "step": torch.tensor(float(self._step), dtype=torch.float32),
                    "exp_avg": tensors["exp_avg"],
                    "exp_avg_sq": tensors["exp_avg_sq"],
                }
            elif slots:
                optimizer.state[param] = {"momentum_buffer": tensors["momentum"]}
        return optimizer

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
        all_rows = torch.from_numpy(np.array(batches)).to(self._device)
        slices = self._backend.microbatches
        share = self._spec.batch_size // slices
        parallel = self._spec.parallel
        if parallel is not None and parallel.compression is not None:
            for rows in all_rows:
                self._staged_step(rows)
                if on_step is not None:
                    on_step(self._step)
            return
        with _arithmetic(self._backend.threads):
            for rows in all_rows:
                rate = float(self._rate(self._step))
                for group in self._optimizer.param_groups:
                    group["lr"] = rate
                self._optimizer.zero_grad(set_to_none=True)
                for part in range(slices):
                    index = rows[part * share : (part + 1) * share] if slices > 1 else rows
                    output = self._model(self._inputs[index])
                    loss = loss_value(self._spec, output, self._targets[index])
                    if slices > 1:
                        loss = loss * (share / self._spec.batch_size)
                    loss.backward()  # type: ignore[no-untyped-call]
                self._optimizer.step()
                self._step += 1
                if on_step is not None:
                    on_step(self._step)

    # --- a task that cuts its model: every stage in turn -----------------------------
    def _staged_step(self, rows: torch.Tensor) -> None:
        parallel = self._spec.parallel
        assert parallel is not None and parallel.compression is not None
        slices, stages = parallel.microbatches, parallel.stages
        size = self._spec.batch_size // slices
        step_rows = rows.cpu().numpy()
        values: list[list[torch.Tensor]] = [[] for _ in range(stages - 1)]
        acc: dict[str, torch.Tensor] | None = None
        for m in range(slices):
            part = step_rows[m * size : (m + 1) * size]
            h: torch.Tensor | None = None
            for stage in range(stages):
                h = self.stage_forward(stages, stage, part, h)
                if stage < stages - 1:
                    passed = self.cut_forward(stage, part, h)
                    values[stage].append(passed.value)
                    h = passed.value
            d: torch.Tensor | None = None
            grads: dict[str, torch.Tensor] = {}
            for stage in reversed(range(stages)):
                d, stage_grads = self.stage_backward(stage, slices, d)
                grads.update(stage_grads)
                if stage > 0:
                    assert d is not None
                    d = self.cut_backward(d)[0]
            acc = self.accumulate(acc, grads, list(self._params))
        if parallel.compression.method == "aq":
            for cut, passed_on in enumerate(values):
                self.commit_cut(cut, step_rows, passed_on)
        assert acc is not None
        self.apply_stage(list(self._params), acc)

    def loss(self, rows: np.ndarray) -> float:
        """The loss of the samples ``rows`` with the current parameters, computed as training
        computes it (compressed where stages meet, the buffers read and left unchanged)."""
        parallel = self._spec.parallel
        index = torch.from_numpy(np.asarray(rows, np.int64)).to(self._device)
        with torch.no_grad(), _arithmetic(self._backend.threads):
            if parallel is None or parallel.compression is None:
                output = self._model(self._inputs[index])
            else:
                h = self._inputs[index]
                for stage, (first, end) in enumerate(bounds(self._spec, parallel.stages)):
                    h = stage_output(self._model, self._spec, first, end, h)
                    if stage < parallel.stages - 1:
                        h = self._unrows(self.cut_forward(stage, rows, self._rows(h)).value)
                output = h
            return float(loss_value(self._spec, output, self._targets[index]))

    # --- pipeline stages (StageSession) ----------------------------------------------
    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)

    def _unrows(self, x: torch.Tensor) -> torch.Tensor:
        if self._task.context:
            return x.reshape(x.shape[0], self._task.context, -1)
        return x

    def stage_forward(
        self, stages: int, stage: int, rows: np.ndarray, x: torch.Tensor | None
    ) -> torch.Tensor:
        first, end = bounds(self._spec, stages)[stage]
        index = torch.from_numpy(np.asarray(rows, np.int64)).to(self._device)
        h = self._inputs[index] if x is None else self._unrows(x).detach().requires_grad_(True)
        with _arithmetic(self._backend.threads), torch.enable_grad():
            out = stage_output(self._model, self._spec, first, end, h)
        last = stage == stages - 1
        entry = (h if x is not None else None, out, index, stages)
        self._pending.setdefault(stage, []).append(entry)
        return out.detach() if last else self._rows(out.detach())

    def stage_backward(
        self, stage: int, slices: int, dy: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        x, out, index, stages = self._pending[stage].pop(0)
        paths = [p for p in self._params if stage_of_path(self._spec, stages, p) == stage]
        inputs = [self._params[p] for p in paths] + ([x] if x is not None else [])
        with _arithmetic(self._backend.threads):
            if dy is None:
                loss = loss_value(self._spec, out, self._targets[index])
                if self._spec.parallel is not None:
                    loss = loss * (len(index) / self._spec.batch_size)
                got = torch.autograd.grad(loss, inputs, allow_unused=True)
            else:
                got = torch.autograd.grad(out, inputs, self._unrows(dy), allow_unused=True)
        grads = {
            p: torch.zeros_like(self._params[p]) if g is None else g
            for p, g in zip(paths, got[: len(paths)], strict=True)
        }
        dx = self._rows(got[-1]) if x is not None else None
        return dx, grads

    def accumulate(
        self,
        acc: dict[str, torch.Tensor] | None,
        grads: Mapping[str, torch.Tensor],
        paths: list[str],
    ) -> dict[str, torch.Tensor]:
        if acc is None:
            if self._spec.parallel is None:
                return {p: grads[p] for p in paths}
            return {p: grads[p] + 0.0 for p in paths}
        return {p: acc[p] + grads[p] for p in paths}

    def apply_stage(self, paths: list[str], grads: Mapping[str, torch.Tensor]) -> None:
        if self._step >= self._spec.steps:
            raise BackendError("the task has no steps left")
        rate = float(self._rate(self._step))
        for group in self._optimizer.param_groups:
            group["lr"] = rate
        chosen = set(paths)
        for path, param in self._params.items():
            param.grad = grads[path].to(self._device) if path in chosen else None
        with _arithmetic(self._backend.threads):
            self._optimizer.step()
        self._step += 1

    def _compression(self) -> CompressionSpec:
        parallel = self._spec.parallel
        if parallel is None or parallel.compression is None:
            raise BackendError("the task compresses nothing where its stages meet")
        return parallel.compression

    def _buffer_rows(
        self, cut: int, rows: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        index = torch.from_numpy(np.asarray(rows, np.int64)).to(self._device)
        flags = self._buffers[seen_buffer(cut)][index]
        buffer = self._buffers[activation_buffer(cut)][index]
        return buffer, flags.reshape(-1, 1), flags.cpu().numpy() != 0

    def cut_forward(self, cut: int, rows: np.ndarray, a: torch.Tensor) -> Forward[torch.Tensor]:
        compression = self._compression()
        if compression.method == "direct":
            return forward_cut(self._ops, "direct", compression.bits, a)
        buffer, flags, seen = self._buffer_rows(cut, rows)
        return forward_cut(self._ops, "aq", compression.bits, a, buffer, flags, seen)

    def cut_receive(
        self,
        cut: int,
        rows: np.ndarray,
        quantized: Quantized[torch.Tensor] | None,
        full: torch.Tensor | None,
    ) -> torch.Tensor:
        compression = self._compression()
        if compression.method == "direct":
            return receive_cut(self._ops, "direct", quantized, None)
        buffer, flags, _ = self._buffer_rows(cut, rows)
        return receive_cut(self._ops, "aq", quantized, full, buffer, flags)

    def cut_backward(self, g: torch.Tensor) -> tuple[torch.Tensor, Quantized[torch.Tensor] | None]:
        bits = self._compression().backward_bits
        if bits is None:
            return g, None
        q = quantize(self._ops, g, bits)
        return dequantize(self._ops, q), q

    def cut_receive_backward(self, quantized: Quantized[torch.Tensor]) -> torch.Tensor:
        return dequantize(self._ops, quantized)

    def commit_cut(self, cut: int, step_rows: np.ndarray, values: list[torch.Tensor]) -> None:
        name, flags = activation_buffer(cut), seen_buffer(cut)
        self._buffers[name], self._buffers[flags] = commit_buffers(
            self._ops, self._buffers[name], self._buffers[flags], step_rows, values
        )

    def to_numpy(self, value: torch.Tensor) -> np.ndarray:
        return np.array(value.detach().cpu().numpy(), dtype=np.float32)

    def from_numpy(self, value: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(value, dtype=np.float32)).to(self._device)

    def state(self) -> State:
        out: State = {}
        for path, param in self._params.items():
            out[PARAM_PREFIX + path] = param.detach().cpu().numpy().copy()
            kept = self._optimizer.state.get(param, {})
            for slot in optimizer_slots(self._spec.optimizer):
                key = "momentum_buffer" if slot == "momentum" else slot
                out[f"{OPT_PREFIX}{path}/{slot}"] = kept[key].detach().cpu().numpy().copy()
        for name, buffer in self._buffers.items():
            out[name] = buffer.cpu().numpy().copy()
        out[STEP] = step_tensor(self._step)
        return ordered(out)
