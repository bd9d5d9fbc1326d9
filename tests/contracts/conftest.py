"""Fixtures of the contract tests.

One anvil per session (free loopback port, stopped at the end, also on failure), the
contracts deployed once, and every test run from a snapshot of that state that is reverted
afterwards. brownie is used as a library (project, accounts, contract objects).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.devnet.anvil import Anvil
from scripts.deploy import Deployment, ProtocolParameters, deploy
from scripts.network import attached, local_devnet
from tests.contracts.driver import Clock, Driver, Parties

HERE = Path(__file__).resolve().parent

# Every window differs from every other, so a test cannot pass with the wrong one.
TEST_PARAMETERS = ProtocolParameters(
    protocolFeeBps=150,
    verificationFeeBps=1_000,
    profileFeeBps=300,
    profileRejectionFeeBps=120,
    solverStakeBps=20_000,
    verifierStakeBps=7_000,
    profilerStakeBps=4_000,
    slashToSubmitterBps=3_000,
    profileWindow=1_000,
    profileReviewWindow=800,
    claimWindow=2_000,
    maxTrainingWindow=50_000,
    verifierClaimWindow=3_000,
    seedRevealWindow=1_500,
    verifyWindow=4_000,
    challengeWindow=5_000,
    revealWindow=2_500,
    minSampledSegments=3,
    maxVerificationRounds=3,
    forcedErrorPpm=250_000,
    forcedErrorTaxBps=900,
    maxThreshold=0x3F800000,
    minBounty=10**9,
)


def pytest_configure(config: pytest.Config) -> None:
    # brownie's own chain.snapshot()/revert() trip its check for direct rpc use.
    config.addinivalue_line(
        "filterwarnings", r"ignore:rpc\.\w+ should not be called directly:FutureWarning"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in this directory needs the devnet."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.chain)


# One devnet per test package: brownie holds one connection per process, so this
# package detaches when its tests end and the next package can attach its own.
@pytest.fixture(scope="package")
def devnet() -> Iterator[Anvil]:
    # Rich enough to submit the largest bounty a task can hold (2^80 - 1 wei, about 1.2 M ETH).
    with local_devnet(accounts=20, balance_eth=10**8) as node:
        yield node


@pytest.fixture(scope="package")
def project(devnet: Anvil) -> Iterator[Any]:
    with attached(devnet) as loaded:
        yield loaded


@pytest.fixture(scope="package")
def deployment(project: Any) -> Deployment:
    from brownie import accounts

    return deploy(project, accounts[0], TEST_PARAMETERS)


@pytest.fixture(autouse=True)
def isolation(deployment: Deployment) -> Iterator[None]:
    """Each test starts from the freshly deployed contracts; its transactions are undone after."""
    from brownie import chain

    chain.snapshot()
    yield
    chain.revert()


@pytest.fixture
def pool(deployment: Deployment) -> Any:
    return deployment.pool


@pytest.fixture
def jackpot(deployment: Deployment) -> Any:
    return deployment.jackpot


@pytest.fixture
def game(deployment: Deployment) -> Any:
    return deployment.game


@pytest.fixture
def params(deployment: Deployment) -> ProtocolParameters:
    return deployment.parameters


@pytest.fixture
def parties() -> Parties:
    from brownie import accounts

    return Parties(
        deployer=accounts[0],
        submitter=accounts[1],
        solver=accounts[2],
        verifier=accounts[3],
        profiler=accounts[4],
        stranger=accounts[5],
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def driver(pool: Any, params: ProtocolParameters, parties: Parties, clock: Clock) -> Driver:
    return Driver(pool, params, parties, clock)
