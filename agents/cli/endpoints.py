"""The chain and the store a reading command works on, from its :func:`chain_options`.

Commands that only read (``veritrain dispute show``, ``dispute export``, ``audit task``) need
neither a key nor a data directory: the deployment, checked against the endpoint that serves
it, and the configured store. Agents and commands that send transactions connect through
:func:`agents.roles.connection.connect` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.chain.client import ChainClient
from agents.chain.deployment import Deployment, load_deployment
from agents.chain.errors import ChainError
from agents.chain.rpc import RetryPolicy
from agents.cli.settings import resolve_config
from agents.errors import VeritrainError
from agents.node.config import AgentConfig
from agents.store import ArtifactStore, open_store


@dataclass(frozen=True)
class Endpoints:
    """A command's configuration, its deployment and a client of the chain that serves it."""

    config: AgentConfig
    deployment: Deployment
    client: ChainClient

    def store(self) -> ArtifactStore:
        """The configured store (``store.location``), opened anew on each call."""
        return open_store(self.config.store.location)


def reach(
    role: str,
    config_path: Path | None,
    overrides: tuple[str, ...],
    flags: dict[str, Any],
    *,
    retry: RetryPolicy | None = None,
    unusable: type[VeritrainError] | None = None,
) -> Endpoints:
    """Resolve ``role``'s configuration from a command's options, load its deployment manifest
    and check that the configured endpoint serves that deployment's chain and contracts.

    ``retry`` is the client's policy for a transient failure (the client's default when
    ``None``). A manifest that cannot be loaded raises its :class:`DeploymentError`; an
    endpoint that does not serve the deployment (unreachable, another chain, no code at a
    contract) raises the chain's own error, or, with ``unusable``, that error class with the
    same message: the audit commands say so with exit status 2, where the chain's trouble
    alone would exit 3.
    """
    config = resolve_config(role, config_path, overrides, **flags)
    deployment = load_deployment(config.require_deployment())
    client = ChainClient(config.chain.rpc_url, timeout=config.chain.rpc_timeout, retry=retry)
    try:
        deployment.check(client)
    except ChainError as exc:
        if unusable is None:
            raise
        raise unusable(str(exc)) from None
    return Endpoints(config, deployment, client)
