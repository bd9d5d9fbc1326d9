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

from agents.dispute.decisions import decide, opener, opens_at, term_points
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
    Row("a descent opens the round with a bond", {}, C, "honest", None, "dissect", BOND, False),
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
    first = decide(g, C, traces()["honest"], None, now=NOW, bond=BOND, bits=BITS)
    second = decide(
        dataclasses.replace(g, moved=1),
        C,
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


# Who opens a round of two moves, who waits, and when a party that waits opens it itself.
# Each kind of round is a game state at round 1 (the challenger opens) and the opening the
# opponent would hand over, built from the liar's trace.
ROUND_KINDS: dict[str, tuple[dict[str, Any], str]] = {
    "steps": ({"phase": Phase.STEPS, "height": 2}, "dissect"),
    "ops": ({"phase": Phase.OPS, "step": 1, "height": 4}, "dissect"),
    "element": ({"phase": Phase.ELEMENT, "step": 0, "op": 11, "height": 1}, "dissect"),
    "record": ({"phase": Phase.RECORD, "step": 1, "op": 5}, "revealRecord"),
    "leaf": ({"phase": Phase.LEAF, "step": 1, "op": 5, "index": 0}, "revealLeaf"),
    "terms": (
        {"phase": Phase.TERMS, "step": 1, "op": 7, "element": 0, "lo": 0, "hi": 300},
        "bisectTerms",
    ),
}


def opening_of(kind: str, g: GameState) -> OpponentMove:
    """What the liar (``value`` trace) opened round ``g.round`` of ``kind`` with."""
    t = traces()["value"]
    if kind in ("steps", "ops", "element"):
        tree = {"steps": t.trace_tree, "ops": t.step_tree(g.step)}.get(kind)
        tree = tree or t.output_tree(g.step, g.op)
        return OpponentMove(nodes=tuple(tree.children(g.height, g.index, min(BITS, g.height))))
    if kind == "record":
        return revealed("value", g.step, g.op)
    if kind == "leaf":
        return OpponentMove(leaf=t.leaf(g.step, g.op, g.index))
    points = term_points(g.lo, g.hi, BITS)
    return OpponentMove(values=tuple(int(v) for v in t.partials(g.step, g.op, g.element)[points]))


HALF = 300  # half of the 600 s each clock had when the round started (``game``)

# (name, round, party, moved, seconds since the round started, does it move, second)
TURNS = [
    ("the challenger opens odd rounds at once", 1, C, 0, 0, True, False),
    ("the defender waits for the challenger's opening", 1, D, 0, 0, False, None),
    ("the defender still waits a second before half its clock ran", 1, D, 0, HALF - 1, False, None),
    ("the defender opens itself once half its clock ran", 1, D, 0, HALF, True, False),
    ("the defender answers the challenger's opening", 1, D, 2, 0, True, True),
    ("the challenger does not move again after its opening", 1, C, 2, 0, False, None),
    ("the defender opens even rounds at once", 2, D, 0, 0, True, False),
    ("the challenger waits for the defender's opening", 2, C, 0, HALF - 1, False, None),
    ("the challenger opens itself once half its clock ran", 2, C, 0, HALF + 5, True, False),
    ("the challenger answers the defender's opening", 2, C, 1, 0, True, True),
    ("the opener answers the other's opening, made while it was silent", 2, D, 2, HALF, True, True),
]


@pytest.mark.parametrize("kind", list(ROUND_KINDS))
@pytest.mark.parametrize("turn", TURNS, ids=[t[0] for t in TURNS])
def test_one_party_opens_each_round_and_the_other_answers(
    kind: str, turn: tuple[str, int, Party, int, int, bool, bool | None]
) -> None:
    _, round_, me, moved, elapsed, moves, second = turn
    fields, function = ROUND_KINDS[kind]
    g = game(**fields, round=round_, moved=moved, since=(NOW - elapsed, NOW - elapsed))
    assert opener(g) == (C if round_ % 2 else D)
    opening = opening_of(kind, g) if moved else None
    move = decide(g, me, traces()["honest"], opening, now=NOW, bond=BOND, bits=BITS)
    if not moves:
        assert move is None
        return
    assert move is not None and move.function == function and move.value == BOND
    assert move.key == f"game/5/{function}/{round_}" + ("/second" if second else "")


@pytest.mark.parametrize("extension", [30, 600, 3 * 3_600])
@pytest.mark.parametrize("round_", [1, 2])
def test_a_party_waiting_on_a_silent_opener_opens_with_half_its_turn_left(
    extension: int, round_: int
) -> None:
    """A clock topped up to the extension at the round's start: the party that does not open
    the round waits half of it and opens before it runs out; the silent opener's clock runs
    out first after that, so ``timeout`` rules against the opener alone."""
    start = NOW - extension
    g = game(round=round_, left=(extension, extension), since=(start, start))
    waiter = opener(g).other
    at = opens_at(g, waiter)
    assert opens_at(g, opener(g)) == 0
    assert start < at <= start + extension - extension // 2
    assert decide(g, waiter, traces()["honest"], None, now=at - 1, bond=BOND, bits=BITS) is None
    opening = decide(g, waiter, traces()["honest"], None, now=at, bond=BOND, bits=BITS)
    assert opening is not None and opening.key == f"game/5/dissect/{round_}"
    assert not g.expired(waiter, at) and g.time_left(waiter, at) >= extension // 2
    # The opening landed: the waiter's clock stopped, the silent opener's ran out.
    after = dataclasses.replace(
        g,
        moved=1 << waiter,
        since=tuple(0 if p == waiter else start for p in (D, C)),  # type: ignore[arg-type]
        left=tuple(extension - (at - start) if p == waiter else extension for p in (D, C)),  # type: ignore[arg-type]
    )
    late = start + extension + 1
    end = decide(after, waiter, traces()["honest"], None, now=late, bond=BOND, bits=BITS)
    assert end is not None and end.function == "timeout"
    assert after.expired(opener(g), late) and not after.expired(waiter, late)


@pytest.mark.parametrize(
    ("phase", "fields"),
    [(Phase.PROGRAM, PROGRAM), (Phase.ONE_STEP, {**ONE_STEP, "values": ("honest", "value")})],
)
def test_a_deciding_proof_waits_for_no_opener(phase: Phase, fields: dict[str, Any]) -> None:
    """Outside rounds of two moves the party with the proof sends it whatever the round."""
    state = {**fields, "since": (NOW - 1, NOW - 1)}
    if "values" in state:
        state["values"] = tuple(value_of(v) for v in state["values"])
    for round_ in (1, 2):
        g = game(**state, round=round_)
        assert opens_at(g, D) == opens_at(g, C) == 0
        opponent = revealed("attribute", 1, 4) if phase == Phase.PROGRAM else None
        move = decide(g, D, traces()["honest"], opponent, now=NOW, bond=BOND, bits=BITS)
        assert move is not None and move.function in ("proveProgram", "oneStep")
