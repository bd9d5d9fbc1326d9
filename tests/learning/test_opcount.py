"""The static op count against an independent count: the operations the exact kernels perform
for the forward pass, the loss gradient and the optimizer of every example model, counted by
kernels that count what they compute (fused kernels off, so each op is seen)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from agents.exact.composites import cross_entropy_grad, mse_grad
from agents.exact.cpu import CpuKernels
from agents.exact.ops import ExactOps
from agents.exact.optim import adam_scalars, adam_update, sgd_update
from agents.learning.backends.exact_models import build_exact_model
from agents.learning.layout import PARAM_PREFIX, parameter_shapes
from agents.learning.opcount import (
    loss_ops_per_sample,
    model_ops_per_sample,
    op_count,
    optimizer_ops_per_parameter,
)
from agents.learning.spec import AdamSpec, SGDSpec, parse_spec
from tests.exact.tasks import EXAMPLE_NAMES, example_task

# What one call costs, by the kernel method: per output element, except where noted.
TRANSCENDENTAL = 16  # exp and log, as docs/spec.md prices them
ELEMENTWISE = [
    "add",
    "sub",
    "mul",
    "div",
    "maximum",
    "minimum",
    "lt",
    "le",
    "eq",
    "select",
    "ldexp",
    "neg",
    "abs",
    "sqrt",
    "causal_fill",
]


class CountingKernels(CpuKernels):
    """CPU kernels that count the basic operations of every top-level call."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._depth = 0

    def _counted(self, compute: Callable[[], Any], cost: Callable[[Any], int]) -> Any:
        self._depth += 1
        try:
            out = compute()
        finally:
            self._depth -= 1
        if self._depth == 0:  # a kernel calling another is one operation
            self.count += cost(out)
        return out

    # Fused sequences are turned off: the counted sequence is the documented one.
    def fused_adam(self, *args: Any, **kwargs: Any) -> Any:
        return None

    def fused_sgd(self, *args: Any, **kwargs: Any) -> Any:
        return None

    def fused_layer_norm(self, *args: Any, **kwargs: Any) -> Any:
        return None

    def fused_layer_norm_backward(self, *args: Any, **kwargs: Any) -> Any:
        return None

    def fused_softmax(self, *args: Any, **kwargs: Any) -> Any:
        return None

    def fused_softmax_backward(self, *args: Any, **kwargs: Any) -> Any:
        return None


def _elementwise(name: str, per_element: int) -> Any:
    base = getattr(CpuKernels, name)

    def method(self: CountingKernels, *args: Any) -> Any:
        return self._counted(lambda: base(self, *args), lambda out: per_element * out.size)

    return method


for _name in ELEMENTWISE:
    setattr(CountingKernels, _name, _elementwise(_name, 1))
for _name in ("exp", "log"):
    setattr(CountingKernels, _name, _elementwise(_name, TRANSCENDENTAL))


def _reduction(name: str) -> Any:
    base = getattr(CpuKernels, name)

    def method(self: CountingKernels, x: Any, axis: int) -> Any:
        return self._counted(lambda: base(self, x, axis), lambda out: x.size)

    return method


CountingKernels.sum = _reduction("sum")  # type: ignore[method-assign]
CountingKernels.amax = _reduction("amax")  # type: ignore[method-assign]


def _matmul_nt(self: CountingKernels, a: Any, b: Any) -> Any:
    depth = int(a.shape[-1])
    return self._counted(lambda: CpuKernels.matmul_nt(self, a, b), lambda out: 2 * depth * out.size)


CountingKernels.matmul_nt = _matmul_nt  # type: ignore[method-assign, assignment]

BATCH = 3


def _batch(task: Any, kernels: CountingKernels) -> tuple[Any, Any]:
    rows = np.arange(BATCH)
    if task.targets is not None:
        x = np.ascontiguousarray(task.inputs[rows], dtype=np.float32)
        return kernels.from_numpy(x), kernels.from_numpy(
            np.ascontiguousarray(task.targets[rows], dtype=np.float32)
        )
    starts = rows[:, None] + np.arange(task.context)[None, :]
    x = task.inputs[starts].astype(np.float32)
    targets = task.inputs[(starts + 1).reshape(-1)].astype(np.float32)
    return kernels.from_numpy(x), kernels.from_numpy(targets)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_forward_pass_and_loss_gradient(name: str) -> None:
    task = example_task(name)
    spec = task.spec
    kernels = CountingKernels()
    E = ExactOps(kernels)
    state = task.initial_state()
    params = {
        path: kernels.from_numpy(np.asarray(state[PARAM_PREFIX + path], np.float32))
        for path in parameter_shapes(spec)
    }
    x, targets = _batch(task, kernels)
    output, _backward = build_exact_model(spec).forward(E, params, {}, x)
    assert kernels.count == BATCH * model_ops_per_sample(spec)
    kernels.count = 0
    if spec.loss == "cross_entropy":
        cross_entropy_grad(E, output, targets)
    else:
        mse_grad(E, output, targets)
    assert kernels.count == BATCH * loss_ops_per_sample(spec)


def test_mse_loss_gradient() -> None:
    spec = example_task("mlp").spec
    kernels = CountingKernels()
    E = ExactOps(kernels)
    output = E.array(np.ones((BATCH, 10), dtype=np.float32))
    mse_grad(E, output, E.array(np.zeros((BATCH, 10), dtype=np.float32)))
    regression = spec.model_copy(update={"loss": "mse"})
    assert kernels.count == BATCH * loss_ops_per_sample(regression)


OPTIMIZERS = [
    SGDSpec(kind="sgd"),
    SGDSpec(kind="sgd", momentum=0.9),
    SGDSpec(kind="sgd", weight_decay=1e-4),
    SGDSpec(kind="sgd", momentum=0.9, weight_decay=1e-4),
    AdamSpec(kind="adam"),
    AdamSpec(kind="adam", weight_decay=0.01),
    AdamSpec(kind="adam", beta1=0.3),  # the other branch of Adam's lerp
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=repr)
def test_optimizer_update(optimizer: SGDSpec | AdamSpec) -> None:
    kernels = CountingKernels()
    E = ExactOps(kernels)
    shape = (7, 5)
    param, grad = (E.array(np.full(shape, v, dtype=np.float32)) for v in (0.5, 0.25))
    zeros = E.array(np.zeros(shape, dtype=np.float32))
    lr = np.float32(0.01)
    if isinstance(optimizer, AdamSpec):
        beta1, beta2 = np.float32(optimizer.beta1), np.float32(optimizer.beta2)
        adam_update(
            E,
            param,
            grad,
            zeros,
            zeros,
            scalars=adam_scalars(lr, beta1, beta2, 1),
            beta1=beta1,
            beta2=beta2,
            eps=np.float32(optimizer.eps),
            weight_decay=np.float32(optimizer.weight_decay),
        )
    else:
        sgd_update(
            E,
            param,
            grad,
            zeros if optimizer.momentum else None,
            lr=lr,
            momentum=np.float32(optimizer.momentum),
            weight_decay=np.float32(optimizer.weight_decay),
        )
    assert kernels.count == 35 * optimizer_ops_per_parameter(optimizer)


def test_the_step_and_the_task_add_up() -> None:
    for name in EXAMPLE_NAMES:
        spec = example_task(name).spec
        count = op_count(spec)
        forward = (model_ops_per_sample(spec) + loss_ops_per_sample(spec)) * spec.batch_size
        assert count.forward == forward and count.backward == 2 * forward
        assert count.step == count.forward + count.backward + count.optimizer
        assert count.task == count.step * spec.steps
    assert callable(parse_spec)  # the spec module is what op_count reads
