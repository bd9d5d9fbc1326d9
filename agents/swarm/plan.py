"""The plan file: which device runs which stage of which pipeline.

``veritrain swarm plan --out FILE`` writes it and a swarm solver reads it::

    {
      "format": "veritrain/swarm-plan/1",
      "network": "world-geo-distributed", "model": "gpt3-1.3b",
      "scheduler": "descent", "seed": 0,
      "stages": 8, "replicas": 8,
      "pipelines": [["oregon-0", "oregon-1", ...], ...],
      "cost": {"data_parallel_s": 23.0, "pipeline_s": 30.1, "total_s": 53.1},
      "compute_s": 1.03
    }

``pipelines[k][j]`` names the device that runs stage ``j`` of pipeline ``k``; the
devices of column ``j`` form stage ``j``'s data-parallel group. ``cost`` is the
cost model's prediction (seconds of communication per iteration), ``compute_s``
the forward and backward arithmetic of one iteration at the slowest device's peak
throughput.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.files import write_atomically
from agents.swarm.errors import SwarmError, validation_problems
from agents.swarm.network import Name, Network
from agents.swarm.schedule import Schedule
from agents.swarm.workload import Workload

FORMAT = "veritrain/swarm-plan/1"
MAX_FILE_BYTES = 16 << 20


class PlanCost(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_parallel_s: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    pipeline_s: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    total_s: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class PlanFile(BaseModel):
    """A plan as written to disk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["veritrain/swarm-plan/1"]
    network: str = ""
    model: str = ""
    scheduler: str = ""
    seed: int = 0
    stages: Annotated[int, Field(ge=1, le=4096)]
    replicas: Annotated[int, Field(ge=1, le=4096)]
    pipelines: list[list[Name]]
    cost: PlanCost | None = None
    compute_s: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _shape(self) -> PlanFile:
        if len(self.pipelines) != self.replicas:
            raise ValueError(f"{len(self.pipelines)} pipelines, replicas says {self.replicas}")
        for k, row in enumerate(self.pipelines):
            if len(row) != self.stages:
                raise ValueError(f"pipeline {k} has {len(row)} stages, stages says {self.stages}")
        names = [name for row in self.pipelines for name in row]
        if len(set(names)) != len(names):
            dup = sorted({x for x in names if names.count(x) > 1})
            raise ValueError(f"a device runs more than one stage: {', '.join(dup[:5])}")
        return self

    @property
    def devices(self) -> list[str]:
        """Every device of the plan, pipeline by pipeline."""
        return [name for row in self.pipelines for name in row]

    def position(self, device: str) -> tuple[int, int]:
        """``(pipeline, stage)`` of a device."""
        for k, row in enumerate(self.pipelines):
            if device in row:
                return k, row.index(device)
        raise SwarmError(f"device {device!r} is not in the plan")


def plan_document(schedule: Schedule, network: Network, workload: Workload) -> PlanFile:
    """The plan file of a schedule."""
    slowest = min(d.tflops for d in network.devices)
    return PlanFile(
        format=FORMAT,
        network=network.name,
        model=workload.name,
        scheduler=schedule.method,
        seed=schedule.seed,
        stages=workload.stages,
        replicas=workload.replicas,
        pipelines=[[network.devices[i].name for i in row] for row in schedule.pipelines.tolist()],
        cost=PlanCost(
            data_parallel_s=schedule.cost.data_parallel,
            pipeline_s=schedule.cost.pipeline,
            total_s=schedule.cost.total,
        ),
        compute_s=workload.flops_per_device / (slowest * 1e12),
    )


def write_plan(plan: PlanFile, path: Path) -> None:
    """Write ``plan`` to ``path`` whole or not at all; ``SwarmError`` when it cannot be written
    (a plan already there is then left as it was)."""
    text = json.dumps(plan.model_dump(mode="json"), indent=2) + "\n"
    try:
        write_atomically(path, text.encode())
    except OSError as exc:
        raise SwarmError(f"cannot write plan file {path}: {exc.strerror or exc}") from None


def parse_plan(data: Any, where: str = "plan") -> PlanFile:
    try:
        return PlanFile.model_validate(data)
    except ValidationError as exc:
        raise SwarmError(f"{where}: {validation_problems(exc)}") from exc


def load_plan(path: Path) -> PlanFile:
    """Read a plan file; a bad file is a ``SwarmError`` naming the problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SwarmError(f"cannot read plan file {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise SwarmError(f"plan file {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SwarmError(f"plan file {path} is not JSON: {exc}") from exc
    return parse_plan(data, f"plan file {path}")
