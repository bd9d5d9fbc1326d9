"""The journaled player: games played through the transaction executor, and a player killed in
the middle of a game that resumes without sending any move twice."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.chain.abi import ContractInterface
from agents.chain.client import ChainClient
from agents.chain.executor import RejectionPolicy, TransactionExecutor
from agents.chain.journal import TransactionJournal
from agents.devnet.anvil import DEV_KEYS, REPO_ROOT
from agents.dispute.driver import GameLog, GamePlayer
from agents.dispute.game import GAME, Phase, Reason, Ruling
from agents.node.database import open_database
from tests.dispute.toy import Fault, ToyClaims, ToyTrace, open_toy_game

SEGMENT = 1
LIE = Fault("term", 1, op=7, element=0, term=123)


@pytest.fixture(scope="module")
def claims() -> ToyClaims:
    return ToyClaims()


def _player(url: str, game: ContractInterface, db: Path, key: str, trace: ToyTrace) -> GamePlayer:
    executor = TransactionExecutor(
        ChainClient(url),
        Account.from_key(key),
        TransactionJournal(open_database(db)),
        {GAME: game},
        rejections=RejectionPolicy(attempts=50, delay=0.05),
    )
    return GamePlayer(executor, game, lambda state: trace)


def _answers(
    deployed: Any,
    honest: ToyTrace,
    game: ContractInterface,
    url: str,
    game_id: int,
    stop: threading.Event,
) -> None:
    """Stand in for the one step: answer as soon as the game reaches it."""
    from agents.dispute.decisions import one_step_value

    client = ChainClient(url)
    while not stop.is_set():
        state = GameLog.read(client, game, game_id).state
        if state.phase == Phase.ONE_STEP:
            record = honest.record(state.step, state.op).encode()[:-32]
            question = deployed.table.questionOf(
                record, state.element, state.lo, state.hi, state.acc_lo
            )
            if int(deployed.table.answers(question)) == 0:
                value = one_step_value(honest, state)
                deployed.table.answer(
                    question, value or 0, value is not None, {"from": deployed.accounts[9]}
                )
        if state.phase == Phase.RESOLVED:
            return
        stop.wait(0.05)


def test_players_play_a_whole_game_through_the_executor(
    deployed: Any, claims: ToyClaims, tmp_path: Path, devnet: Any
) -> None:
    honest = ToyTrace(SEGMENT, claims.states[SEGMENT], claims.states[SEGMENT + 1])
    lying = ToyTrace(SEGMENT, claims.states[SEGMENT], claims.states[SEGMENT + 1], LIE)
    game_id = open_toy_game(deployed, claims, honest, lying)
    game = ContractInterface(GAME, deployed.game.address, deployed.game.abi)
    defender = _player(devnet.url, game, tmp_path / "defender.db", DEV_KEYS[1], honest)
    challenger = _player(devnet.url, game, tmp_path / "challenger.db", DEV_KEYS[2], lying)
    stop = threading.Event()
    answering = threading.Thread(
        target=_answers, args=(deployed, honest, game, devnet.url, game_id, stop)
    )
    answering.start()
    try:
        for _ in range(200):
            defender.step(game_id)
            challenger.step(game_id)
            if defender.read(game_id).state.phase == Phase.RESOLVED:
                break
        final = defender.play(game_id, timeout=60)
    finally:
        stop.set()
        answering.join()
    assert (final.ruling, final.reason) == (Ruling.DEFENDER_WINS, Reason.ONE_STEP)
    assert final.paid  # the winner took its bonds
    entries = defender.executor.journal.all()
    assert {e.status for e in entries} <= {"mined", "rejected", "reverted"}
    moves = [e.intent.removesuffix("/second") for e in entries if e.status == "mined"]
    assert len(moves) == len(set(moves))


@pytest.mark.parametrize("point", ["tx-signed", "tx-sent"])
def test_a_killed_player_resumes_without_sending_twice(
    deployed: Any, claims: ToyClaims, tmp_path: Path, devnet: Any, point: str
) -> None:
    honest = ToyTrace(SEGMENT, claims.states[SEGMENT], claims.states[SEGMENT + 1])
    lying = ToyTrace(SEGMENT, claims.states[SEGMENT], claims.states[SEGMENT + 1], LIE)
    game_id = open_toy_game(deployed, claims, honest, lying)
    game = ContractInterface(GAME, deployed.game.address, deployed.game.abi)
    abi = tmp_path / "game.json"
    abi.write_text(json.dumps(deployed.game.abi))
    stop = threading.Event()

    def challenge() -> None:  # the player's database belongs to its own thread
        player = _player(devnet.url, game, tmp_path / "challenger.db", DEV_KEYS[2], lying)
        _keep_playing(player, game_id, stop)

    helpers = [
        threading.Thread(target=_answers, args=(deployed, honest, game, devnet.url, game_id, stop)),
        threading.Thread(target=challenge),
    ]
    for t in helpers:
        t.start()
    db = tmp_path / "defender.db"
    args = [
        sys.executable,
        "-m",
        "tests.dispute.player_child",
        devnet.url,
        game.address,
        str(abi),
        str(db),
        DEV_KEYS[1],
        str(game_id),
        "honest",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    try:
        # Killed right after it journals (or broadcasts) its record of the disputed op.
        killed = subprocess.run(
            args,
            env={**env, "VERITRAIN_FAILPOINTS": f"{point}:game/{game_id}/revealRecord/"},
            cwd=REPO_ROOT,
            timeout=300,
        )
        assert killed.returncode == -9
        journal = TransactionJournal(open_database(db))
        crashed = [e for e in journal.all() if e.status in ("signed", "sent")]
        assert len(crashed) == 1 and "revealRecord" in crashed[0].intent
        resumed = subprocess.run(args, env=env, cwd=REPO_ROOT, timeout=300)
        assert resumed.returncode == 0
    finally:
        stop.set()
        for t in helpers:
            t.join()
    final = GameLog.read(ChainClient(devnet.url), game, game_id).state
    assert final.ruling == Ruling.DEFENDER_WINS
    entries = TransactionJournal(open_database(db)).all()
    # A move that opened its round too late (the opponent had moved) was refused before it
    # reached the chain, or reverted there, and was sent again as an answer: a move takes
    # effect once, never twice.
    statuses = {e.status for e in entries}
    assert statuses <= {"mined", "rejected", "reverted"}, [dataclasses.asdict(e) for e in entries]
    moves = [e.intent.removesuffix("/second") for e in entries if e.status == "mined"]
    assert len(moves) == len(set(moves))
    assert any("revealRecord" in m for m in moves)
    # The chain saw exactly the journal's nonces.
    nonces = sorted(
        e.nonce for e in entries if e.status in ("mined", "reverted") and e.nonce is not None
    )
    assert nonces == list(range(len(nonces)))
    defender = Account.from_key(DEV_KEYS[1]).address
    assert ChainClient(devnet.url).nonce(defender, "latest") == len(nonces)


def _keep_playing(player: GamePlayer, game_id: int, stop: threading.Event) -> None:
    while not stop.is_set():
        player.step(game_id)
        if player.read(game_id).state.phase == Phase.RESOLVED:
            return
        stop.wait(0.05)
