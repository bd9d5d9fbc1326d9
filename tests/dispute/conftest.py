"""Fixtures of the dispute tests.

Tests that take ``deployed`` (or anything built on it) run on one anvil per session with a
Jackpot, an ``AnswerTable`` standing in for the one step and a ``PinpointGame`` that asks it
(``game``: toy traces, whose records no arithmetic computes), and the arbiter's ``OneStep``
with a second ``PinpointGame`` that asks it (``arbitrated``: real segments, decided by the
binary32 one step itself). Each test starts from a snapshot of that state and its
transactions are undone after. Tests that do not ask for the devnet never start it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from agents.devnet.anvil import Anvil
from scripts.arena import Arena, game_params
from scripts.deploy import deploy_arbiter
from scripts.network import attached, local_devnet
from tests.dispute.answers import deploy_answer_table


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "filterwarnings", r"ignore:rpc\.\w+ should not be called directly:FutureWarning"
    )


@dataclass(frozen=True)
class Deployed:
    project: Any
    game: Any
    endgame: Any
    table: Any
    jackpot: Any
    accounts: Any
    arbitrated: Any  # a game whose one step is the arbiter's OneStep
    one_step: Any


# One devnet per test package: brownie holds one connection per process, so this
# package detaches when its tests end and the next package can attach its own.
@pytest.fixture(scope="package")
def devnet() -> Iterator[Anvil]:
    with local_devnet(accounts=12, balance_eth=10**7) as node:
        yield node


@pytest.fixture(scope="package")
def deployed_once(devnet: Anvil) -> Iterator[Deployed]:
    with attached(devnet) as project:
        from brownie import Contract, accounts

        jackpot = project.Jackpot.deploy(accounts[0], {"from": accounts[0]})
        table = deploy_answer_table(accounts[0])
        game = project.PinpointGame.deploy(
            game_params(table.address, jackpot.address), {"from": accounts[0]}
        )
        make: Any = Contract.from_abi  # brownie's stubs want its own name type
        endgame = make("PinpointEndgame", game.endgame(), project.PinpointEndgame.abi)
        one_step = deploy_arbiter(project, accounts[0], silent=True)["OneStep"]
        arbitrated = project.PinpointGame.deploy(
            game_params(one_step.address, jackpot.address), {"from": accounts[0]}
        )
        yield Deployed(project, game, endgame, table, jackpot, accounts, arbitrated, one_step)


@pytest.fixture
def deployed(deployed_once: Deployed) -> Iterator[Deployed]:
    from brownie import chain

    chain.snapshot()
    yield deployed_once
    chain.revert()


@pytest.fixture
def arena(deployed: Deployed) -> Arena:
    """Games with the ``AnswerTable`` (toy traces)."""
    return Arena(deployed.game, deployed.table, deployed.accounts[9], random.Random(1))


@pytest.fixture
def arbitrated_arena(deployed: Deployed) -> Arena:
    """Games decided by the arbiter's one step (real segments)."""
    return Arena(deployed.arbitrated, None, deployed.accounts[9], random.Random(1))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the devnet are chain tests."""
    for item in items:
        if "devnet" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.chain)
