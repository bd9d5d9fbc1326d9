"""``veritrain swarm``: plan a swarm (which device runs which stage of which pipeline), and
make the key its workers authenticate with."""

from __future__ import annotations

import os
from pathlib import Path

import click

from agents.cli.output import echo_json
from agents.swarm.network import load_network
from agents.swarm.plan import PlanFile, plan_document, write_plan
from agents.swarm.schedule import METHODS, schedule
from agents.swarm.workload import load_model, workload_for


@click.group()
def swarm() -> None:
    """Swarm solvers: schedule one task over many devices."""


@swarm.command()
@click.option(
    "--devices",
    "devices_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Devices file: devices and the latency and bandwidth between them.",
)
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Model file: shapes, batch, pipeline depth.",
)
@click.option("--stages", type=click.IntRange(min=1), default=None, help="Pipeline depth override.")
@click.option(
    "--scheduler",
    type=click.Choice(METHODS),
    default="descent",
    show_default=True,
    help="descent (ours), genetic (the paper's search) or random.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the search's random choices: a seed gives the same plan every time.",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the plan file.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan file instead of a table.")
def plan(
    devices_path: Path,
    model_path: Path,
    stages: int | None,
    scheduler: str,
    seed: int,
    out: Path | None,
    as_json: bool,
) -> None:
    """Assign devices to pipeline stages and data-parallel groups; print the plan and its cost."""
    network = load_network(devices_path)
    model = load_model(model_path)
    workload = workload_for(model, network.size, stages)
    result = schedule(network, workload, scheduler, seed)
    document = plan_document(result, network, workload)
    if out is not None:
        write_plan(document, out)
    if as_json:
        echo_json(document.model_dump(mode="json"))
        return
    click.echo(_table(document, result.search_s))
    if out is not None:
        click.echo(f"plan written to {out}")


def _table(plan: PlanFile, search_s: float) -> str:
    assert plan.cost is not None and plan.compute_s is not None
    lines = [
        f"{plan.network}: {plan.stages * plan.replicas} devices; {plan.model} in "
        f"{plan.stages} stages x {plan.replicas} data-parallel replicas",
        f"scheduler {plan.scheduler} (seed {plan.seed}), searched {search_s:.2f} s",
        f"predicted communication per iteration: {plan.cost.total_s:.3f} s (data parallel "
        f"{plan.cost.data_parallel_s:.3f} s + pipeline {plan.cost.pipeline_s:.3f} s)",
        f"predicted compute per iteration at peak throughput: {plan.compute_s:.3f} s",
        "",
    ]
    width = max(len(name) for name in [*plan.devices, f"stage {plan.stages - 1}"])
    label = len(f"pipeline {plan.replicas - 1}")
    header = " " * label + "  " + "  ".join(f"{f'stage {j}':<{width}}" for j in range(plan.stages))
    lines.append(header.rstrip())
    for k, row in enumerate(plan.pipelines):
        cells = "  ".join(f"{name:<{width}}" for name in row)
        lines.append(f"{f'pipeline {k}':<{label}}  {cells}".rstrip())
    return "\n".join(lines)


@swarm.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="The key file to create (swarm.key_file of the solver).",
)
def key(out: Path) -> None:
    """Create a swarm key: the solver's swarm.key_file, and VERITRAIN_SWARM_KEY of its workers."""
    from agents.swarm.solver import new_key

    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.UsageError(f"{out} exists; a key is not overwritten") from None
    except OSError as exc:
        raise click.UsageError(f"cannot create {out}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(new_key() + "\n")
    click.echo(f"key written to {out} (readable by you only); give each worker its contents")
