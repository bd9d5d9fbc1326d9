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

from agents.learning.backends.base import Backend, BackendError, Session, StepCallback
from agents.learning.layout import (
    OPT_PREFIX,
    PARAM_PREFIX,
    STEP,
    State,
    layout_problems,
    optimizer_slots,
    ordered,
    step_of,
    step_tensor,
)
from agents.learning.models import build_model, loss_value
from agents.learning.schedule import LearningRate
from agents.learning.spec import AdamSpec
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


class NativeSession(Session):
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

    # --- a step shared by several sessions (agents.swarm) --------------------------
    def slice_gradients(
        self, rows: np.ndarray, first: int, count: int, acc: Mapping[str, np.ndarray] | None
    ) -> dict[str, np.ndarray]:
        """``acc`` plus the gradients of ``count`` slices of the step's batch ``rows`` from
        slice ``first`` (the task's ``parallel`` section fixes the slices)."""
        parallel = self._spec.parallel
        if parallel is None:
            raise BackendError("the task does not split its steps (no parallel section)")
        size = self._spec.batch_size // parallel.microbatches
        index = torch.from_numpy(np.asarray(rows, np.int64)).to(self._device)
        self._optimizer.zero_grad(set_to_none=True)
        with _arithmetic(self._backend.threads):
            for m in range(first, first + count):
                part = index[m * size : (m + 1) * size]
                output = self._model(self._inputs[part])
                loss = loss_value(self._spec, output, self._targets[part])
                (loss * (size / self._spec.batch_size)).backward()  # type: ignore[no-untyped-call]
        out: dict[str, np.ndarray] = {}
        for path, param in self._params.items():
            grad = param.grad
            value = np.zeros(param.shape, np.float32) if grad is None else grad.cpu().numpy()
            out[path] = value if acc is None else np.asarray(acc[path], np.float32) + value
        return out

    def apply_gradients(self, grads: Mapping[str, np.ndarray]) -> None:
        """One optimizer step with the step's whole gradients ``grads``."""
        if self._step >= self._spec.steps:
            raise BackendError("the task has no steps left")
        rate = float(self._rate(self._step))
        for group in self._optimizer.param_groups:
            group["lr"] = rate
        for path, param in self._params.items():
            param.grad = torch.from_numpy(np.array(grads[path], np.float32)).to(self._device)
        with _arithmetic(self._backend.threads):
            self._optimizer.step()
        self._step += 1

    def state(self) -> State:
        out: State = {}
        for path, param in self._params.items():
            out[PARAM_PREFIX + path] = param.detach().cpu().numpy().copy()
            kept = self._optimizer.state.get(param, {})
            for slot in optimizer_slots(self._spec.optimizer):
                key = "momentum_buffer" if slot == "momentum" else slot
                out[f"{OPT_PREFIX}{path}/{slot}"] = kept[key].detach().cpu().numpy().copy()
        out[STEP] = step_tensor(self._step)
        return ordered(out)
