"""The static op count of one training step, from the architecture alone (for pricing and bounds).

Counted are binary32 basic operations (PROTOCOL.md §2) per sample, then times
the batch size; a transcendental composite (exp, log) counts as ``EXP_OPS`` or
``LOG_OPS`` basic operations. Per sample, forward:

- ``Linear(i, o)``: ``o · (2i + 1)`` (a product and a sum per input, plus the bias);
- ``Conv2d``: ``positions · out_channels · (2 · in_channels · kernel² + 1)``;
- the activation per element: ReLU one, SiLU ``4 + EXP_OPS`` (negate, exp, add,
  divide, multiply); adding residuals or positions: one per element;
- ``LayerNorm(d)``: ``7d + 4``;
- attention with ``h`` heads over ``T`` positions (head width ``e``): the four
  linears (the key's has no bias), ``h·T·T·(2e + 1)`` for the scaled scores, ``h·T·T`` for the mask,
  ``h·T·T·(4 + EXP_OPS)`` for the softmax, ``h·T·e·2T`` for ``weights @ v``;
- loss: cross-entropy ``C·(3 + EXP_OPS) + LOG_OPS + 2`` per row of ``C`` logits,
  mean squared error ``3`` per output.

The backward pass counts as twice the forward pass (the usual estimate for
matrix products: one product for the input gradient, one for the weight
gradient), and the optimizer as ``SGD_OPS`` or ``ADAM_OPS`` per parameter.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from agents.learning.spec import Activation, AdamSpec, CNNSpec, MLPSpec, TaskSpec, parameter_count

EXP_OPS = 16
LOG_OPS = 16
SGD_OPS = 6
ADAM_OPS = 14
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


def forward_ops_per_sample(spec: TaskSpec) -> int:
    """Forward-pass basic operations for one sample, loss included."""
    model = spec.model
    activation = ACTIVATION_OPS[model.activation]
    if isinstance(model, MLPSpec):
        ops = _mlp_forward([model.inputs, *model.hidden, model.outputs], activation)
        outputs = model.outputs
        rows = 1
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
        outputs, rows = model.outputs, 1
    else:
        t, d, h = model.context, model.width, model.heads
        e = d // h
        # Four linears, the key's without a bias.
        attention = 4 * t * _linear(d, d) - t * d + h * t * t * (2 * e + 1 + 1 + 4 + EXP_OPS)
        attention += h * t * e * 2 * t
        mlp = t * (_linear(d, model.ff) + model.ff * activation + _linear(model.ff, d))
        norms = 2 * t * (7 * d + 4)
        block = attention + mlp + norms + 2 * t * d
        ops = t * d + model.layers * block + t * (7 * d + 4) + t * _linear(d, model.vocab)
        outputs, rows = model.vocab, t
    if spec.loss == "cross_entropy":
        ops += rows * (outputs * (3 + EXP_OPS) + LOG_OPS + 2)
    else:
        ops += rows * outputs * 3
    return ops


def op_count(spec: TaskSpec) -> OpCount:
    """The static op count of the spec's training step and of the whole task."""
    forward = forward_ops_per_sample(spec) * spec.batch_size
    backward = BACKWARD_FACTOR * forward
    per_param = ADAM_OPS if isinstance(spec.optimizer, AdamSpec) else SGD_OPS
    optimizer = per_param * parameter_count(spec.model)
    step = forward + backward + optimizer
    return OpCount(forward, backward, optimizer, step, step * spec.steps)
