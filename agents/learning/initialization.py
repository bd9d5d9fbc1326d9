"""The initial state of a task: a function of the spec (and its seed) alone.

Every parameter is drawn from the task PRNG (``agents.learning.prng``) with the
label ``init/<module path>``, as ``symmetric_float32(numel, bound)`` reshaped
row-major, where ``bound`` is, rounded once to binary32:

- ``nn.Linear`` weight and bias: ``1/sqrt(in_features)``;
- ``nn.Conv2d`` weight and bias: ``1/sqrt(in_channels · kernel²)``;
- ``nn.Embedding`` weight: ``1``;
- ``nn.LayerNorm``: weight all ones and bias all zeros (no draw).

(These are torch's default ranges for Linear and Conv2d, drawn from a PRNG
whose bits do not depend on torch's version or thread count.) Optimizer
tensors (and AQ-SGD's buffers) start at zero and ``step`` at 0. A task with a
parent model starts from the parent's parameters instead of the draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from agents.errors import VeritrainError
from agents.learning.layout import (
    AQ_PREFIX,
    OPT_PREFIX,
    PARAM_PREFIX,
    STEP,
    State,
    ordered,
    state_shapes,
    step_tensor,
)
from agents.learning.models import build_model
from agents.learning.prng import symmetric_float32
from agents.learning.spec import TaskSpec


class ParentModelError(VeritrainError):
    """A parent model does not fit the task's architecture."""


def _bounds(spec: TaskSpec) -> dict[str, float | None]:
    """Module path of each parameter → its init bound (``None``: LayerNorm's fixed values)."""
    with torch.device("meta"):
        model = build_model(spec)
    bounds: dict[str, float | None] = {}
    for path, module in model.named_modules():
        prefix = f"{path}." if path else ""
        if isinstance(module, nn.Linear):
            bound: float | None = 1.0 / math.sqrt(module.in_features)
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            bound = 1.0 / math.sqrt(module.in_channels * kh * kw)
        elif isinstance(module, nn.Embedding):
            bound = 1.0
        elif isinstance(module, nn.LayerNorm):
            bound = None
        else:
            continue
        for name, _ in module.named_parameters(recurse=False):
            bounds[prefix + name] = bound
    return bounds


def initial_parameters(spec: TaskSpec) -> State:
    """The seed's parameters, ``param/<module path>`` → float32 array."""
    shapes = state_shapes(spec)
    params: State = {}
    for path, bound in _bounds(spec).items():
        name = PARAM_PREFIX + path
        shape = shapes[name]
        numel = math.prod(shape)
        if bound is None:
            fill = 1.0 if path.endswith("weight") else 0.0
            params[name] = np.full(shape, fill, dtype=np.float32)
        else:
            values = symmetric_float32(spec.seed, f"init/{path}", numel, bound)
            params[name] = values.reshape(shape)
    return params


def initial_state(spec: TaskSpec, parent: Mapping[str, np.ndarray] | None = None) -> State:
    """Checkpoint 0: the seed's (or the parent's) parameters, zero optimizer state, step 0."""
    shapes = state_shapes(spec)
    if parent is None:
        params = initial_parameters(spec)
    else:
        params = {}
        for name, shape in shapes.items():
            if not name.startswith(PARAM_PREFIX):
                continue
            tensor = parent.get(name)
            if tensor is None:
                raise ParentModelError(f"the parent model has no tensor {name}")
            if tensor.dtype != np.float32 or tuple(tensor.shape) != shape:
                raise ParentModelError(
                    f"parent tensor {name} is {tensor.dtype}{list(tensor.shape)}, "
                    f"the task needs float32{list(shape)}"
                )
            params[name] = np.array(tensor, dtype=np.float32, order="C")
    state: State = dict(params)
    for name, shape in shapes.items():
        if name.startswith((OPT_PREFIX, AQ_PREFIX)):
            state[name] = np.zeros(shape, dtype=np.float32)
    state[STEP] = step_tensor(0)
    return ordered(state)
