"""A model cut into pipeline stages: which units and parameters each stage holds.

The units are an MLP's linear layers (each with the activation after it) and a
transformer's blocks; stage ``s`` of ``S`` holds the contiguous units
``agents.learning.spec.stage_bounds(units, S)[s]``, the first stage also the input
embeddings, the last also the final norm and the head. What a stage passes to the next
is, per sample, the hidden vector (MLP) or the ``[context, width]`` residual stream
(transformer).
"""

from __future__ import annotations

import re

from agents.learning.layout import parameter_shapes
from agents.learning.spec import MLPSpec, TaskSpec, TransformerSpec, model_units, stage_bounds

_UNIT = re.compile(r"^(?:layers|blocks)\.(\d+)\.")


def stage_count(spec: TaskSpec) -> int:
    """The spec's ``parallel.stages`` (1 without a ``parallel`` section)."""
    return spec.parallel.stages if spec.parallel is not None else 1


def bounds(spec: TaskSpec, stages: int) -> list[tuple[int, int]]:
    """``[first, end)`` units of each of ``stages`` stages."""
    units = model_units(spec.model)
    if stages > 1 and not isinstance(spec.model, (MLPSpec, TransformerSpec)):
        raise ValueError(f"a {spec.model.kind} is not cut into stages")
    return stage_bounds(max(units, 1), stages)


def stage_of_path(spec: TaskSpec, stages: int, path: str) -> int:
    """The stage that holds parameter ``path`` (a module path)."""
    if stages == 1:
        return 0
    match = _UNIT.match(path)
    if match is None:
        return 0 if path.split(".")[0] in ("tokens", "positions") else stages - 1
    unit = int(match.group(1))
    for s, (first, end) in enumerate(bounds(spec, stages)):
        if first <= unit < end:
            return s
    raise ValueError(f"parameter {path} is in no stage")


def stage_paths(spec: TaskSpec, stages: int, stage: int) -> list[str]:
    """The module paths of stage ``stage``'s parameters, in the model's own order."""
    return [p for p in parameter_shapes(spec) if stage_of_path(spec, stages, p) == stage]
