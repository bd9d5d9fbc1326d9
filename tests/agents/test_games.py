"""The games an agent plays, folded from game events: which ones it still has to play, how
they stand, and which task each disputes (pure, no chain)."""

from __future__ import annotations

from typing import Any

import pytest

from agents.chain.abi import DecodedLog
from agents.commitment import Root
from agents.dispute.game import Ruling
from agents.roles.games import fold_games, standing, task_of, to_play
from agents.roles.tasks import TaskView

ME = "0x00000000000000000000000000000000000000Aa"
THEM = "0x00000000000000000000000000000000000000B0"
POOL = "0x00000000000000000000000000000000000000C0"
PROGRAM = "0x" + "01" * 32
CHECKPOINTS = "0x" + "02" * 32


def log(name: str, block: int, index: int = 0, **args: Any) -> DecodedLog:
    return DecodedLog("PinpointGame", name, args, "0xgame", block, "0xb", index, "0xt")


def created(game_id: int, defender: str, challenger: str, block: int = 1) -> DecodedLog:
    spec = [PROGRAM, CHECKPOINTS, 3, "0x" + "03" * 32, "0x" + "04" * 32, "0x" + "05" * 32, "0x06"]
    return log(
        "GameCreated",
        block,
        gameId=game_id,
        defender=defender,
        challenger=challenger,
        creator=POOL,
        spec=spec,
    )


def resolved(game_id: int, ruling: Ruling, block: int = 9) -> DecodedLog:
    return log("GameResolved", block, gameId=game_id, ruling=int(ruling), reason=4, bonds=10)


def withdrawn(game_id: int, winner: str) -> DecodedLog:
    return log("BondsWithdrawn", 10, gameId=game_id, winner=winner, amount=10)


def posted(game_id: int) -> DecodedLog:
    return log("TranscriptPosted", 11, gameId=game_id, author=THEM, cid="QmT")


CASES: list[tuple[str, list[DecodedLog], dict[str, str], list[int]]] = [
    ("a running game it defends", [created(1, ME, THEM)], {}, [1]),
    ("a running game it challenges", [created(1, THEM, ME)], {}, [1]),
    ("someone else's game", [created(1, THEM, POOL)], {}, []),
    (
        "won, bonds not taken, no transcript",
        [created(1, ME, THEM), resolved(1, Ruling.DEFENDER_WINS)],
        {},
        [1],
    ),
    (
        "won, bonds taken and a transcript posted: done",
        [
            created(1, ME, THEM),
            resolved(1, Ruling.DEFENDER_WINS),
            withdrawn(1, ME.lower()),
            posted(1),
        ],
        {},
        [],
    ),
    (
        "won, transcript posted, withdrawal sent but not seen yet: done",
        [created(1, ME, THEM), resolved(1, Ruling.DEFENDER_WINS), posted(1)],
        {"game/1/withdraw": "sent"},
        [],
    ),
    (
        "lost, no transcript yet: posts one",
        [created(1, THEM, ME), resolved(1, Ruling.DEFENDER_WINS)],
        {},
        [1],
    ),
    (
        "lost, its transcript sent: done",
        [created(1, THEM, ME), resolved(1, Ruling.DEFENDER_WINS)],
        {"game/1/transcript": "mined"},
        [],
    ),
    (
        "both lost, transcript posted: nothing owed",
        [created(1, THEM, ME), resolved(1, Ruling.BOTH_LOSE), posted(1)],
        {},
        [],
    ),
    (
        "the opponent's bonds taken do not count as its own",
        [created(1, THEM, ME), resolved(1, Ruling.CHALLENGER_WINS), withdrawn(1, THEM), posted(1)],
        {},
        [1],
    ),
    (
        "several: oldest first, finished ones dropped",
        [
            created(2, ME, THEM, block=2),
            created(1, THEM, ME, block=1),
            created(3, THEM, POOL, block=3),
            resolved(1, Ruling.BOTH_LOSE),
            posted(1),
        ],
        {},
        [2],
    ),
    ("events of a game it never saw created are ignored", [resolved(7, Ruling.BOTH_LOSE)], {}, []),
]


@pytest.mark.parametrize(
    ("name", "events", "journal", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_to_play(
    name: str, events: list[DecodedLog], journal: dict[str, str], expected: list[int]
) -> None:
    assert to_play(fold_games(events), ME, journal) == expected


def test_standing_counts_every_game_of_the_account() -> None:
    games = fold_games(
        [
            created(1, ME, THEM),
            created(2, ME, THEM),
            resolved(2, Ruling.DEFENDER_WINS),
            created(3, THEM, ME),
            resolved(3, Ruling.DEFENDER_WINS),
            created(4, THEM, ME),
            resolved(4, Ruling.BOTH_LOSE),
            created(5, THEM, POOL),
        ]
    )
    assert standing(games, ME) == {"playing": 1, "won": 1, "lost": 1, "both_lost": 1}
    assert standing(games, POOL) == {"playing": 1, "won": 0, "lost": 0, "both_lost": 0}


def test_the_fold_reads_the_spec_and_the_ruling() -> None:
    (record,) = fold_games([created(4, ME, THEM), resolved(4, Ruling.CHALLENGER_WINS)]).values()
    assert (record.segment, record.program, record.checkpoints) == (
        3,
        Root.parse(PROGRAM),
        Root.parse(CHECKPOINTS),
    )
    assert record.ruling == "CHALLENGER_WINS" and record.winner() == THEM
    assert record.party(ME.lower()) == "defender" and record.party(POOL) is None


def test_a_game_is_matched_to_its_task_by_program_and_checkpoints() -> None:
    (record,) = fold_games([created(1, ME, THEM)]).values()

    def view(task_id: int, checkpoints: str, program: str) -> TaskView:
        return TaskView(
            task_id, checkpoint_root=Root.parse(checkpoints), program_root=Root.parse(program)
        )

    other = "0x" + "0f" * 32
    tasks = {
        1: view(1, other, PROGRAM),
        2: view(2, CHECKPOINTS, other),
        3: view(3, CHECKPOINTS, PROGRAM),
    }
    found = task_of(record, tasks)
    assert found is not None and found.task_id == 3
    assert task_of(record, {1: tasks[1], 2: tasks[2]}) is None
