"""``veritrain solver run``, ``verifier run``, ``whistleblower run``, ``config show``: operating
agents."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from agents.cli.settings import chain_options, resolve_config
from agents.node.config import AgentConfig, render_config
from agents.node.logs import configure_logging, event
from agents.node.metrics import AgentMetrics
from agents.node.progress import ProgressDisplay
from agents.roles import solver as solver_role
from agents.roles import verifier as verifier_role
from agents.roles import whistleblower as whistleblower_role
from agents.roles.agent import Agent
from agents.roles.connection import connect
from agents.roles.hardware import Hardware

log = logging.getLogger("veritrain.agent")


def run_agent(role: str, config: AgentConfig) -> None:
    """Connect, serve metrics if asked, and run ``role``'s loop until SIGTERM or Ctrl-C."""
    configure_logging(config.agent.log_format, config.agent.log_level)
    policy_hardware: Any = {
        "solver": config.solver,
        "verifier": config.verifier,
        "whistleblower": config.whistleblower,
    }[role]
    swarm = config.swarm if role == "solver" and config.swarm.enabled else None
    hardware = Hardware(policy_hardware.device, policy_hardware.threads, swarm)
    hardware.check()  # before connecting: a wrong device is a configuration error
    conn = connect(config, role)
    metrics = AgentMetrics(role)
    if config.agent.metrics_port is not None:
        port = metrics.serve(config.agent.metrics_host, config.agent.metrics_port)
        event(log, "metrics served", url=f"http://{config.agent.metrics_host}:{port}/metrics")
    if role == "solver":
        policy: Any = config.solver

        def decide(situation: Any) -> Any:
            return solver_role.decide(situation, policy)

    elif role == "verifier":
        vpolicy = config.verifier

        def decide(situation: Any) -> Any:
            return verifier_role.decide(situation, vpolicy)

    else:
        wpolicy = config.whistleblower

        def decide(situation: Any) -> Any:
            return whistleblower_role.decide(situation, wpolicy)

    agent = Agent(
        conn,
        role,
        decide,
        hardware=hardware,
        metrics=metrics,
        progress=ProgressDisplay(config.agent.progress),
    )
    try:
        agent.run()
    finally:
        agent.progress.close()
        if conn.data is not None:
            conn.data.close()


@click.group()
def solver() -> None:
    """The solver agent: claims open tasks, trains them with a proof, commits, collects."""


@solver.command("run")
@chain_options
def solver_run(config_path: Path | None, overrides: tuple[str, ...], **flags: Any) -> None:
    """Run the solver agent until stopped (SIGTERM or Ctrl-C); it resumes where it stopped."""
    run_agent("solver", resolve_config("solver", config_path, overrides, **flags))


@click.group()
def verifier() -> None:
    """The verifier agent: profiles tolerant tasks, verifies committed proofs, collects."""


@verifier.command("run")
@chain_options
def verifier_run(config_path: Path | None, overrides: tuple[str, ...], **flags: Any) -> None:
    """Run the verifier agent until stopped (SIGTERM or Ctrl-C); it resumes where it stopped."""
    run_agent("verifier", resolve_config("verifier", config_path, overrides, **flags))


@click.group()
def whistleblower() -> None:
    """The whistleblower agent: re-checks verifiers' reports, challenges wrong ones, plays
    the games to the end."""


@whistleblower.command("run")
@chain_options
def whistleblower_run(config_path: Path | None, overrides: tuple[str, ...], **flags: Any) -> None:
    """Run the whistleblower agent until stopped (SIGTERM or Ctrl-C); it resumes where it
    stopped."""
    run_agent("whistleblower", resolve_config("whistleblower", config_path, overrides, **flags))


@click.group()
def config() -> None:
    """Agent configuration."""


@config.command("show")
@click.option(
    "--role",
    type=click.Choice(["submitter", "solver", "verifier", "whistleblower"]),
    default="solver",
)
@chain_options
def config_show(
    role: str, config_path: Path | None, overrides: tuple[str, ...], **flags: Any
) -> None:
    """Print the effective configuration (file, environment and flags applied) as TOML."""
    click.echo(render_config(resolve_config(role, config_path, overrides, **flags)), nl=False)
