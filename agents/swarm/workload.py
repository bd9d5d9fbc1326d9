"""What one training iteration moves: a model's shapes, its batch and its pipeline depth.

A model file (JSON) describes a decoder-only transformer by its shapes and how it
is trained::

    {"name": "gpt3-1.3b", "layers": 24, "d_model": 2048, "seq_len": 2048,
     "vocab": 50257, "batch": 512, "microbatch": 1, "stages": 8,
     "activation_bytes": 2, "gradient_bytes": 4}

From it the scheduler needs two sizes (the paper's ``c_dp`` and ``c_pp``):

* ``gradient_bytes_per_stage``: the gradients one stage all-reduces within its
  data-parallel group each iteration: its parameters times ``gradient_bytes``.
  Parameters are spread evenly over the stages, embeddings included, as in the
  paper's model;
* ``activation_bytes_per_boundary``: what one pipeline sends across one stage
  boundary each iteration, forward (activations) and, as much again, backward
  (their gradients): the replica's share of the batch times ``seq_len`` times
  ``d_model`` times ``activation_bytes``.

``parameters`` may be given to override the count derived from the shapes
(``12·d² + 13·d`` per layer, token and position embeddings, a final layer norm).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.swarm.errors import SwarmError, validation_problems

MAX_FILE_BYTES = 1 << 20


class ModelFile(BaseModel):
    """The model file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=128)]
    layers: Annotated[int, Field(ge=1, le=100_000)]
    d_model: Annotated[int, Field(ge=1, le=1_000_000)]
    seq_len: Annotated[int, Field(ge=1, le=10_000_000)]
    vocab: Annotated[int, Field(ge=1, le=100_000_000)] = 1
    parameters: Annotated[int, Field(ge=1, le=10**15)] | None = None
    batch: Annotated[int, Field(ge=1, le=10_000_000)]
    microbatch: Annotated[int, Field(ge=1, le=10_000_000)] = 1
    stages: Annotated[int, Field(ge=1, le=4096)]
    activation_bytes: Annotated[int, Field(ge=1, le=16)] = 2
    gradient_bytes: Annotated[int, Field(ge=1, le=16)] = 4
    # Bytes of training state per parameter: fp32 weights, gradients, Adam's two moments.
    state_bytes: Annotated[int, Field(ge=1, le=64)] = 16

    @model_validator(mode="after")
    def _divisible(self) -> ModelFile:
        if self.layers % self.stages:
            raise ValueError(f"{self.layers} layers do not split into {self.stages} equal stages")
        if self.batch % self.microbatch:
            raise ValueError(
                f"batch {self.batch} is not a multiple of microbatch {self.microbatch}"
            )
        return self

    @property
    def parameter_count(self) -> int:
        if self.parameters is not None:
            return self.parameters
        d = self.d_model
        per_layer = 12 * d * d + 13 * d
        return self.layers * per_layer + (self.vocab + self.seq_len) * d + 2 * d


@dataclass(frozen=True)
class Workload:
    """The sizes the cost model reads for one iteration on ``stages`` × ``replicas`` devices."""

    name: str
    stages: int
    replicas: int
    gradient_bytes_per_stage: float
    activation_bytes_per_boundary: float
    memory_bytes_per_device: float
    flops_per_device: float

    @property
    def devices(self) -> int:
        return self.stages * self.replicas


def workload_for(model: ModelFile, devices: int, stages: int | None = None) -> Workload:
    """The workload of ``model`` trained on ``devices`` devices in ``stages`` pipeline stages."""
    depth = stages if stages is not None else model.stages
    if depth < 1 or model.layers % depth:
        raise SwarmError(f"{model.layers} layers do not split into {depth} equal stages")
    if devices % depth:
        raise SwarmError(
            f"{devices} devices do not form {depth}-stage pipelines: "
            f"the device count must be a multiple of the stage count"
        )
    replicas = devices // depth
    if model.batch % replicas:
        raise SwarmError(f"batch {model.batch} does not split over {replicas} data-parallel groups")
    params_per_stage = model.parameter_count / depth
    samples = model.batch // replicas
    tokens = samples * model.seq_len
    return Workload(
        name=model.name,
        stages=depth,
        replicas=replicas,
        gradient_bytes_per_stage=params_per_stage * model.gradient_bytes,
        activation_bytes_per_boundary=float(tokens * model.d_model * model.activation_bytes),
        memory_bytes_per_device=params_per_stage * model.state_bytes,
        # Forward and backward: about 6 floating-point operations per parameter and token.
        flops_per_device=6.0 * params_per_stage * tokens,
    )


def load_model(path: Path) -> ModelFile:
    """Read a model file; a bad file is a ``SwarmError`` naming the problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SwarmError(f"cannot read model file {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise SwarmError(f"model file {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return ModelFile.model_validate(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SwarmError(f"model file {path} is not JSON: {exc}") from exc
    except ValidationError as exc:
        raise SwarmError(f"model file {path}: {validation_problems(exc)}") from exc
