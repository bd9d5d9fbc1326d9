"""The players' decision function, driven by a table of situations: no chain.

Each row is a game as the contract would show it, the party deciding, whose trace it plays
(the honest toy trace or a liar's) and what the opponent revealed this round; the row says
which move ``decide`` must return (or none) and, where it matters, what the move carries.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import pytest

from agents.dispute.decisions import decide, term_points
from agents.dispute.game import GameState, OpponentMove, Party, Phase, Reason, Ruling
from agents.dispute.provider import TraceProvider
from tests.dispute.toy import Fault, ToyClaims, ToyTrace

NOW = 10_000
BOND = 7
BITS = 3
SEGMENT = 1
ATTRIBUTE_LIE = Fault("attribute", 1, op=4)
VALUE_LIE = Fault("value", 1, op=5, element=2)


@functools.cache
def traces() -> dict[str, TraceProvider]:
    claims = ToyClaims()
    start, end = claims.states[SEGMENT], claims.states[SEGMENT + 1]
    return {
        "honest": ToyTrace(SEGMENT, start, end),
        "attribute": ToyTrace(SEGMENT, start, end, ATTRIBUTE_LIE),
        "value": ToyTrace(SEGMENT, start, end, VALUE_LIE),
    }


def game(**fields: Any) -> GameState:
    """A running game over the toy segment at round 1, both clocks running; ``fields`` override."""
    honest = traces()["honest"]
    base: dict[str, Any] = {
        "game_id": 5,
        "phase": Phase.STEPS,
        "ruling": Ruling.NONE,
        "reason": Reason.NONE,
        "height": 2,
        "moved": 0,
        "round": 1,
        "paid": False,
        "defender": "0x" + "0d" * 20,
        "challenger": "0x" + "0c" * 20,
        "creator": "0x" + "0c" * 20,
        "first_step": honest.first_step,
        "step_count": honest.step_count,
        "step_ops": 14,
        "distance_ops": 18,
        "state_tensors": 3,
        "step": 0,
        "op": 0,
        "op_code": 0,
        "state_tree": False,
        "index": 0,
        "numel": 0,
        "element": 0,
        "terms": 0,
        "stretch": 0,
        "lo": 0,
        "hi": 0,
        "acc_lo": 0,
        "values": (0, 0),
        "left": (600, 600),
        "since": (NOW - 10, NOW - 10),
        "bonds": (0, BOND),
        "program": honest.program.root(),
        "start_state": b"\x01" * 32,
        "claimed_state": b"\x02" * 32,
        "traces": (b"\x03" * 32, b"\x04" * 32),
        "nodes": (b"\x05" * 32, b"\x06" * 32),
        "claim": b"\x07" * 32,
    }
    base.update(fields)
    return GameState(**base)


def revealed(trace: str, step: int, op: int) -> OpponentMove:
    """What a party playing ``trace`` reveals of record ``op`` of step ``step``."""
    t = traces()[trace]
    return OpponentMove(
        record=t.record(step, op).encode(),
        header=t.output_header(step, op),
        merkle=t.output_merkle(step, op),
    )


def steps_nodes(trace: str) -> OpponentMove:
    return OpponentMove(nodes=tuple(traces()[trace].trace_tree.children(2, 0, 2)))


def value_of(trace: str) -> int:
    return traces()[trace].value(1, 5, 2)


@dataclass(frozen=True)
class Row:
    name: str
    state: dict[str, Any]
    me: Party
    trace: str
    opponent: Any  # OpponentMove, None, or a callable giving one (built lazily)
    function: str | None
    value: int = 0
    second: bool | None = None  # for round moves: whether it hands back the opponent's


ONE_STEP = {
    "phase": Phase.ONE_STEP,
    "step": 1,
    "op": 5,
    "element": 2,
    "since": (0, 0),
}
PROGRAM = {"phase": Phase.PROGRAM, "step": 1, "op": 4, "since": (0, 0)}
D, C = Party.DEFENDER, Party.CHALLENGER

ROWS = [
    Row("an ended game asks nothing", {"phase": Phase.RESOLVED}, D, "honest", None, None),
    Row("a game not begun asks nothing", {"phase": Phase.NONE}, C, "honest", None, None),
    Row(
        "a party out of time can only lose",
        {"since": (NOW - 700, NOW - 10)},
        D,
        "honest",
        None,
        None,
    ),
    Row(
        "the opponent out of time: timeout",
        {"since": (NOW - 10, NOW - 700)},
        D,
        "honest",
        None,
        "timeout",
    ),
    Row(
        "an opponent who moved and has no clock running is not out of time",
        {"since": (NOW - 10, 0), "left": (600, 1), "moved": 2},
        D,
        "honest",
        lambda: steps_nodes("value"),
        "dissect",
        BOND,
        True,
    ),
    Row("a descent opens the round with a bond", {}, D, "honest", None, "dissect", BOND, False),
    Row(
        "the second to move hands back the opponent's nodes",
        {"moved": 1},
        C,
        "value",
        lambda: steps_nodes("honest"),
        "dissect",
        BOND,
        True,
    ),
    Row(
        "the opponent's nodes not readable yet: wait",
        {"moved": 1},
        C,
        "honest",
        None,
        None,
    ),
    Row(
        "the opponent's nodes are of another round: wait",
        {"moved": 1},
        C,
        "honest",
        OpponentMove(nodes=(b"\x00" * 32,)),
        None,
    ),
    Row("a party that moved waits for the round", {"moved": 2}, C, "honest", None, None),
    Row(
        "the record opens the round",
        {"phase": Phase.RECORD, "step": 1, "op": 5},
        C,
        "honest",
        None,
        "revealRecord",
        BOND,
        False,
    ),
    Row(
        "the record hands back the opponent's",
        {"phase": Phase.RECORD, "step": 1, "op": 5, "moved": 2},
        D,
        "honest",
        lambda: revealed("value", 1, 5),
        "revealRecord",
        BOND,
        True,
    ),
    Row(
        "the honest party proves the liar's record is not the program's",
        PROGRAM,
        D,
        "honest",
        lambda: revealed("attribute", 1, 4),
        "proveProgram",
    ),
    Row(
        "the liar has no proof against the honest record",
        PROGRAM,
        C,
        "attribute",
        lambda: revealed("honest", 1, 4),
        None,
    ),
    Row(
        "the honest party runs the one step on its own value",
        {**ONE_STEP, "values": ("honest", "value")},
        D,
        "honest",
        None,
        "oneStep",
    ),
    Row(
        "a liar does not run the one step against itself",
        {**ONE_STEP, "values": ("honest", "value")},
        C,
        "value",
        None,
        None,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_decide(row: Row) -> None:
    state = dict(row.state)
    if "values" in state:
        state["values"] = tuple(value_of(v) for v in state["values"])
    g = game(**state)
    opponent = row.opponent() if callable(row.opponent) else row.opponent
    move = decide(g, row.me, traces()[row.trace], opponent, now=NOW, bond=BOND, bits=BITS)
    if row.function is None:
        assert move is None
        return
    assert move is not None and move.function == row.function
    assert move.value == row.value
    assert move.args[0] == g.game_id
    assert move.key.startswith(f"game/{g.game_id}/{row.function}/{g.round}")
    if row.second is not None:
        assert move.key.endswith("/second") == row.second
        handed_back = move.args[2]
        if row.function == "dissect":
            assert list(handed_back) == (list(opponent.nodes) if row.second else [])
            assert len(move.args[1]) == 1 << min(BITS, g.height)
    if row.function == "proveProgram":
        assert move.args[1] == int(row.me.other)  # the accused is the opponent


def test_the_move_keys_of_both_orders_differ() -> None:
    """Opening a round and answering it are different journal entries."""
    g = game()
    first = decide(g, D, traces()["honest"], None, now=NOW, bond=BOND, bits=BITS)
    second = decide(
        dataclasses.replace(g, moved=2),
        D,
        traces()["honest"],
        steps_nodes("value"),
        now=NOW,
        bond=BOND,
        bits=BITS,
    )
    assert first is not None and second is not None and first.key != second.key


@pytest.mark.parametrize(
    ("lo", "hi", "bits", "points"),
    [
        (0, 2, 3, [1]),
        (0, 8, 3, [1, 2, 3, 4, 5, 6, 7]),
        (0, 16, 3, [2, 4, 6, 8, 10, 12, 14]),
        (0, 300, 3, [37, 75, 112, 150, 187, 225, 262]),
        (10, 12, 1, [11]),
        (0, 300, 1, [150]),
    ],
)
def test_term_points_are_evenly_spaced_inside_the_interval(
    lo: int, hi: int, bits: int, points: list[int]
) -> None:
    assert term_points(lo, hi, bits) == points
