"""The event source: contract logs over confirmed block ranges, with a persisted cursor.

Logs are read with ``eth_getLogs`` only (no server-side filters, which a node
forgets on restart). Each poll reads from ``cursor - reorg_window`` up to
``head - confirmations`` and replaces the stored events of that range in one
commit, so an event that vanished in a reorg disappears from the agent's view
and a re-mined one appears; events are told apart by block hash and log index.
A reorg deeper than ``reorg_window`` blocks is not detected: choose the window
(and ``confirmations``) for the chain at hand.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agents.chain.abi import ContractInterface, DecodedLog
from agents.chain.client import ChainClient
from agents.chain.errors import MalformedAnswerError, RpcError
from agents.chain.rpc import MALFORMED
from agents.node.database import transaction

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS event_cursor (source TEXT PRIMARY KEY, next_block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chain_events (
    source TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    address TEXT NOT NULL,
    contract TEXT NOT NULL,
    name TEXT NOT NULL,
    subject INTEGER,
    args TEXT NOT NULL,
    PRIMARY KEY (source, block_number, log_index)
);
CREATE INDEX IF NOT EXISTS chain_events_subject ON chain_events (source, subject, block_number);
"""


@dataclass(frozen=True)
class PollResult:
    """What one poll found: events new to the agent, events a reorg removed, and the range read."""

    added: list[DecodedLog]
    removed: list[DecodedLog]
    from_block: int
    to_block: int  # last block read (inclusive); from_block - 1 when nothing was read
    head: int


class EventSource:
    """Reads and stores the logs of a fixed set of contracts (see the module docstring).

    ``subject`` maps an event to the integer it is about (a task id, say) so
    that :meth:`events_of` can find a subject's events fast; it may return None.
    """

    def __init__(
        self,
        client: ChainClient,
        contracts: Sequence[ContractInterface],
        conn: sqlite3.Connection,
        *,
        start_block: int,
        confirmations: int = 0,
        reorg_window: int = 12,
        batch_blocks: int = 2000,
        source: str = "deployment",
        subject: Callable[[DecodedLog], int | None] = lambda e: None,
    ) -> None:
        self.client = client
        self.contracts = list(contracts)
        self.conn = conn
        self.start_block = start_block
        self.confirmations = confirmations
        self.reorg_window = reorg_window
        self.batch_blocks = max(1, batch_blocks)
        self.source = source
        self.subject = subject
        conn.executescript(SCHEMA)

    @property
    def cursor(self) -> int:
        """The first block not yet read."""
        row = self.conn.execute(
            "SELECT next_block FROM event_cursor WHERE source = ?", (self.source,)
        ).fetchone()
        return int(row["next_block"]) if row is not None else self.start_block

    def poll(self, head: int | None = None) -> PollResult:
        """Read the confirmed blocks since the cursor (and the reorg window before it), up to
        ``head`` (default: the node's head, asked for)."""
        if head is None:
            head = self.client.block_number()
        target = head - self.confirmations
        cursor = self.cursor
        from_block = max(self.start_block, cursor - self.reorg_window)
        if target < from_block or target < cursor - 1:
            return PollResult([], [], from_block, from_block - 1, head)
        fetched = read_events(
            self.client, self.contracts, from_block, target, batch_blocks=self.batch_blocks
        )
        with transaction(self.conn):
            old = {
                (r["block_hash"], r["log_index"]): _row_log(r)
                for r in self.conn.execute(
                    "SELECT * FROM chain_events WHERE source = ? AND block_number >= ?",
                    (self.source, from_block),
                )
            }
            self.conn.execute(
                "DELETE FROM chain_events WHERE source = ? AND block_number >= ?",
                (self.source, from_block),
            )
            self.conn.executemany(
                """INSERT INTO chain_events (source, block_number, log_index, block_hash, tx_hash,
                       address, contract, name, subject, args) VALUES (?,?,?,?,?,?,?,?,?,?)""",
                [
                    (
                        self.source,
                        e.block_number,
                        e.log_index,
                        e.block_hash,
                        e.tx_hash,
                        e.address,
                        e.contract,
                        e.name,
                        self.subject(e),
                        json.dumps(e.args),
                    )
                    for e in fetched
                ],
            )
            self.conn.execute(
                """INSERT INTO event_cursor (source, next_block) VALUES (?, ?)
                   ON CONFLICT (source) DO UPDATE SET next_block = excluded.next_block""",
                (self.source, target + 1),
            )
        seen = {(e.block_hash, e.log_index) for e in fetched}
        added = [e for e in fetched if (e.block_hash, e.log_index) not in old]
        removed = [e for key, e in old.items() if key not in seen]
        if removed:
            log.warning("reorg: %d event(s) from block %d on vanished", len(removed), from_block)
        return PollResult(added, removed, from_block, target, head)

    def events_of(self, subject: int) -> list[DecodedLog]:
        """The stored events about ``subject``, in chain order."""
        rows = self.conn.execute(
            "SELECT * FROM chain_events WHERE source = ? AND subject = ? "
            "ORDER BY block_number, log_index",
            (self.source, subject),
        )
        return [_row_log(r) for r in rows]

    def all_events(self) -> list[DecodedLog]:
        rows = self.conn.execute(
            "SELECT * FROM chain_events WHERE source = ? ORDER BY block_number, log_index",
            (self.source,),
        )
        return [_row_log(r) for r in rows]


def _row_log(row: sqlite3.Row) -> DecodedLog:
    return DecodedLog(
        contract=row["contract"],
        name=row["name"],
        args=json.loads(row["args"]),
        address=row["address"],
        block_number=row["block_number"],
        block_hash=row["block_hash"],
        log_index=row["log_index"],
        tx_hash=row["tx_hash"],
    )


def read_events(
    client: ChainClient,
    contracts: Sequence[ContractInterface],
    from_block: int,
    to_block: int | None = None,
    *,
    batch_blocks: int = 2000,
) -> list[DecodedLog]:
    """All decoded events of ``contracts`` in ``[from_block, to_block]``, in chain order.

    Ranges are read in batches of ``batch_blocks``, halved when the node refuses
    a range as too large. No persistence: one-shot readers (``veritrain tasks``)
    use this directly.
    """
    if to_block is None:
        to_block = client.block_number()
    by_address = {c.address.lower(): c for c in contracts}
    addresses = [c.address for c in contracts]
    out: list[DecodedLog] = []
    start, size = from_block, max(1, batch_blocks)
    while start <= to_block:
        end = min(to_block, start + size - 1)
        try:
            raw = client.logs(addresses, start, end)
        except RpcError:
            # Providers cap the range or result size of eth_getLogs: halve and retry.
            if size == 1:
                raise
            size = max(1, size // 2)
            continue
        for entry in raw:
            if entry.get("removed"):
                continue
            contract = by_address.get(str(entry.get("address", "")).lower())
            try:
                decoded = contract.decode_log(entry) if contract is not None else None
            except MALFORMED as exc:
                # A log of one of the contracts whose topics or data its event does not
                # decode: the node's answer is wrong, not the contract (asked again at the
                # next poll; the cursor did not move).
                raise MalformedAnswerError(
                    f"RPC endpoint {client.url} answered eth_getLogs with a log of "
                    f"{contract.name if contract else '?'} that does not decode "
                    f"(block {entry.get('blockNumber')}, index {entry.get('logIndex')}: {exc})"
                ) from exc
            if decoded is not None:
                out.append(decoded)
        start = end + 1
    out.sort(key=lambda e: (e.block_number, e.log_index))
    return out
