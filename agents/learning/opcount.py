"""The static op count of one training step, from the architecture alone (for pricing and bounds).

Counted are binary32 basic operations (PROTOCOL.md §2) as the exact kernels
execute them (docs/exact.md): an elementwise operation, a compare, a select or
the causal mask is one per output element, a transcendental composite (exp, log)
``EXP_OPS`` or ``LOG_OPS`` per element, a sequential sum or ``amax`` one per
element reduced, a product ``matmul_nt`` two per multiply-add; reshapes,
transposes and gathers are free. Per sample, the forward pass:

- ``Linear(i, o)``: ``o · (2i + 1)`` (a product and a sum per input, plus the bias);
- ``Conv2d``: ``positions · out_channels · (2 · in_channels · kernel² + 1)``;
- the activation per element: ReLU one, SiLU ``4 + EXP_OPS`` (negate, exp, add,
  divide, multiply); adding residuals or positions: one per element;
- ``LayerNorm(d)``: ``7d + 5`` (two means, the centring, the squares, ``+ eps``,
  the root, its reciprocal, the scaling and the affine map);
- attention with ``h`` heads over ``T`` positions (head width ``e``): the four
  linears (the key's has no bias), ``h·T·T·(2e + 1)`` for the scaled scores, ``h·T·T``
  for the mask, ``h·T·T·(4 + EXP_OPS)`` for the softmax, ``h·T·e·2T`` for ``weights @ v``;
- the loss gradient the step computes: cross-entropy ``C·(6 + EXP_OPS)`` per row of
  ``C`` logits (the softmax, minus the one-hot targets, over the batch), mean
  squared error ``3`` per output.

The backward pass counts as twice the forward pass (the usual estimate for
matrix products: one product for the input gradient, one for the weight
gradient), and the optimizer exactly as its update runs, per parameter: SGD
``2`` plus ``2`` with momentum plus ``2`` with weight decay; Adam ``13`` plus ``2``
with weight decay. ``tests/learning/test_opcount.py`` checks the forward pass, the
loss gradient and the optimizer against a count of the operations the exact
kernels perform.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from agents.learning.spec import (
    Activation,
    AdamSpec,
    CNNSpec,
    MLPSpec,
    SGDSpec,
    TaskSpec,
    parameter_count,
)

EXP_OPS = 16
LOG_OPS = 16
BACKWARD_FACTOR = 2
ACTIVATION_OPS: dict[Activation, int] = {"relu": 1, "silu": 4 + EXP_OPS}


@dataclass(frozen=True)
class OpCount:
    """Basic operations of one step (forward, backward, optimizer) and of the whole task."""

    forward: int
    backward: int
    optimizer: int
    step: int
    task: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def _linear(i: int, o: int) -> int:
    return o * (2 * i + 1)


def _mlp_forward(widths: list[int], activation: int) -> int:
    ops = 0
    for layer, (i, o) in enumerate(itertools.pairwise(widths)):
        ops += _linear(i, o)
        if layer < len(widths) - 2:
            ops += o * activation
    return ops


def model_ops_per_sample(spec: TaskSpec) -> int:
    """The model's forward pass for one sample (one sequence for the transformer)."""
    model = spec.model
    activation = ACTIVATION_OPS[model.activation]
    if isinstance(model, MLPSpec):
        ops = _mlp_forward([model.inputs, *model.hidden, model.outputs], activation)
    elif isinstance(model, CNNSpec):
        ops = 0
        channels, height, width = model.input
        for conv in model.convs:
            height = (height + 2 * conv.padding - conv.kernel) // conv.stride + 1
            width = (width + 2 * conv.padding - conv.kernel) // conv.stride + 1
            out = height * width * conv.channels
            ops += out * (2 * channels * conv.kernel**2 + 1) + out * activation
            channels = conv.channels
        ops += _mlp_forward([channels * height * width, *model.hidden, model.outputs], activation)
    else:
        t, d, h = model.context, model.width, model.heads
        e = d // h
        # Four linears, the key's without a bias.
        attention = 4 * t * _linear(d, d) - t * d + h * t * t * (2 * e + 1 + 1 + 4 + EXP_OPS)
        attention += h * t * e * 2 * t
        mlp = t * (_linear(d, model.ff) + model.ff * activation + _linear(model.ff, d))
        norms = 2 * t * (7 * d + 5)
        block = attention + mlp + norms + 2 * t * d
        ops = t * d + model.layers * block + t * (7 * d + 5) + t * _linear(d, model.vocab)
    return ops


def loss_ops_per_sample(spec: TaskSpec) -> int:
    """The loss gradient for one sample's outputs."""
    model = spec.model
    if isinstance(model, MLPSpec | CNNSpec):
        outputs, rows = model.outputs, 1
    else:
        outputs, rows = model.vocab, model.context
    if spec.loss == "cross_entropy":
        return rows * outputs * (6 + EXP_OPS)
    return rows * outputs * 3


def forward_ops_per_sample(spec: TaskSpec) -> int:
    """Forward-pass basic operations for one sample, the loss gradient included."""
    return model_ops_per_sample(spec) + loss_ops_per_sample(spec)


def optimizer_ops_per_parameter(optimizer: SGDSpec | AdamSpec) -> int:
    """The optimizer's update of one parameter element."""
    decay = 2 if optimizer.weight_decay else 0
    if isinstance(optimizer, AdamSpec):
        return 13 + decay
    return 2 + (2 if optimizer.momentum else 0) + decay


def op_count(spec: TaskSpec) -> OpCount:
    """The static op count of the spec's training step and of the whole task."""
    forward = forward_ops_per_sample(spec) * spec.batch_size
    backward = BACKWARD_FACTOR * forward
    optimizer = optimizer_ops_per_parameter(spec.optimizer) * parameter_count(spec.model)
    step = forward + backward + optimizer
    return OpCount(forward, backward, optimizer, step, step * spec.steps)
