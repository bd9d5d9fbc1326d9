"""Plays pinpoint games on a devnet with brownie: two players, their traces, the chain.

Each player decides with ``agents.dispute.decisions.decide`` from its own trace provider
and the game as the contract shows it; the arena asks the players in a random order each
turn and sends the first move one of them makes (or, ``simultaneous``, every move both make
on the same view of the game, in that order: two agents that read the chain at the same
moment), hands each player the opponent's revealed data from the events, stands in for the
one step where the game asks an answer table (a contract with ``questionOf`` and ``answer``:
it registers the honest answer before a one step is sent; a game that asks the arbiter's
``OneStep`` needs nothing), and, when nobody moves, lets time run to the moment a waiting
player opens the round itself (``decisions.opens_at``) or, when nobody will, until the clocks
run out, and calls ``timeout``. Gas of every move and every refused move are recorded. The
dispute tests and benchmarks/dispute.py play their games here; ``open_game`` opens one.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_typing import HexStr

from agents.chain.abi import ContractInterface, DecodedLog
from agents.dispute.decisions import decide, one_step_value, opens_at
from agents.dispute.driver import opponent_move
from agents.dispute.game import GameState, Move, OpponentMove, Party, Phase
from agents.dispute.program import Program
from agents.dispute.provider import TraceProvider
from agents.dispute.tree import MerkleLevels

CLOCK = 3_600
EXTENSION = 600
BOND_GAS_PRICE = 10**9
ANSWER_GAS = 100_000
BITS = int(os.environ.get("GAME_BITS", "3"))


def game_params(one_step: str, jackpot: str, **overrides: int) -> tuple[Any, ...]:
    values = {
        "clock": CLOCK,
        "extension": EXTENSION,
        "bondGasPrice": BOND_GAS_PRICE,
        "answerGas": ANSWER_GAS,
        "dissectionBits": BITS,
    }
    values.update(overrides)
    return (
        one_step,
        jackpot,
        values["clock"],
        values["extension"],
        values["bondGasPrice"],
        values["answerGas"],
        values["dissectionBits"],
    )


def sent_tx(function: Any, *args: Any) -> Any:
    """``function(*args)`` (a brownie contract call that transacts), its receipt.

    Under load brownie can lose the race between the sender's nonce and the node's index of a
    mined transaction and call it dropped; the transaction is then looked up by hash (a
    reverted one raises ``VirtualMachineError``, as brownie would have).
    """
    from brownie import chain, web3
    from brownie.exceptions import TransactionError, VirtualMachineError

    try:
        return function(*args)
    except TransactionError as e:
        if "dropped without known replacement" not in str(e):
            raise
        txid = str(e).rsplit(" ", 1)[-1]
        web3.eth.wait_for_transaction_receipt(HexStr(txid), timeout=120)
        tx = chain.get_transaction(txid)
        if tx.status == 0:
            raise VirtualMachineError(
                ValueError({"message": f"{txid} reverted", "data": "0x"})
            ) from e
        return tx


def decoded_logs(interface: ContractInterface, tx: Any) -> list[DecodedLog]:
    """The game's events of a brownie transaction, decoded by the agents' ABI reader."""
    out = []
    for log in tx.logs:
        raw = {
            "address": log["address"],
            "topics": ["0x" + bytes(t).hex() for t in log["topics"]],
            "data": "0x" + bytes(log["data"]).hex(),
            "blockNumber": hex(log["blockNumber"]),
            "blockHash": "0x" + bytes(log["blockHash"]).hex(),
            "logIndex": hex(log["logIndex"]),
            "transactionHash": "0x" + bytes(log["transactionHash"]).hex(),
        }
        if str(raw["address"]).lower() == interface.address.lower():
            decoded = interface.decode_log(raw)
            if decoded is not None:
                out.append(decoded)
    return out


@dataclass
class Player:
    """One party: its account, its trace, and when (if ever) it stops answering."""

    party: Party
    account: Any
    provider: TraceProvider
    silent_after: int | None = None  # moves it makes before it falls silent
    moves: int = 0
    gas: list[int] = field(default_factory=list)
    failures: int = 0  # refused moves, less the openings that lost a race to the opponent's
    reverted: int = 0  # every refused move

    @property
    def silent(self) -> bool:
        return (
            self.silent_after is not None and self.moves >= self.silent_after
        ) or self.failures > 2


@dataclass
class Revealed:
    """A game's events as the arena has seen them, to hand each player what the other
    revealed (``agents.dispute.driver.opponent_move``, as a ``GamePlayer`` reads them)."""

    events: list[DecodedLog] = field(default_factory=list)

    def read(self, events: list[DecodedLog]) -> None:
        self.events.extend(events)

    def of(self, party: Party, round_: int) -> OpponentMove:
        return opponent_move(self.events, party, round_)


@dataclass
class Outcome:
    """How a game went."""

    state: GameState
    moves: dict[Party, int]
    gas: dict[Party, list[int]]
    resolving_gas: int
    phases: list[Phase]
    one_step_gas: int = 0  # the costliest one step sent in the game (by a player or anyone)
    reverted: dict[Party, int] = field(default_factory=dict)  # refused moves of each party


class Arena:
    """Plays games on a deployed ``PinpointGame`` (brownie objects), whose one step is an
    ``AnswerTable`` (``table``) or the arbiter's ``OneStep`` (``table`` None)."""

    def __init__(self, game: Any, table: Any | None, referee: Any, rng: random.Random) -> None:
        self.game = game
        self.table = table  # None: the game asks the arbiter's one step, which needs no answers
        self.referee = referee  # a third account: calls timeout, registers answers
        self.rng = rng
        self.interface = ContractInterface("PinpointGame", game.address, game.abi)
        self.bits = int(game.dissectionBits())
        self.clock = int(game.clock()) + int(game.extension())

    def state(self, game_id: int) -> GameState:
        return GameState.from_view(game_id, self.game.game(game_id))

    def now(self) -> int:
        from brownie import chain

        return int(chain.time())

    def play(
        self,
        game_id: int,
        defender: Player,
        challenger: Player,
        honest: TraceProvider,
        *,
        max_transactions: int = 400,
        on_move: Callable[[Player, Move, Any], None] | None = None,
        simultaneous: bool = False,
    ) -> Outcome:
        """Play ``game_id`` to its end; ``honest`` gives the one step's answers.

        ``simultaneous``: both players decide on the same view of the game each turn and both
        moves are sent (a move refused because the opponent's of the same turn went first
        counts in ``reverted``, not as a failure that silences the player)."""
        from brownie import chain
        from brownie.exceptions import VirtualMachineError

        players = {Party.DEFENDER: defender, Party.CHALLENGER: challenger}
        revealed = Revealed()
        bond = int(self.game.requiredBond())
        phases: list[Phase] = []
        resolving_gas = 0
        one_step_gas = 0
        for _ in range(max_transactions):
            state = self.state(game_id)
            if not phases or phases[-1] != state.phase:
                phases.append(state.phase)
            if state.phase == Phase.RESOLVED:
                break
            order = [Party.DEFENDER, Party.CHALLENGER]
            self.rng.shuffle(order)
            now = self.now()

            def decided(party: Party, state: GameState = state, now: int = now) -> Move | None:
                player = players[party]
                return decide(
                    state,
                    party,
                    player.provider,
                    revealed.of(party.other, state.round),
                    now=now,
                    bond=bond,
                    bits=self.bits,
                )

            # Simultaneous: every decision is taken before any move is sent.
            early = {p: decided(p) for p in order if not players[p].silent} if simultaneous else {}
            sent = False
            for party in order:
                player = players[party]
                if player.silent and party not in early:
                    continue
                move = early[party] if simultaneous else decided(party)
                if move is None:
                    continue
                if move.function == "oneStep":
                    self._answer(state, honest)
                try:
                    tx = sent_tx(
                        getattr(self.game, move.function),
                        *move.args,
                        {"from": player.account, "value": move.value},
                    )
                except VirtualMachineError:
                    player.reverted += 1
                    if not sent:  # not a race lost to the opponent's move of this turn
                        player.failures += 1
                    continue
                player.moves += 1
                player.gas.append(int(tx.gas_used))
                if move.function == "oneStep":
                    one_step_gas = max(one_step_gas, int(tx.gas_used))
                if move.value == 0:
                    resolving_gas = max(resolving_gas, int(tx.gas_used))
                revealed.read(decoded_logs(self.interface, tx))
                if on_move is not None:
                    on_move(player, move, tx)
                sent = True
                if not simultaneous:
                    break
            if sent:
                continue
            if state.phase == Phase.ONE_STEP:
                # Neither party computes its own value: anyone may run the one step.
                self._answer(state, honest)
                record = honest.record(state.step, state.op).encode()[:-32]
                witness = honest.witness(
                    state.step, state.op, state.element, state.lo, state.hi, state.acc_lo
                )
                tx = sent_tx(self.game.oneStep, game_id, record, witness, {"from": self.referee})
                resolving_gas = max(resolving_gas, int(tx.gas_used))
                one_step_gas = max(one_step_gas, int(tx.gas_used))
                continue
            waiting = [
                opens_at(state, p)
                for p, player in players.items()
                if not player.silent and not state.has_moved(p)
            ]
            wake = min((t for t in waiting if t > now), default=None)
            if wake is not None:
                # A player waits for the opponent to open the round: let time run to the
                # moment it opens the round itself.
                chain.sleep(wake - now)
                chain.mine()
                continue
            # Nobody has anything to send: let the clocks run out, then end it.
            chain.sleep(self.clock + 1)
            chain.mine()
            tx = sent_tx(self.game.timeout, game_id, {"from": self.referee})
            resolving_gas = max(resolving_gas, int(tx.gas_used))
        state = self.state(game_id)
        phases.append(state.phase)
        return Outcome(
            state=state,
            moves={p: players[p].moves for p in players},
            gas={p: players[p].gas for p in players},
            resolving_gas=resolving_gas,
            phases=phases,
            one_step_gas=one_step_gas,
            reverted={p: players[p].reverted for p in players},
        )

    def _answer(self, state: GameState, honest: TraceProvider) -> None:
        """Register what the one step computes for the game's stretch (by the honest trace)."""
        if self.table is None:
            return
        record = honest.record(state.step, state.op).encode()[:-32]
        question = self.table.questionOf(record, state.element, state.lo, state.hi, state.acc_lo)
        value = one_step_value(honest, state)
        self.table.answer(question, value or 0, value is not None, {"from": self.referee})


def checkpoint_proofs(roots: list[bytes], segment: int) -> tuple[bytes, list[bytes], list[bytes]]:
    """The checkpoint root and the proofs of checkpoints ``segment`` and ``segment + 1``."""
    tree = MerkleLevels(roots)
    return tree.root, tree.proof(segment), tree.proof(segment + 1)


def open_game(
    game: Any,
    program: Program,
    roots: list[bytes],
    segment: int,
    defender_trace: bytes,
    challenger_trace: bytes,
    defender: Any,
    challenger: Any,
    creator: Any | None = None,
) -> tuple[int, Any]:
    """Create a game over segment ``segment`` of a task with ``program`` and checkpoint state
    roots ``roots`` (paid by ``creator``, else the challenger); returns its id and the
    transaction."""
    checkpoints, start_proof, claimed_proof = checkpoint_proofs(roots, segment)
    spec = (
        program.root(),
        checkpoints,
        segment,
        roots[segment],
        roots[segment + 1],
        defender_trace,
        challenger_trace,
    )
    tx = sent_tx(
        game.create,
        spec,
        program.header().encode(),
        start_proof,
        claimed_proof,
        defender,
        challenger,
        {"from": creator or challenger, "value": game.requiredBond()},
    )
    return int(tx.return_value), tx


def trace_cache(prefix: str) -> Path:
    """A fresh directory for replay providers' caches (a replayed segment takes hundreds of
    megabytes), removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
