"""The games an agent plays, folded from the pinpoint game contract's events: pure.

Every role plays the games it is a party of the same way (docs/operators.md, "Games"):
a solver defends its proof and challenges a Fail it disproves, a verifier defends its
reports, a whistleblower plays the games its challenges open. ``fold_games`` turns the
game contract's events into one ``GameRecord`` per game; ``to_play`` says which of them
this account still has something to do in (a move while the game runs; after it, the
winner's bonds and a transcript, once); ``standing`` counts them for the metrics.
The runtime (``agents.roles.gameplay``) steps each game ``to_play`` names through the
journaled ``GamePlayer``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agents.chain.abi import DecodedLog
from agents.commitment import Root
from agents.dispute.game import Ruling
from agents.roles.tasks import TaskView

# GameSpec's fields, in order (contracts/interfaces/IPinpointGame.sol).
SPEC_FIELDS = (
    "program",
    "checkpoints",
    "segment",
    "startState",
    "claimedState",
    "defenderTrace",
    "challengerTrace",
)
STANDINGS = ("playing", "won", "lost", "both_lost")


@dataclass
class GameRecord:
    """One game as its events tell it."""

    game_id: int
    defender: str
    challenger: str
    creator: str
    program: Root
    checkpoints: Root
    segment: int
    block: int
    ruling: str = "None"  # a Ruling name once resolved
    reason: str = ""
    withdrawn_by: set[str] = field(default_factory=set)
    transcripts: list[str] = field(default_factory=list)

    @property
    def resolved(self) -> bool:
        return self.ruling != "None"

    def party(self, account: str) -> str | None:
        """``defender``, ``challenger`` or ``None`` for ``account``."""
        if account.lower() == self.defender.lower():
            return "defender"
        if account.lower() == self.challenger.lower():
            return "challenger"
        return None

    def winner(self) -> str | None:
        if self.ruling == Ruling.DEFENDER_WINS.name:
            return self.defender
        if self.ruling == Ruling.CHALLENGER_WINS.name:
            return self.challenger
        return None

    def standing(self, account: str) -> str | None:
        """How the game stands for ``account``: one of STANDINGS, or ``None`` if not a party."""
        if self.party(account) is None:
            return None
        if not self.resolved:
            return "playing"
        winner = self.winner()
        if winner is None:
            return "both_lost"
        return "won" if winner.lower() == account.lower() else "lost"


def _spec(value: object) -> dict[str, object]:
    if isinstance(value, Mapping):
        return dict(value)
    assert isinstance(value, list | tuple)
    return dict(zip(SPEC_FIELDS, value, strict=True))


def fold_games(events: Iterable[DecodedLog]) -> dict[int, GameRecord]:
    """Every game the events create, with what later events say of it."""
    games: dict[int, GameRecord] = {}
    for e in sorted(events, key=lambda e: (e.block_number, e.log_index)):
        a = e.args
        if "gameId" not in a:
            continue
        game_id = int(a["gameId"])
        if e.name == "GameCreated":
            spec = _spec(a["spec"])
            games[game_id] = GameRecord(
                game_id=game_id,
                defender=str(a["defender"]),
                challenger=str(a["challenger"]),
                creator=str(a["creator"]),
                program=Root.parse(str(spec["program"])),
                checkpoints=Root.parse(str(spec["checkpoints"])),
                segment=int(str(spec["segment"])),
                block=e.block_number,
            )
            continue
        record = games.get(game_id)
        if record is None:
            continue
        if e.name == "GameResolved":
            record.ruling = Ruling(int(a["ruling"])).name
            record.reason = str(a["reason"])
        elif e.name == "BondsWithdrawn":
            record.withdrawn_by.add(str(a["winner"]).lower())
        elif e.name == "TranscriptPosted":
            record.transcripts.append(str(a["cid"]))
    return games


def to_play(games: Mapping[int, GameRecord], me: str, journal: Mapping[str, str]) -> list[int]:
    """The games in which ``me`` has something left to do, oldest first: a running game it
    is a party of; a game it won whose bonds it has not taken; a game of its without a
    transcript. ``journal`` (intent key -> status) drops what it sent already: a withdrawal
    or a transcript is sent once (``game/<id>/withdraw``, ``game/<id>/transcript``)."""
    out = []
    for game_id, record in sorted(games.items()):
        if record.party(me) is None:
            continue
        if not record.resolved:
            out.append(game_id)
            continue
        winner = record.winner()
        owed = winner is not None and winner.lower() == me.lower()
        take = owed and me.lower() not in record.withdrawn_by
        take = take and f"game/{game_id}/withdraw" not in journal
        post = not record.transcripts and f"game/{game_id}/transcript" not in journal
        if take or post:
            out.append(game_id)
    return out


def standing(games: Mapping[int, GameRecord], me: str) -> dict[str, int]:
    """How many of ``me``'s games stand how (every name of STANDINGS, zeros included)."""
    counts = dict.fromkeys(STANDINGS, 0)
    for record in games.values():
        state = record.standing(me)
        if state is not None:
            counts[state] += 1
    return counts


def task_of(record: GameRecord, tasks: Mapping[int, TaskView]) -> TaskView | None:
    """The task a game disputes: the one whose committed checkpoint root and program root
    are the game's (``None`` when no task this agent follows has them)."""
    for view in tasks.values():
        if view.checkpoint_root == record.checkpoints and view.program_root == record.program:
            return view
    return None
