"""Plays pinpoint games on the devnet with brownie: two players, their traces, the chain.

Each player decides with ``agents.dispute.decisions.decide`` from its own trace provider
and the game as the contract shows it; the arena sends the moves in a random order each
round (so either party may open a round), hands each player the opponent's revealed data
from the events, stands in for the one step where the game asks an ``AnswerTable`` (it
registers the honest answer before a one step is sent; a game that asks the arbiter's
``OneStep`` needs nothing), and, when nobody moves, lets the clocks run
out and calls ``timeout``. Gas of every move is recorded.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from agents.chain.abi import ContractInterface, DecodedLog
from agents.devnet.anvil import REPO_ROOT
from agents.dispute.decisions import decide, one_step_value
from agents.dispute.game import GameState, Move, OpponentMove, Party, Phase
from agents.dispute.provider import TraceProvider

HERE = Path(__file__).resolve().parent
CLOCK = 3_600
EXTENSION = 600
BOND_GAS_PRICE = 10**9
ANSWER_GAS = 100_000
BITS = int(__import__("os").environ.get("GAME_BITS", "3"))


@cache
def answer_table_artifact() -> dict[str, Any]:
    """ABI and bytecode of tests/dispute/contracts/AnswerTable.sol (solc-js, as the project)."""
    names = [
        "tests/dispute/contracts/AnswerTable.sol",
        "contracts/dispute/OneStepCall.sol",
        "contracts/lib/Types.sol",
    ]
    sources = {name: {"content": (REPO_ROOT / name).read_text()} for name in names}
    request = {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "cancun",
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    out = subprocess.run(
        ["node", str(REPO_ROOT / "tools" / "solc" / "solc-adapter.js"), "--standard-json"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    result = json.loads(out.stdout)
    errors = [e for e in result.get("errors", []) if e["severity"] == "error"]
    assert not errors, errors
    contract = result["contracts"][names[0]]["AnswerTable"]
    return {"abi": contract["abi"], "bytecode": contract["evm"]["bytecode"]["object"]}


def deploy_answer_table(account: Any) -> Any:
    """Deploy an ``AnswerTable`` from ``account``; returns a brownie ``Contract``."""
    from brownie import Contract, web3

    artifact = answer_table_artifact()
    factory = web3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor().transact({"from": account.address})
    receipt = web3.eth.wait_for_transaction_receipt(tx)
    return Contract.from_abi("AnswerTable", receipt["contractAddress"], artifact["abi"])


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
        web3.eth.wait_for_transaction_receipt(txid, timeout=120)
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


def _b(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


@dataclass
class Player:
    """One party: its account, its trace, and when (if ever) it stops answering."""

    party: Party
    account: Any
    provider: TraceProvider
    silent_after: int | None = None  # moves it makes before it falls silent
    moves: int = 0
    gas: list[int] = field(default_factory=list)
    failures: int = 0

    @property
    def silent(self) -> bool:
        return (
            self.silent_after is not None and self.moves >= self.silent_after
        ) or self.failures > 2


@dataclass
class Revealed:
    """What each party revealed, by round (descents, leaves, terms) or latest (records)."""

    nodes: dict[tuple[int, int], tuple[bytes, ...]] = field(default_factory=dict)
    leaves: dict[tuple[int, int], bytes] = field(default_factory=dict)
    values: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)
    records: dict[int, tuple[bytes, bytes, bytes]] = field(default_factory=dict)

    def read(self, events: list[DecodedLog]) -> None:
        for e in events:
            a = e.args
            if e.name == "Dissected":
                self.nodes[(int(a["party"]), int(a["round"]))] = tuple(_b(n) for n in a["nodes"])
            elif e.name == "LeafRevealed":
                self.leaves[(int(a["party"]), int(a["round"]))] = _b(a["leaf"])
            elif e.name == "TermsPosted":
                self.values[(int(a["party"]), int(a["round"]))] = tuple(int(v) for v in a["values"])
            elif e.name == "RecordRevealed":
                self.records[int(a["party"])] = (_b(a["record"]), _b(a["header"]), _b(a["merkle"]))

    def of(self, party: Party, round_: int) -> OpponentMove:
        record = self.records.get(int(party), (b"", b"", b""))
        return OpponentMove(
            nodes=self.nodes.get((int(party), round_), ()),
            record=record[0],
            header=record[1],
            merkle=record[2],
            leaf=self.leaves.get((int(party), round_), b""),
            values=self.values.get((int(party), round_), ()),
        )


@dataclass
class Outcome:
    """How a game went."""

    state: GameState
    moves: dict[Party, int]
    gas: dict[Party, list[int]]
    resolving_gas: int
    phases: list[Phase]
    one_step_gas: int = 0  # the costliest one step sent in the game (by a player or anyone)


class Arena:
    """Plays games on a deployed ``PinpointGame`` (brownie objects), whose one step is an
    ``AnswerTable`` (``table``) or the arbiter's ``OneStep`` (``table`` None)."""

    def __init__(self, game: Any, table: Any | None, referee: Any, rng: random.Random) -> None:
        self.game = game
        self.table = table  # None: the game asks the arbiter's one step, which needs no answers
        self.referee = referee  # a third account: calls timeout, registers answers
        self.rng = rng
        self.interface = ContractInterface("PinpointGame", game.address, game.abi)

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
    ) -> Outcome:
        """Play ``game_id`` to its end; ``honest`` gives the one step's answers."""
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
            sent = False
            for party in order:
                player = players[party]
                if player.silent:
                    continue
                move = decide(
                    state,
                    party,
                    player.provider,
                    revealed.of(party.other, state.round),
                    now=self.now(),
                    bond=bond,
                    bits=BITS,
                )
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
                break
            if not sent and state.phase == Phase.ONE_STEP:
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
            if not sent:
                # Nobody has anything to send: let the clocks run out, then end it.
                chain.sleep(CLOCK + EXTENSION + 1)
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
        )

    def _answer(self, state: GameState, honest: TraceProvider) -> None:
        """Register what the one step computes for the game's stretch (by the honest trace)."""
        if self.table is None:
            return
        record = honest.record(state.step, state.op).encode()[:-32]
        question = self.table.questionOf(record, state.element, state.lo, state.hi, state.acc_lo)
        value = one_step_value(honest, state)
        self.table.answer(question, value or 0, value is not None, {"from": self.referee})
