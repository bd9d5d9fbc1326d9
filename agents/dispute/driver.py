"""Playing a pinpoint game through the chain: read the game, decide, send, journaled.

``GameLog`` reads a game's state (the contract's ``game`` view) and its events, and tells
a player what the opponent revealed. ``GamePlayer`` plays one party's side: each
``step`` follows its in-flight transactions, reads the game, asks ``decisions.decide``
for the next move and hands it to the ``TransactionExecutor``, whose journal commits a
signed transaction before it is broadcast and refuses a second transaction for the same
key. A move's key names the game, the round, the function and whether it opens the
round or answers the opponent, so a player killed at any point and restarted with the
same data directory resumes without sending any move twice (a move already signed is
broadcast again byte for byte, or found mined). Once a game is over, the winner takes
its bonds, and the player stores the game's transcript and posts its CID.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.chain.abi import ContractInterface, DecodedLog
from agents.chain.client import ChainClient
from agents.chain.errors import ChainError
from agents.chain.events import read_events
from agents.chain.executor import Intent, TransactionExecutor
from agents.chain.journal import JournalEntry
from agents.dispute.decisions import decide
from agents.dispute.errors import DisputeError
from agents.dispute.game import GAME, GameState, Move, OpponentMove, Party, Phase, Ruling
from agents.dispute.provider import TraceProvider
from agents.store import ArtifactStore, canonical_json

log = logging.getLogger(__name__)

TRANSCRIPT_FORMAT = "veritrain-transcript/1"


def _bytes(value: Any) -> bytes:
    text = str(value)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def game_subject(event: DecodedLog) -> int | None:
    """The game an event is about (``None`` for the contract's other events)."""
    value = event.args.get("gameId")
    return int(value) if value is not None else None


def opponent_move(events: Sequence[DecodedLog], party: Party, round_: int) -> OpponentMove:
    """What ``party`` revealed in ``events`` (a game's, in order): its nodes, leaf and partial
    results of round ``round_``, and its latest record."""
    nodes: tuple[bytes, ...] = ()
    leaf = b""
    values: tuple[int, ...] = ()
    record = (b"", b"", b"")
    for e in events:
        a = e.args
        if int(a.get("party", -1)) != int(party):
            continue
        same_round = int(a.get("round", -1)) == round_
        if e.name == "Dissected" and same_round:
            nodes = tuple(_bytes(n) for n in a["nodes"])
        elif e.name == "LeafRevealed" and same_round:
            leaf = _bytes(a["leaf"])
        elif e.name == "TermsPosted" and same_round:
            values = tuple(int(v) for v in a["values"])
        elif e.name == "RecordRevealed":
            record = (_bytes(a["record"]), _bytes(a["header"]), _bytes(a["merkle"]))
    return OpponentMove(nodes, record[0], record[1], record[2], leaf, values)


@dataclass
class GameLog:
    """One game as the chain shows it: the view, and its events in chain order."""

    state: GameState
    events: list[DecodedLog]

    @classmethod
    def read(
        cls, client: ChainClient, game: ContractInterface, game_id: int, from_block: int = 0
    ) -> GameLog:
        state = GameState.from_view(game_id, client.read(game, "game", (game_id,)))
        events = [e for e in read_events(client, [game], from_block) if game_subject(e) == game_id]
        return cls(state, events)

    def opponent(self, me: Party) -> OpponentMove:
        """What the other party revealed: its nodes, leaf and partial results of the current
        round, and its latest record."""
        return opponent_move(self.events, me.other, self.state.round)

    def transcript(self, chain_id: int, game: ContractInterface) -> dict[str, Any]:
        """The game's transcript: every event (with its block and transaction) and the end."""
        return {
            "format": TRANSCRIPT_FORMAT,
            "chain_id": chain_id,
            "game": game.address,
            "game_id": self.state.game_id,
            "defender": self.state.defender,
            "challenger": self.state.challenger,
            "program": "0x" + self.state.program.hex(),
            "ruling": self.state.ruling.name,
            "reason": self.state.reason.name,
            "events": [
                {
                    "block": e.block_number,
                    "log_index": e.log_index,
                    "tx": e.tx_hash,
                    "event": e.name,
                    "args": e.args,
                }
                for e in self.events
            ],
        }


class GamePlayer:
    """Plays party ``me``'s side of games on the game contract, through ``executor``.

    ``provider`` gives the trace the player stands behind for a game (its state in).
    """

    def __init__(
        self,
        executor: TransactionExecutor,
        game: ContractInterface,
        provider: Callable[[GameState], TraceProvider],
        *,
        from_block: int = 0,
        store: ArtifactStore | None = None,
        clock: Callable[[], float] = time.time,
        wall_clock: bool = False,
    ) -> None:
        self.executor = executor
        self.client = executor.client
        self.game = game
        self.provider = provider
        self.from_block = from_block
        self.store = store
        self._clock = clock
        # With ``wall_clock`` a move is decided at the later of the latest block's time and
        # ``clock()`` (a node that mines only on transactions: the next block is that late).
        self._wall_clock = wall_clock
        self._bits: int | None = None
        self._bond: int | None = None

    def _call(self, function: str, *args: Any) -> Any:
        return self.client.read(self.game, function, args)

    @property
    def bits(self) -> int:
        if self._bits is None:
            self._bits = int(self._call("dissectionBits"))
        return self._bits

    @property
    def bond(self) -> int:
        if self._bond is None:
            self._bond = int(self._call("requiredBond"))
        return self._bond

    def read(self, game_id: int) -> GameLog:
        return GameLog.read(self.client, self.game, game_id, self.from_block)

    def step(self, game_id: int) -> Move | None:
        """Follow in-flight transactions, read the game, send the next move (if any)."""
        self.executor.reconcile()
        view = self.read(game_id)
        state = view.state
        me = state.party_of(self.executor.address)
        if state.phase == Phase.RESOLVED:
            return self._after(view, me)
        now = self.client.block("latest").timestamp
        if self._wall_clock:
            now = max(now, int(self._clock()))
        if me is None:
            return None
        move = decide(
            state,
            me,
            self.provider(state),
            view.opponent(me),
            now=now,
            bond=self.bond,
            bits=self.bits,
        )
        if move is not None:
            self._send(move)
        return move

    def _send(self, move: Move) -> JournalEntry | None:
        intent = Intent(move.key, GAME, move.function, move.args, move.value)
        if not self.executor.may_submit(intent):
            return None
        entry = self.executor.submit(intent)
        if entry is not None:
            log.info("game move %s (%s): %s", move.key, move.note, entry.status)
        return entry

    def _after(self, view: GameLog, me: Party | None) -> Move | None:
        """After the end: the winner takes the bonds; a party posts the transcript once."""
        state = view.state
        won = (state.ruling == Ruling.DEFENDER_WINS and me == Party.DEFENDER) or (
            state.ruling == Ruling.CHALLENGER_WINS and me == Party.CHALLENGER
        )
        if won and not state.paid:
            move = Move(f"game/{state.game_id}/withdraw", "withdraw", ([state.game_id],))
            self._send(move)
            return move
        if me is not None and self.store is not None:
            posted = any(e.name == "TranscriptPosted" for e in view.events)
            key = f"game/{state.game_id}/transcript"
            if not posted and self.executor.journal.get(key) is None:
                document = view.transcript(self.client.chain_id(), self.game)
                cid = self.store.put_bytes(canonical_json(document))
                move = Move(key, "postTranscript", (state.game_id, cid))
                self._send(move)
                return move
        return None

    def play(self, game_id: int, *, poll: float = 0.2, timeout: float = 600.0) -> GameState:
        """Step until the game is over and nothing is left to send; returns the final state."""
        deadline = self._clock() + timeout
        while True:
            move = self.step(game_id)
            state = self.read(game_id).state
            pending = self.executor.journal.by_status(("signed", "sent"))
            if state.phase == Phase.RESOLVED and move is None and not pending:
                return state
            if self._clock() > deadline:
                raise DisputeError(
                    f"game {game_id} is still in {state.phase.name} after {timeout:.0f} s"
                )
            if move is None or pending:
                time.sleep(poll)


def transcript_json(document: dict[str, Any]) -> str:
    """A transcript as readable JSON."""
    return json.dumps(document, indent=2, sort_keys=True)


def require_game(client: ChainClient, game: ContractInterface, game_id: int) -> GameState:
    """The state of game ``game_id``; ``DisputeError`` if the contract has no such game."""
    try:
        raw = client.call(game.address, game.encode_call("game", (game_id,)))
    except ChainError as exc:
        raise DisputeError(f"no game {game_id} on {game.address}: {exc}") from exc
    return GameState.from_view(game_id, game.decode_output("game", raw))
