"""A pinpoint game as the chain keeps it, and the moves a player may send.

``GameState`` is the contract's ``game(id)`` view (``GameView`` in
contracts/interfaces/IPinpointGame.sol) as plain data; ``OpponentMove`` is what the
other party revealed in the current round (read from its event), which the second
mover of a round hands back; ``Move`` is one intended transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from agents.dispute.program import SourceKind

__all__ = [
    "DESCENTS",
    "GAME",
    "Move",
    "OpponentMove",
    "Party",
    "Phase",
    "Reason",
    "Ruling",
    "SourceKind",
]

GAME = "PinpointGame"


class Phase(IntEnum):
    """``Phase`` in contracts/lib/Types.sol."""

    NONE = 0
    STEPS = 1
    OPS = 2
    RECORD = 3
    PROGRAM = 4
    INPUT = 5
    TENSOR = 6
    ELEMENT = 7
    LEAF = 8
    TERMS = 9
    ONE_STEP = 10
    RESOLVED = 11


DESCENTS = (Phase.STEPS, Phase.OPS, Phase.ELEMENT)


class Party(IntEnum):
    DEFENDER = 0
    CHALLENGER = 1

    @property
    def other(self) -> Party:
        return Party(1 - self)


class Ruling(IntEnum):
    NONE = 0
    DEFENDER_WINS = 1
    CHALLENGER_WINS = 2
    BOTH_LOSE = 3


class Reason(IntEnum):
    NONE = 0
    CLOCK = 1
    PADDING = 2
    PROGRAM = 3
    SOURCE = 4
    ONE_STEP = 5


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


@dataclass(frozen=True)
class GameState:
    """One game as the contract's ``game(id)`` view returns it."""

    game_id: int
    phase: Phase
    ruling: Ruling
    reason: Reason
    height: int
    moved: int
    round: int
    paid: bool
    defender: str
    challenger: str
    creator: str
    first_step: int
    step_count: int
    step_ops: int
    distance_ops: int
    state_tensors: int
    step: int
    op: int
    op_code: int
    state_tree: bool
    index: int
    numel: int
    element: int
    terms: int
    stretch: int
    lo: int
    hi: int
    acc_lo: int
    values: tuple[int, int]
    left: tuple[int, int]
    since: tuple[int, int]
    bonds: tuple[int, int]
    program: bytes
    start_state: bytes
    claimed_state: bytes
    traces: tuple[bytes, bytes]
    nodes: tuple[bytes, bytes]
    claim: bytes

    @classmethod
    def from_view(cls, game_id: int, v: list[Any] | tuple[Any, ...]) -> GameState:
        """From the decoded ``game(id)`` tuple (field order of ``GameView``)."""
        (
            phase, ruling, reason, height, moved, rnd, paid, defender, challenger, creator,
            first_step, step_count, step_ops, distance_ops, state_tensors, step, op, op_code,
            state_tree, index, numel, element, terms, stretch, lo, hi, acc_lo, values, left, since,
            bonds, program, start_state, claimed_state, traces, nodes, claim,
        ) = v  # fmt: skip
        return cls(
            game_id=game_id,
            phase=Phase(int(phase)),
            ruling=Ruling(int(ruling)),
            reason=Reason(int(reason)),
            height=int(height),
            moved=int(moved),
            round=int(rnd),
            paid=bool(paid),
            defender=str(defender),
            challenger=str(challenger),
            creator=str(creator),
            first_step=int(first_step),
            step_count=int(step_count),
            step_ops=int(step_ops),
            distance_ops=int(distance_ops),
            state_tensors=int(state_tensors),
            step=int(step),
            op=int(op),
            op_code=int(op_code),
            state_tree=bool(state_tree),
            index=int(index),
            numel=int(numel),
            element=int(element),
            terms=int(terms),
            stretch=int(stretch),
            lo=int(lo),
            hi=int(hi),
            acc_lo=int(acc_lo),
            values=(int(values[0]), int(values[1])),
            left=(int(left[0]), int(left[1])),
            since=(int(since[0]), int(since[1])),
            bonds=(int(bonds[0]), int(bonds[1])),
            program=_bytes(program),
            start_state=_bytes(start_state),
            claimed_state=_bytes(claimed_state),
            traces=(_bytes(traces[0]), _bytes(traces[1])),
            nodes=(_bytes(nodes[0]), _bytes(nodes[1])),
            claim=_bytes(claim),
        )

    def party_of(self, account: str) -> Party | None:
        """The party ``account`` plays, if any."""
        if account.lower() == self.defender.lower():
            return Party.DEFENDER
        if account.lower() == self.challenger.lower():
            return Party.CHALLENGER
        return None

    def has_moved(self, party: Party) -> bool:
        """Whether ``party`` made its move of the current round."""
        return bool(self.moved & (1 << party))

    @property
    def distance(self) -> bool:
        """Whether the disputed step is the distance computation."""
        return self.step == self.step_count

    @property
    def ops(self) -> int:
        """Records of the disputed step."""
        return self.distance_ops if self.distance else self.step_ops

    def time_left(self, party: Party, now: int) -> int:
        """Seconds ``party`` has left at time ``now`` (its whole clock if it owes nothing)."""
        left, since = self.left[party], self.since[party]
        if since == 0:
            return left
        return max(0, left - (now - since))

    def expired(self, party: Party, now: int) -> bool:
        """Whether ``party`` owes a move and has run out of time (``timeout`` would count it)."""
        return self.since[party] != 0 and now > self.since[party] + self.left[party]


@dataclass(frozen=True)
class OpponentMove:
    """What the other party revealed in the current round (from its event)."""

    nodes: tuple[bytes, ...] = ()
    record: bytes = b""
    header: bytes = b""
    merkle: bytes = b""
    leaf: bytes = b""
    values: tuple[int, ...] = ()


@dataclass(frozen=True)
class Move:
    """One transaction a player intends: ``function(args)`` with ``value`` wei.

    ``key`` names the move for the journal (one transaction per key, ever): the game,
    the round, the function and whether it hands back the opponent's move.
    """

    key: str
    function: str
    args: tuple[Any, ...]
    value: int = 0
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)
