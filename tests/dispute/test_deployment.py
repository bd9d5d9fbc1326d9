"""The pinpoint game as scripts/deploy.py deploys it: in the manifest, on the arbiter's one step
and the jackpot, with the default parameters, and readable by ``veritrain dispute show``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from agents.devnet.processes import child_env, cli_command
from agents.dispute.game import GAME
from scripts.arena import open_game
from scripts.deploy import (
    ARBITER_CONTRACTS,
    DEFAULT_GAME_PARAMETERS,
    deploy,
    load_manifest,
    manifest,
    write_manifest,
)
from tests.dispute.toy import ToyClaims, ToyTrace


def test_the_deployment_has_a_game_on_the_arbiters_one_step(
    deployed: Any, devnet: Any, tmp_path: Path
) -> None:
    from web3 import HTTPProvider, Web3

    project, accounts = deployed.project, deployed.accounts
    deployment = deploy(project, accounts[0], silent=True)
    path = write_manifest(manifest(project, deployment, devnet.url), tmp_path / "deployment.json")
    document = load_manifest(path)
    assert set(document["contracts"]) == {"TaskPool", "Jackpot", *ARBITER_CONTRACTS, GAME}
    assert document["game_parameters"] == DEFAULT_GAME_PARAMETERS.as_dict()
    # A plain web3 client reads the game from the manifest alone.
    web3 = Web3(HTTPProvider(document["rpc_url"]))
    entry = document["contracts"][GAME]
    game = web3.eth.contract(address=entry["address"], abi=entry["abi"])
    contracts = document["contracts"]
    assert game.functions.oneStepContract().call() == contracts["OneStep"]["address"]
    assert game.functions.jackpot().call() == contracts["Jackpot"]["address"]
    assert game.functions.requiredBond().call() == DEFAULT_GAME_PARAMETERS.bond
    assert game.functions.clock().call() == DEFAULT_GAME_PARAMETERS.clock
    assert game.functions.extension().call() == DEFAULT_GAME_PARAMETERS.extension
    assert game.functions.dissectionBits().call() == DEFAULT_GAME_PARAMETERS.dissectionBits
    # The one step the game asks is the deployed arbiter's: it knows the ops' term bounds.
    assert int(deployment.arbiter["OneStep"].maxTerms()) > 0
    assert entry["block"] <= contracts["TaskPool"]["block"]  # the pool can be given the game

    # A game opened on it is what `veritrain dispute show` prints from that manifest.
    claims = ToyClaims()
    honest = ToyTrace(1, claims.states[1], claims.states[2])
    other = bytes(31) + b"\x01"  # the challenger's trace: any other root opens a game
    game_id, _ = open_game(
        deployment.game,
        honest.program,
        claims.roots(),
        1,
        honest.trace_root,
        other,
        accounts[1],
        accounts[2],
    )
    args = ("show", str(game_id), "--deployment", str(path), "--rpc-url", devnet.url, "--json")
    shown = subprocess.run(
        cli_command("dispute", *args),
        env=child_env(),
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["phase"] == "STEPS"
    assert report["bond"] == DEFAULT_GAME_PARAMETERS.bond
    assert report["parties"]["defender"]["account"] == accounts[1].address
    assert report["parties"]["challenger"]["account"] == accounts[2].address
    assert [m["event"] for m in report["moves"]] == ["GameCreated", "LevelEntered"]
