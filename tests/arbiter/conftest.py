"""Fixtures of the arbiter tests: one devnet per session with the contracts deployed the way
``veritrain devnet`` deploys them (the project's deployment script, in a child process), and
clients of the deployed arbitration contracts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.chain.client import ChainClient
from agents.chain.deployment import Deployment, load_deployment
from agents.chain.evaluator import Binary32Evaluator
from agents.chain.onestep import OneStepClient
from agents.devnet.anvil import Anvil
from agents.devnet.contracts import DEVNET_PARAMETERS, deploy_contracts
from scripts.network import local_devnet

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in this directory needs the devnet."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.chain)


@pytest.fixture(scope="session")
def arbiter_devnet() -> Iterator[Anvil]:
    with local_devnet(accounts=4) as node:
        yield node


@pytest.fixture(scope="session")
def arbiter_deployment(
    arbiter_devnet: Anvil, tmp_path_factory: pytest.TempPathFactory
) -> Deployment:
    where = tmp_path_factory.mktemp("arbiter-deployment")
    manifest = where / "deployment.json"
    deploy_contracts(arbiter_devnet.url, manifest, DEVNET_PARAMETERS, where / "deploy.log")
    return load_deployment(manifest)


@pytest.fixture(scope="session")
def chain_client(arbiter_devnet: Anvil) -> ChainClient:
    return ChainClient(arbiter_devnet.url, timeout=120.0)


@pytest.fixture(scope="session")
def evaluator(chain_client: ChainClient, arbiter_deployment: Deployment) -> Binary32Evaluator:
    return Binary32Evaluator(chain_client, arbiter_deployment.contract("Binary32Evaluator"))


@pytest.fixture(scope="session")
def arbiter_devnet_url(arbiter_devnet: Anvil) -> str:
    return arbiter_devnet.url


@pytest.fixture(scope="session")
def one_step_client(chain_client: ChainClient, arbiter_deployment: Deployment) -> OneStepClient:
    contracts = arbiter_deployment.contracts
    return OneStepClient(chain_client, contracts["OneStep"], errors_from=contracts.values())
