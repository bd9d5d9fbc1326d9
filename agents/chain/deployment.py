"""The deployment manifest: which contracts, where, on which chain, with which ABIs.

Written by ``scripts/deploy.py`` (format ``veritrain-deployment/1``, documented
in docs/contracts.md); agents read only this file to talk to the contracts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.chain.abi import ContractInterface
from agents.chain.client import ChainClient
from agents.chain.errors import DeploymentError

MANIFEST_FORMAT = "veritrain-deployment/1"


@dataclass(frozen=True)
class Deployment:
    """A loaded manifest."""

    path: Path
    chain_id: int
    block: int
    contracts: dict[str, ContractInterface]
    parameters: dict[str, Any]
    rpc_url: str | None = None

    def contract(self, name: str) -> ContractInterface:
        try:
            return self.contracts[name]
        except KeyError:
            raise DeploymentError(
                f"deployment manifest {self.path} has no contract {name!r} "
                f"(it has {', '.join(sorted(self.contracts))})"
            ) from None

    def check(self, client: ChainClient) -> None:
        """Check that ``client`` serves this deployment's chain and that its contracts exist there.

        Raises :class:`~agents.chain.errors.WrongChainError` or :class:`DeploymentError`.
        """
        client.require_chain(self.chain_id)
        for contract in self.contracts.values():
            if not client.code(contract.address):
                raise DeploymentError(
                    f"no contract code at {contract.name} {contract.address} on {client.url}: "
                    f"the chain was reset or the manifest {self.path} is stale"
                )


def load_deployment(path: Path) -> Deployment:
    """Read and check the manifest at ``path``; :class:`DeploymentError` names any problem."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeploymentError(f"deployment manifest {path} does not exist") from None
    except IsADirectoryError:
        raise DeploymentError(f"deployment manifest {path} is a directory") from None
    except OSError as exc:
        raise DeploymentError(
            f"deployment manifest {path} cannot be read: {exc.strerror}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DeploymentError(f"deployment manifest {path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise DeploymentError(f"{path} is not a {MANIFEST_FORMAT} deployment manifest")
    try:
        contracts = {
            name: ContractInterface(name, str(entry["address"]), entry["abi"])
            for name, entry in dict(document["contracts"]).items()
        }
        return Deployment(
            path=path,
            chain_id=int(document["chain_id"]),
            block=int(document["deployment_block"]),
            contracts=contracts,
            parameters=dict(document.get("parameters") or {}),
            rpc_url=document.get("rpc_url"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DeploymentError(f"deployment manifest {path} is malformed: {exc!r}") from None
