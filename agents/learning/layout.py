"""The state layout: what a checkpoint holds, by name, for a given spec.

A checkpoint's state is an ordered mapping name → float32 tensor (numpy,
C-contiguous, little-endian), ordered by name as UTF-8 bytes, which is the
order of the state root (PROTOCOL.md §3, §4):

- ``param/<module path>``: every trainable parameter (names from ``agents.learning.models``);
- ``opt/<module path>/momentum``: SGD's momentum buffer (only when momentum > 0);
- ``opt/<module path>/exp_avg`` and ``opt/<module path>/exp_avg_sq``: Adam's moments;
- ``aq/<cut>/activation`` and ``aq/<cut>/seen``: with AQ-SGD compression
  (``parallel.compression.method: aq``), for each cut between pipeline stages the
  activation each sample last passed on (``[samples, values per sample]``) and
  whether it has passed one yet (``[samples]``, 0 or 1);
- ``step``: the number of optimizer steps taken, a 0-dimensional float32 tensor
  (exact because specs bound steps below 2**24).

At step 0 the optimizer tensors and buffers are zeros; every backend (native torch, the
exact kernels) reads and writes exactly this layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import torch

from agents.learning.models import build_model
from agents.learning.spec import AdamSpec, SGDSpec, TaskSpec, cut_sizes

State = dict[str, np.ndarray]
"""A checkpoint's tensors by name, in layout order (see ``ordered``)."""

PARAM_PREFIX = "param/"
OPT_PREFIX = "opt/"
AQ_PREFIX = "aq/"
STEP = "step"


def name_key(name: str) -> bytes:
    """The sort key of state names: their UTF-8 bytes."""
    return name.encode()


def ordered(state: Mapping[str, np.ndarray]) -> State:
    """``state`` as a dict in layout (UTF-8 byte) order."""
    return {name: state[name] for name in sorted(state, key=name_key)}


def optimizer_slots(optimizer: SGDSpec | AdamSpec) -> tuple[str, ...]:
    """The per-parameter optimizer tensors the optimizer keeps, in this order."""
    if isinstance(optimizer, AdamSpec):
        return ("exp_avg", "exp_avg_sq")
    return ("momentum",) if optimizer.momentum > 0 else ()


@lru_cache(maxsize=64)
def _parameter_shapes(spec: TaskSpec) -> tuple[tuple[str, tuple[int, ...]], ...]:
    with torch.device("meta"):
        model = build_model(spec)
    return tuple((name, tuple(p.shape)) for name, p in model.named_parameters())


def parameter_shapes(spec: TaskSpec) -> dict[str, tuple[int, ...]]:
    """Module path → shape of every trainable parameter, in the model's own order."""
    return dict(_parameter_shapes(spec))


def state_shapes(spec: TaskSpec) -> dict[str, tuple[int, ...]]:
    """Every name of the spec's state with its shape, in layout order."""
    shapes: dict[str, tuple[int, ...]] = {STEP: ()}
    slots = optimizer_slots(spec.optimizer)
    for path, shape in _parameter_shapes(spec):
        shapes[PARAM_PREFIX + path] = shape
        for slot in slots:
            shapes[f"{OPT_PREFIX}{path}/{slot}"] = shape
    shapes.update(buffer_shapes(spec))
    return {name: shapes[name] for name in sorted(shapes, key=name_key)}


def buffer_shapes(spec: TaskSpec) -> dict[str, tuple[int, ...]]:
    """The AQ-SGD buffers of the spec's state (none without ``aq`` compression)."""
    parallel = spec.parallel
    compression = parallel.compression if parallel is not None else None
    if parallel is None or compression is None or compression.samples is None:
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    for cut, size in enumerate(cut_sizes(spec.model, parallel.stages)):
        shapes[activation_buffer(cut)] = (compression.samples, size)
        shapes[seen_buffer(cut)] = (compression.samples,)
    return shapes


def activation_buffer(cut: int) -> str:
    """The state name of the activations AQ-SGD keeps at ``cut``."""
    return f"{AQ_PREFIX}{cut}/activation"


def seen_buffer(cut: int) -> str:
    """The state name of the flags saying which samples have crossed ``cut``."""
    return f"{AQ_PREFIX}{cut}/seen"


def layout_problems(spec: TaskSpec, state: Mapping[str, np.ndarray]) -> list[str]:
    """What is wrong with ``state`` against the spec's layout (empty when it matches)."""
    expected = state_shapes(spec)
    problems = []
    missing = [n for n in expected if n not in state]
    extra = [n for n in state if n not in expected]
    if missing:
        problems.append(f"missing tensors: {', '.join(missing[:5])}")
    if extra:
        problems.append(f"unexpected tensors: {', '.join(extra[:5])}")
    for name, shape in expected.items():
        tensor = state.get(name)
        if tensor is None:
            continue
        if tensor.dtype != np.float32:
            problems.append(f"{name} has dtype {tensor.dtype}, expected float32")
        if tuple(tensor.shape) != shape:
            problems.append(f"{name} has shape {list(tensor.shape)}, expected {list(shape)}")
    return problems


def parameters(state: Mapping[str, np.ndarray]) -> State:
    """Only the ``param/`` tensors of a state, in layout order."""
    return ordered({n: t for n, t in state.items() if n.startswith(PARAM_PREFIX)})


def step_of(state: Mapping[str, np.ndarray]) -> int:
    """The step counter of a state as an integer."""
    return int(np.asarray(state[STEP], dtype=np.float32).reshape(()))


def step_tensor(step: int) -> np.ndarray:
    """The ``step`` entry for ``step`` optimizer steps."""
    return np.array(step, dtype=np.float32)
