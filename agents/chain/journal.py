"""The transaction journal: every transaction an agent intends, signs, sends and sees mined.

The order of writes is what makes agents crash-safe: an intent is recorded,
then signed, and the signed raw transaction with its nonce and hash is
committed to the journal *before* it is broadcast. After a crash, the journal
says exactly which transactions may be in flight; they are re-broadcast byte
for byte (same hash, so a second broadcast is idempotent) or found mined.
Each intent has a unique key, so one decision can never yield two transactions.

A fee bump (``agents.chain.executor.FeePolicy.bump_after``) re-signs a row's intent at the
row's nonce with higher fees: the transaction it replaces moves to ``tx_replaced`` and the
replacement becomes the row's, in one commit, before the replacement is broadcast. One
nonce is spent once, so at most one of a row's transactions is ever mined; the row follows
all of them and takes the hash of the one that is.

States of a row:

``signed``   raw transaction persisted; broadcast not (yet) acknowledged
``sent``     the node accepted it; waiting for a receipt
``mined``    included, succeeded
``reverted`` included, failed (its nonce is spent)
``rejected`` never reached the chain (gas estimation reverted, node refused it); no nonce spent;
             the same intent may be tried again after ``retry_after``
``dropped``  its nonce was taken by another transaction of the same key (not one of ours): the
             account's mined nonce passed it and no receipt of it showed for a while after
             (``agents.chain.executor.DropPolicy``); its receipt is still looked for a while
             after that (a node's word on the nonce is not final either), and a row whose
             transaction shows mined after all takes that outcome

When the account's nonce was first seen past a row's with no receipt of it, and when the row
was judged dropped, are kept in ``tx_unaccounted``, so that a restart neither starts the drop
grace again nor forgets to look for a dropped row's receipt. When a node first refused a row's
transaction while the row kept its nonce, and the node's words when it last did, are kept in
``tx_refused``, so that a restart neither starts the wait before that transaction is outbid
again nor outbids one refused for a reason no higher fee cures.

Every time the executor compares later (``retry_after``, ``sent_at``, ``replaced_at``,
``tx_unaccounted``, ``tx_refused``) is stamped by the executor's clock, the wall clock in
seconds since the epoch: an agent restarted, even on another boot, compares it with the same
clock. ``created_at`` and ``updated_at`` are the wall clock, for people reading the table.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from agents.node.database import transaction

IN_FLIGHT = ("signed", "sent")
FINAL = ("mined", "reverted", "dropped")
# Statuses whose row tells why the transaction failed (``Failure``).
FAILED = ("rejected", "reverted", "dropped")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tx_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    intent TEXT NOT NULL UNIQUE,
    task_id INTEGER,
    sender TEXT NOT NULL,
    target TEXT NOT NULL,
    description TEXT NOT NULL,
    data BLOB NOT NULL,
    value TEXT NOT NULL,
    status TEXT NOT NULL,
    nonce INTEGER,
    raw_tx BLOB,
    tx_hash TEXT,
    block_number INTEGER,
    gas_used INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_after REAL NOT NULL DEFAULT 0,
    error TEXT,
    trigger_block INTEGER,
    created_at REAL NOT NULL,
    sent_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tx_journal_status ON tx_journal (status);
CREATE TABLE IF NOT EXISTS tx_nonces (sender TEXT PRIMARY KEY, next_nonce INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tx_replaced (
    intent TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    raw_tx BLOB NOT NULL,
    replaced_at REAL NOT NULL,
    PRIMARY KEY (intent, tx_hash)
);
CREATE TABLE IF NOT EXISTS tx_unaccounted (
    intent TEXT PRIMARY KEY,
    since REAL NOT NULL,
    dropped_at REAL
);
CREATE TABLE IF NOT EXISTS tx_refused (
    intent TEXT PRIMARY KEY,
    since REAL NOT NULL,
    words TEXT NOT NULL
);
"""


class Replaced(NamedTuple):
    """An earlier transaction of a row, at the row's nonce, that a fee bump replaced: it may
    still be mined instead of the row's own (one nonce is spent once)."""

    tx_hash: str
    raw_tx: bytes
    replaced_at: float


class Refusal(NamedTuple):
    """A node's refusal of a row's transaction while the row kept its nonce: when the first
    one came (the executor's clock) and the node's words the last time."""

    since: float
    words: str


class Failure(NamedTuple):
    """Why a journaled transaction failed, the block of the event its decision answered
    (``Intent.trigger_block``), and how many times its intent was tried (each rejection at
    estimation counts one)."""

    error: str
    trigger_block: int | None
    attempts: int = 1


@dataclass(frozen=True)
class JournalEntry:
    """One row of the journal."""

    id: int
    intent: str
    task_id: int | None
    sender: str
    target: str
    description: str
    data: bytes
    value: int
    status: str
    nonce: int | None
    raw_tx: bytes | None
    tx_hash: str | None
    block_number: int | None
    gas_used: int | None
    attempts: int
    retry_after: float
    error: str | None
    trigger_block: int | None
    created_at: float
    sent_at: float | None

    @property
    def in_flight(self) -> bool:
        return self.status in IN_FLIGHT

    @property
    def final(self) -> bool:
        return self.status in FINAL


def _entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        intent=row["intent"],
        task_id=row["task_id"],
        sender=row["sender"],
        target=row["target"],
        description=row["description"],
        data=bytes(row["data"]),
        value=int(row["value"]),
        status=row["status"],
        nonce=row["nonce"],
        raw_tx=bytes(row["raw_tx"]) if row["raw_tx"] is not None else None,
        tx_hash=row["tx_hash"],
        block_number=row["block_number"],
        gas_used=row["gas_used"],
        attempts=row["attempts"],
        retry_after=row["retry_after"],
        error=row["error"],
        trigger_block=row["trigger_block"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
    )


class TransactionJournal:
    """The journal table of one agent database (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(SCHEMA)

    def get(self, intent: str) -> JournalEntry | None:
        row = self.conn.execute("SELECT * FROM tx_journal WHERE intent = ?", (intent,)).fetchone()
        return _entry(row) if row is not None else None

    def by_status(self, statuses: Iterable[str]) -> list[JournalEntry]:
        wanted = list(statuses)
        marks = ",".join("?" for _ in wanted)
        rows = self.conn.execute(
            f"SELECT * FROM tx_journal WHERE status IN ({marks}) ORDER BY nonce, id", wanted
        ).fetchall()
        return [_entry(r) for r in rows]

    def recent_final(self, from_block: int) -> list[JournalEntry]:
        """Rows mined (or reverted) in block ``from_block`` or later."""
        rows = self.conn.execute(
            "SELECT * FROM tx_journal WHERE status IN ('mined', 'reverted') AND block_number >= ?",
            (from_block,),
        ).fetchall()
        return [_entry(r) for r in rows]

    def all(self) -> list[JournalEntry]:
        return [_entry(r) for r in self.conn.execute("SELECT * FROM tx_journal ORDER BY id")]

    def statuses(self) -> dict[str, str]:
        """Intent key → status, for decision functions."""
        return {
            r["intent"]: r["status"]
            for r in self.conn.execute("SELECT intent, status FROM tx_journal")
        }

    def failures(self) -> dict[str, Failure]:
        """Intent key → why its transaction failed (reverted on chain or at estimation,
        refused, its nonce taken) and the block of the event it answered, for decision
        functions that judge whether to try again."""
        return self.outcomes()[1]

    def outcomes(self) -> tuple[dict[str, str], dict[str, Failure]]:
        """``statuses()`` and ``failures()`` from one read of the table: what a decision
        reads of the journal at every tick."""
        statuses: dict[str, str] = {}
        failures: dict[str, Failure] = {}
        for r in self.conn.execute(
            "SELECT intent, status, error, trigger_block, attempts FROM tx_journal"
        ):
            statuses[r["intent"]] = r["status"]
            if r["status"] in FAILED and r["error"] is not None:
                failures[r["intent"]] = Failure(r["error"], r["trigger_block"], r["attempts"])
        return statuses, failures

    def record_rejection(
        self,
        *,
        intent: str,
        task_id: int | None,
        sender: str,
        target: str,
        description: str,
        data: bytes,
        value: int,
        error: str,
        retry_delay: float,
        at: float,
        trigger_block: int | None = None,
        release: int | None = None,
    ) -> JournalEntry:
        """Record (or update) an intent that did not reach the chain at ``at`` (the executor's
        clock); it may be tried again from ``at + retry_delay`` (``retry_after``). No nonce is
        spent.

        ``release``: the nonce its refused transaction held, given back (``release_nonce``) in
        the same commit, so that no kill leaves a row still signed with its nonce given back
        (broadcast again at the restart while the next intent takes that nonce too)."""
        now = time.time()
        with transaction(self.conn):
            if release is not None:
                self.release_nonce(sender, release)
            self.conn.execute(
                """INSERT INTO tx_journal (intent, task_id, sender, target, description, data,
                       value, status, attempts, retry_after, error, trigger_block, created_at,
                       updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 'rejected', 1, ?, ?, ?, ?, ?)
                   ON CONFLICT (intent) DO UPDATE SET status = 'rejected',
                       attempts = attempts + 1, retry_after = excluded.retry_after,
                       error = excluded.error, nonce = NULL, raw_tx = NULL, tx_hash = NULL,
                       sent_at = NULL, trigger_block = excluded.trigger_block,
                       updated_at = excluded.updated_at""",
                (
                    intent,
                    task_id,
                    sender,
                    target,
                    description,
                    data,
                    str(value),
                    at + retry_delay,
                    error,
                    trigger_block,
                    now,
                    now,
                ),
            )
            self.clear_unaccounted(intent)
            self.clear_refused(intent)
        entry = self.get(intent)
        assert entry is not None
        return entry

    def record_signed(
        self,
        *,
        intent: str,
        task_id: int | None,
        sender: str,
        target: str,
        description: str,
        data: bytes,
        value: int,
        nonce: int,
        raw_tx: bytes,
        tx_hash: str,
        trigger_block: int | None = None,
    ) -> JournalEntry:
        """Persist a signed transaction and advance the sender's nonce, in one commit.

        Must be called in the same write transaction (``agents.node.database.transaction``)
        as the :meth:`next_nonce` that chose ``nonce``, as the executor does, so two
        transactions never take one nonce; nothing is broadcast before this returns.
        """
        now = time.time()
        self.conn.execute(
            """INSERT INTO tx_journal (intent, task_id, sender, target, description, data, value,
                   status, nonce, raw_tx, tx_hash, attempts, trigger_block, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'signed', ?, ?, ?, 1, ?, ?, ?)
               ON CONFLICT (intent) DO UPDATE SET status = 'signed', nonce = excluded.nonce,
                   raw_tx = excluded.raw_tx, tx_hash = excluded.tx_hash, error = NULL,
                   sent_at = NULL, attempts = attempts + 1,
                   trigger_block = excluded.trigger_block, updated_at = excluded.updated_at""",
            (
                intent,
                task_id,
                sender,
                target,
                description,
                data,
                str(value),
                nonce,
                raw_tx,
                tx_hash,
                trigger_block,
                now,
                now,
            ),
        )
        self.conn.execute(
            """INSERT INTO tx_nonces (sender, next_nonce) VALUES (?, ?)
               ON CONFLICT (sender) DO UPDATE SET next_nonce = excluded.next_nonce""",
            (sender, nonce + 1),
        )
        self.clear_unaccounted(intent)
        self.clear_refused(intent)
        entry = self.get(intent)
        assert entry is not None
        return entry

    def record_replacement(
        self, intent: str, *, raw_tx: bytes, tx_hash: str, at: float
    ) -> JournalEntry:
        """Make the signed ``raw_tx`` (the row's intent at the row's nonce, higher fees) the
        row's transaction, ``signed`` (to be broadcast), and keep the one it replaces among
        the row's earlier ones (``replaced``), in one commit: nothing is broadcast before this
        returns, and a restart broadcasts these very bytes."""
        with transaction(self.conn):
            row = self.get(intent)
            assert row is not None and row.raw_tx is not None and row.tx_hash is not None
            self.conn.execute(
                "INSERT OR IGNORE INTO tx_replaced (intent, tx_hash, raw_tx, replaced_at) "
                "VALUES (?, ?, ?, ?)",
                (intent, row.tx_hash, row.raw_tx, at),
            )
            self.conn.execute(
                "UPDATE tx_journal SET status = 'signed', raw_tx = ?, tx_hash = ?, "
                "updated_at = ? WHERE intent = ?",
                (raw_tx, tx_hash, time.time(), intent),
            )
        entry = self.get(intent)
        assert entry is not None
        return entry

    def replaced(self, intent: str) -> list[Replaced]:
        """The earlier transactions of ``intent``'s row that fee bumps replaced, oldest first."""
        rows = self.conn.execute(
            "SELECT tx_hash, raw_tx, replaced_at FROM tx_replaced WHERE intent = ? "
            "ORDER BY replaced_at, rowid",
            (intent,),
        ).fetchall()
        return [Replaced(r["tx_hash"], bytes(r["raw_tx"]), r["replaced_at"]) for r in rows]

    def adopt(self, intent: str, tx_hash: str) -> JournalEntry:
        """Make the earlier transaction ``tx_hash`` (one of ``replaced``: it was mined, not
        its replacement) the row's again, and keep the row's among the earlier ones."""
        with transaction(self.conn):
            row = self.get(intent)
            assert row is not None and row.raw_tx is not None and row.tx_hash is not None
            earlier = self.conn.execute(
                "SELECT raw_tx, replaced_at FROM tx_replaced WHERE intent = ? AND tx_hash = ?",
                (intent, tx_hash),
            ).fetchone()
            assert earlier is not None, f"{tx_hash} is not a transaction of {intent}"
            self.conn.execute(
                "DELETE FROM tx_replaced WHERE intent = ? AND tx_hash = ?", (intent, tx_hash)
            )
            self.conn.execute(
                "INSERT OR IGNORE INTO tx_replaced (intent, tx_hash, raw_tx, replaced_at) "
                "VALUES (?, ?, ?, ?)",
                (intent, row.tx_hash, row.raw_tx, earlier["replaced_at"]),
            )
            self.conn.execute(
                "UPDATE tx_journal SET raw_tx = ?, tx_hash = ?, updated_at = ? WHERE intent = ?",
                (bytes(earlier["raw_tx"]), tx_hash, time.time(), intent),
            )
        entry = self.get(intent)
        assert entry is not None
        return entry

    def unaccounted(self, intent: str, now: float) -> float:
        """When the account's nonce was first seen past ``intent``'s with no receipt of its
        transaction: ``now`` if not seen so before (recorded, its own commit)."""
        row = self.conn.execute(
            "SELECT since FROM tx_unaccounted WHERE intent = ?", (intent,)
        ).fetchone()
        if row is not None:
            return float(row["since"])
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO tx_unaccounted (intent, since) VALUES (?, ?)", (intent, now)
            )
        return now

    def clear_unaccounted(self, intent: str) -> None:
        """Forget when ``intent``'s nonce was seen passed (and when it was dropped); joins the
        caller's commit where there is one."""
        if self.conn.in_transaction:
            self.conn.execute("DELETE FROM tx_unaccounted WHERE intent = ?", (intent,))
            return
        with transaction(self.conn):
            self.conn.execute("DELETE FROM tx_unaccounted WHERE intent = ?", (intent,))

    def record_dropped(self, intent: str, error: str, at: float) -> JournalEntry:
        """Judge ``intent``'s row ``dropped`` at ``at`` (the executor's clock), in one commit
        with the time its receipt is looked for from (``dropped_since``)."""
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE tx_journal SET status = 'dropped', error = ?, updated_at = ? "
                "WHERE intent = ?",
                (error, time.time(), intent),
            )
            self.conn.execute(
                """INSERT INTO tx_unaccounted (intent, since, dropped_at) VALUES (?, ?, ?)
                   ON CONFLICT (intent) DO UPDATE SET dropped_at = excluded.dropped_at""",
                (intent, at, at),
            )
            self.clear_refused(intent)
        entry = self.get(intent)
        assert entry is not None
        return entry

    def record_refusal(self, intent: str, at: float, words: str) -> bool:
        """Keep that a node refused ``intent``'s transaction in ``words`` while the row kept its
        nonce, at ``at`` (the executor's clock); whether it is the first such refusal since the
        row was signed (its time kept, its own commit)."""
        with transaction(self.conn):
            first = (
                self.conn.execute("SELECT 1 FROM tx_refused WHERE intent = ?", (intent,)).fetchone()
                is None
            )
            self.conn.execute(
                """INSERT INTO tx_refused (intent, since, words) VALUES (?, ?, ?)
                   ON CONFLICT (intent) DO UPDATE SET words = excluded.words""",
                (intent, at, words),
            )
        return first

    def refusal(self, intent: str) -> Refusal | None:
        """The refusals kept of ``intent``'s transaction (``record_refusal``); ``None``: none."""
        row = self.conn.execute(
            "SELECT since, words FROM tx_refused WHERE intent = ?", (intent,)
        ).fetchone()
        return Refusal(float(row["since"]), row["words"]) if row is not None else None

    def clear_refused(self, intent: str) -> None:
        """Forget the refusals of ``intent``'s transaction; joins the caller's commit where
        there is one."""
        if self.conn.in_transaction:
            self.conn.execute("DELETE FROM tx_refused WHERE intent = ?", (intent,))
            return
        with transaction(self.conn):
            self.conn.execute("DELETE FROM tx_refused WHERE intent = ?", (intent,))

    def dropped_since(self, at: float) -> list[JournalEntry]:
        """Rows judged ``dropped`` at ``at`` or later (the executor's clock)."""
        rows = self.conn.execute(
            "SELECT j.* FROM tx_journal j JOIN tx_unaccounted u ON u.intent = j.intent "
            "WHERE j.status = 'dropped' AND u.dropped_at >= ? ORDER BY j.nonce, j.id",
            (at,),
        ).fetchall()
        return [_entry(r) for r in rows]

    def next_nonce(self, sender: str) -> int:
        """The next nonce this journal would give ``sender`` (0 if it never sent)."""
        row = self.conn.execute(
            "SELECT next_nonce FROM tx_nonces WHERE sender = ?", (sender,)
        ).fetchone()
        return int(row["next_nonce"]) if row is not None else 0

    def release_nonce(self, sender: str, nonce: int) -> None:
        """Give back ``nonce`` if it is the last one handed out (its transaction never got in)."""
        self.conn.execute(
            "UPDATE tx_nonces SET next_nonce = ? WHERE sender = ? AND next_nonce = ?",
            (nonce, sender, nonce + 1),
        )

    def update(self, intent: str, **fields: Any) -> JournalEntry:
        """Set ``fields`` on the row of ``intent`` (its own commit)."""
        fields["updated_at"] = time.time()
        names = ", ".join(f"{k} = ?" for k in fields)
        with transaction(self.conn):
            self.conn.execute(
                f"UPDATE tx_journal SET {names} WHERE intent = ?", (*fields.values(), intent)
            )
        entry = self.get(intent)
        assert entry is not None
        return entry

    def count(self, status: str | None = None) -> int:
        if status is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM tx_journal").fetchone()[0])
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM tx_journal WHERE status = ?", (status,)
            ).fetchone()[0]
        )
