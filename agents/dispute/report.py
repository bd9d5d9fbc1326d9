"""A game as people read it: parties, clocks, bonds, each level's interval, the moves, the end.

``game_report(log, now)`` folds a game's events (``driver.GameLog``) into plain data; the
command line prints it (``veritrain dispute show``) or dumps it as JSON. Everything comes
from the chain: the contract's view and its events.
"""

from __future__ import annotations

from typing import Any

from agents.dispute.driver import GameLog
from agents.dispute.game import GameState, Party, Phase, Reason, Ruling
from agents.exact.trace import Op

LEVELS = {
    Phase.STEPS.value: "steps",
    Phase.OPS.value: "ops",
    Phase.RECORD.value: "record",
    Phase.PROGRAM.value: "program",
    Phase.INPUT.value: "input",
    Phase.TENSOR.value: "tensor",
    Phase.ELEMENT.value: "element",
    Phase.LEAF.value: "leaf",
    Phase.TERMS.value: "terms",
    Phase.ONE_STEP.value: "one step",
}


def _op_name(code: int) -> str:
    try:
        return Op(code).name.lower()
    except ValueError:
        return f"op 0x{code:02x}"


def _bits(value: int) -> str:
    return f"0x{int(value):08x}"


def _levels(state: GameState, events: list[Any]) -> list[dict[str, Any]]:
    """The interval the chain kept at each level, in the order the game went through them."""
    out: list[dict[str, Any]] = []
    step = op = None
    for e in events:
        a = e.args
        if e.name == "LevelEntered":
            phase = Phase(int(a["phase"]))
            at, height = int(a["at"]), int(a["height"])
            if phase == Phase.STEPS:
                out.append(
                    {"level": "steps", "detail": f"{at} steps and the distance, {height} levels"}
                )
            elif phase == Phase.OPS:
                step = at
                what = "the distance computation" if at == state.step_count else f"step {at}"
                out.append({"level": "ops", "detail": f"{what}, {height} levels of records"})
            elif phase == Phase.RECORD:
                op = at
                out.append({"level": "record", "detail": f"op {at} of step {step}"})
            elif phase == Phase.ELEMENT:
                out.append({"level": "element", "detail": f"{at} leaves, {height} levels"})
            elif phase in (Phase.PROGRAM, Phase.INPUT, Phase.TENSOR):
                out.append({"level": LEVELS[phase.value], "detail": f"op {op} of step {step}"})
            elif phase == Phase.LEAF:
                out.append({"level": "leaf", "detail": f"leaf {at}"})
        elif e.name == "Narrowed":
            phase = Phase(int(a["phase"]))
            index, height = int(a["index"]), int(a["height"])
            span = 1 << height
            out.append(
                {
                    "level": LEVELS[phase.value],
                    "detail": f"nodes {index * span} … {(index + 1) * span - 1} differ first",
                }
            )
        elif e.name == "ElementFound":
            out.append(
                {
                    "level": "element",
                    "detail": (
                        f"element {a['element']}: defender {_bits(a['defenderValue'])}, "
                        f"challenger {_bits(a['challengerValue'])}, {a['terms']} terms"
                    ),
                }
            )
        elif e.name == "TermsNarrowed":
            out.append(
                {
                    "level": "terms",
                    "detail": (
                        f"P({a['lo']}) = {_bits(a['accLo'])} agreed; P({a['hi']}): defender "
                        f"{_bits(a['defenderValue'])}, challenger {_bits(a['challengerValue'])}"
                    ),
                }
            )
    return out


def _move(e: Any) -> dict[str, Any]:
    a = e.args
    party = Party(int(a["party"])).name.lower() if "party" in a else None
    detail: str
    if e.name == "Dissected":
        detail = f"{len(a['nodes'])} nodes below node {a['index']} ({LEVELS[int(a['phase'])]})"
    elif e.name == "RecordRevealed":
        record = str(a["record"])
        code = int(record[2:6], 16) if len(record) >= 6 else 0
        detail = f"record of {_op_name(code)}, output merkle {str(a['merkle'])[:18]}…"
    elif e.name == "LeafRevealed":
        detail = f"leaf {a['index']}"
    elif e.name == "TermsPosted":
        detail = f"{len(a['values'])} partial results in ({a['lo']}, {a['hi']})"
    elif e.name == "OneStepEvaluated":
        detail = f"one step by {a['prover']}: {_bits(a['value'])}" + (
            "" if a["defined"] else " (undefined)"
        )
    elif e.name == "SourceProved":
        accused = Party(int(a["accused"])).name.lower()
        detail = f"source of input {a['slot']} proved by {a['prover']}: {accused} is wrong"
    elif e.name == "ProgramProved":
        accused = Party(int(a["accused"])).name.lower()
        detail = f"program entry proved by {a['prover']}: {accused} is wrong"
    elif e.name == "GameResolved":
        ruling, reason = Ruling(int(a["ruling"])).name, Reason(int(a["reason"])).name
        detail = f"{ruling} ({reason}), bonds {a['bonds']} wei"
    elif e.name == "TranscriptPosted":
        detail = f"transcript {a['cid']} by {a['author']}"
    else:
        detail = ", ".join(f"{k}={v}" for k, v in a.items() if k != "gameId")
    return {
        "block": e.block_number,
        "tx": e.tx_hash,
        "event": e.name,
        "party": party,
        "detail": detail,
    }


def game_report(log: GameLog, now: int, bond: int) -> dict[str, Any]:
    """Plain data about one game (see the module docstring); ``now`` prices the clocks."""
    state = log.state
    parties = {}
    for party, account in ((Party.DEFENDER, state.defender), (Party.CHALLENGER, state.challenger)):
        parties[party.name.lower()] = {
            "account": account,
            "trace": "0x" + state.traces[party].hex(),
            "owes_move": state.since[party] != 0,
            "time_left": state.time_left(party, now),
            "bonds": state.bonds[party],
        }
    created = next((e for e in log.events if e.name == "GameCreated"), None)
    transcripts = [e.args["cid"] for e in log.events if e.name == "TranscriptPosted"]
    return {
        "game": state.game_id,
        "phase": state.phase.name,
        "round": state.round,
        "ruling": state.ruling.name,
        "reason": state.reason.name,
        "paid": state.paid,
        "bond": bond,
        "creator": state.creator,
        "claim": "0x" + state.claim.hex(),
        "program": "0x" + state.program.hex(),
        "segment": created.args["spec"][2] if created is not None else None,
        "steps": [state.first_step, state.first_step + state.step_count - 1],
        "start_state": "0x" + state.start_state.hex(),
        "claimed_state": "0x" + state.claimed_state.hex(),
        "parties": parties,
        "levels": _levels(state, log.events),
        "moves": [_move(e) for e in log.events],
        "transcripts": transcripts,
    }
