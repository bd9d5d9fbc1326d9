"""Deployment: parameter checks, readable parameters and amounts, and the manifest agents read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from eth_typing import HexStr

from agents.dispute.game import GAME
from agents.errors import ConfigError
from agents.rules import MAX_SEED_REVEAL_WINDOW
from scripts.deploy import (
    ARBITER_CONTRACTS,
    DEFAULT_PARAMETERS,
    MANIFEST_FORMAT,
    Deployment,
    ProtocolParameters,
    deploy_pool,
    load_manifest,
    main,
    manifest,
    pool_contract,
    write_manifest,
)
from scripts.protocol import Amounts
from tests.contracts.driver import Parties, plain, reverts

INVALID = [
    ("protocolFeeBps", {"protocolFeeBps": 10_001}),
    ("verificationFeeBps + profileFeeBps", {"verificationFeeBps": 9_000, "profileFeeBps": 1_001}),
    ("slashToSubmitterBps", {"slashToSubmitterBps": 10_001}),
    ("profileRejectionFeeBps", {"profileRejectionFeeBps": 0}),
    ("profileRejectionFeeBps", {"profileRejectionFeeBps": 10_001}),
    ("solverStakeBps", {"solverStakeBps": 0}),
    ("verifierStakeBps", {"verifierStakeBps": 0}),
    ("profilerStakeBps", {"profilerStakeBps": 0}),
    ("minBounty", {"minBounty": 0}),
    ("minBounty", {"minBounty": 2**80}),
    ("profileWindow", {"profileWindow": 0}),
    ("profileReviewWindow", {"profileReviewWindow": 0}),
    ("claimWindow", {"claimWindow": 0}),
    ("maxTrainingWindow", {"maxTrainingWindow": 0}),
    ("verifierClaimWindow", {"verifierClaimWindow": 0}),
    ("seedRevealWindow", {"seedRevealWindow": 0}),
    # Longer, a solver on a chain of 12-second blocks could reveal out of the claim block's reach.
    ("seedRevealWindow", {"seedRevealWindow": MAX_SEED_REVEAL_WINDOW + 1}),
    ("verifyWindow", {"verifyWindow": 0}),
    ("challengeWindow", {"challengeWindow": 0}),
    ("revealWindow", {"revealWindow": 0}),
    ("minSampledSegments", {"minSampledSegments": 0}),
    ("maxVerificationRounds", {"maxVerificationRounds": 0}),
    ("forcedErrorPpm", {"forcedErrorPpm": 1_000_001}),
    # The tax comes out of the fee, so that a caught forced verifier's stake comes back whole.
    ("forcedErrorTaxBps", {"forcedErrorTaxBps": DEFAULT_PARAMETERS.verificationFeeBps + 1}),
    ("maxThreshold", {"maxThreshold": 0x7F800000}),
    ("maxThreshold", {"maxThreshold": 0x7FC00000}),
]


@pytest.mark.parametrize(
    ("name", "change"), INVALID, ids=[f"{n}={list(c.values())}" for n, c in INVALID]
)
def test_parameters_out_of_range_are_refused(
    project: Any, jackpot: Any, game: Any, parties: Parties, name: str, change: dict[str, int]
) -> None:
    params = dataclasses.replace(DEFAULT_PARAMETERS, **change)
    with reverts("InvalidParameter", name):
        project.TaskPool.deploy(
            params.as_struct(),
            jackpot.address,
            game.address,
            game.address,
            {"from": parties.deployer},
        )


def test_a_jackpot_and_a_game_are_required(
    project: Any, jackpot: Any, game: Any, parties: Parties
) -> None:
    zero = "0x" + "00" * 20
    with reverts("ZeroAddress"):
        project.TaskPool.deploy(
            DEFAULT_PARAMETERS.as_struct(),
            zero,
            game.address,
            game.address,
            {"from": parties.deployer},
        )
    with reverts("ZeroAddress"):
        project.TaskPoolChallenges.deploy(
            DEFAULT_PARAMETERS.as_struct(), jackpot.address, zero, {"from": parties.deployer}
        )


def test_the_halves_must_share_the_parameters(
    project: Any, jackpot: Any, game: Any, parties: Parties
) -> None:
    other = dataclasses.replace(
        DEFAULT_PARAMETERS, challengeWindow=DEFAULT_PARAMETERS.challengeWindow + 1
    )
    challenges = project.TaskPoolChallenges.deploy(
        other.as_struct(), jackpot.address, game.address, {"from": parties.deployer}
    )
    with reverts("InvalidParameter", "challenges"):
        project.TaskPool.deploy(
            DEFAULT_PARAMETERS.as_struct(),
            jackpot.address,
            game.address,
            challenges.address,
            {"from": parties.deployer},
        )


def test_boundary_parameters_are_accepted(
    project: Any, jackpot: Any, game: Any, parties: Parties
) -> None:
    params = dataclasses.replace(
        DEFAULT_PARAMETERS,
        protocolFeeBps=10_000,
        verificationFeeBps=9_000,
        profileFeeBps=1_000,
        profileRejectionFeeBps=10_000,
        slashToSubmitterBps=10_000,
        maxThreshold=0x7F7FFFFF,
        forcedErrorPpm=1_000_000,
        forcedErrorTaxBps=9_000,
        minBounty=2**80 - 1,
        seedRevealWindow=MAX_SEED_REVEAL_WINDOW,
    )
    deployed = deploy_pool(project, parties.deployer, params, jackpot.address, game.address)
    pool = pool_contract(project, deployed.address)
    assert ProtocolParameters.from_struct(pool.parameters()) == params


def test_parameters_read_back_as_deployed(deployment: Deployment, pool: Any) -> None:
    assert ProtocolParameters.from_struct(pool.parameters()) == deployment.parameters
    assert pool.jackpot() == deployment.jackpot.address
    assert pool.nextTaskId() == 1


@pytest.mark.parametrize("bounty", [10**9, 10**9 + 7, 3 * 10**18 + 1, 2**80 - 1])
def test_amounts_follow_the_bounty(pool: Any, params: ProtocolParameters, bounty: int) -> None:
    expected = Amounts.of(bounty, params)
    assert plain(pool.amounts(bounty)) == list(dataclasses.astuple(expected))


def test_the_manifest_is_enough_to_talk_to_the_contracts(
    project: Any, deployment: Deployment, devnet: Any, tmp_path: Path
) -> None:
    from web3 import HTTPProvider, Web3

    path = write_manifest(manifest(project, deployment, devnet.url), tmp_path / "deployment.json")
    document = json.loads(path.read_text())
    assert document["format"] == MANIFEST_FORMAT
    assert document["chain_id"] == 31337
    assert document["rpc_url"] == devnet.url
    assert document["deployment_block"] == deployment.block
    assert document["parameters"] == deployment.parameters.as_dict()
    assert set(document["contracts"]) == {"TaskPool", "Jackpot", *ARBITER_CONTRACTS, GAME}
    assert document["compiler"]["solc"].startswith("0.8.28+commit.")
    assert (document["compiler"]["evm_version"], document["compiler"]["via_ir"]) == ("cancun", True)
    # A plain web3 client, no brownie: the address and ABI from the manifest suffice.
    web3 = Web3(HTTPProvider(document["rpc_url"]))
    entry = document["contracts"]["TaskPool"]
    pool = web3.eth.contract(address=entry["address"], abi=entry["abi"])
    assert (
        ProtocolParameters.from_struct(pool.functions.parameters().call()) == deployment.parameters
    )
    assert entry["block"] == web3.eth.get_transaction_receipt(entry["transaction"])["blockNumber"]
    jackpot = document["contracts"]["Jackpot"]
    assert pool.functions.jackpot().call() == jackpot["address"]
    assert load_manifest(path) == document


def test_the_deploy_script_writes_its_manifest(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out" / "manifest.json"
    monkeypatch.setenv("VERITRAIN_MANIFEST", str(target))
    main()
    document = load_manifest(target)
    assert document["parameters"] == DEFAULT_PARAMETERS.as_dict()
    assert document["contracts"]["TaskPool"]["address"] != deployment.pool.address


def test_a_missing_or_foreign_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no deployment manifest"):
        load_manifest(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="is not JSON"):
        load_manifest(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(ConfigError, match="is not a veritrain-deployment/1 manifest"):
        load_manifest(tmp_path / "other.json")


def test_the_settlement_half_runs_on_the_pools_storage_only(
    project: Any, deployment: Deployment, driver: Any, parties: Parties
) -> None:
    """The pool delegates what it does not implement to its settlement half; called directly, that
    half sees its own empty storage and holds no money, so there is nothing to take from it."""
    from brownie import web3

    pool = deployment.pool
    half = project.TaskPoolSettlement.at(pool.settlement())
    task_id = driver.submit()
    assert pool.nextTaskId() == task_id + 1  # through the pool: its storage
    assert half.nextTaskId() == 1  # directly: nothing there
    with reverts("UnknownTask", task_id):
        half.cancel(task_id, {"from": parties.submitter})
    pool.cancel(task_id, {"from": parties.submitter})
    assert web3.eth.get_balance(half.address) == 0
    assert ProtocolParameters.from_struct(half.parameters()) == deployment.parameters
    # A selector neither half knows reverts without effect.
    with pytest.raises(ValueError, match="revert"):
        web3.eth.call({"to": pool.address, "data": HexStr("0xdeadbeef")})
